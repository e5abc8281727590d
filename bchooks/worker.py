"""The worker: runs the handlers for every stored event, durably, with retries and dead letters.

Each (event, handler) pair is a row in `handler_runs`: pending, running (claimed until a lease ends), done,
failed (with attempts, next attempt time and last error) or dead after the last retry. Claims are one atomic
UPDATE, so two workers on one file never run the same pair at once; a worker killed mid-handler leaves its claim
to expire, and the pair runs again (at least once, never marked done without running). Retries follow each
handler's `retries`, `retry_delay` and `retry_backoff`, and survive restarts because they live in the file.
"""

import logging
import os
import secrets as random_tokens
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

from .clock import now_iso
from .errors import BchooksError, InputError
from .secrecy import redact
from .store import event_filter

log = logging.getLogger("bchooks.worker")

DONE, PENDING, RUNNING, FAILED, DEAD = "done", "pending", "running", "failed", "dead"


@dataclass(frozen=True)
class Pass:
    enqueued: int
    ran: int
    done: int
    failed: int
    dead: int


class Worker:
    def __init__(self, store, registry, *, clock=time.time, lease=60.0, batch=20, name=None, secrets=()):
        """`secrets`: values redacted from every error stored or printed (`Config.secret_values()`)."""
        self.store = store
        self.registry = registry
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{random_tokens.token_hex(3)}"
        self._secrets = tuple(secrets)

    def __repr__(self):
        return f"Worker({self.name!r}, handlers={sorted(self.registry.handlers)})"

    def enqueue(self):
        """Add a pending row for each handler and each event stored since that handler last looked."""
        added = 0
        now = self.clock()
        with self.store.transaction() as conn:
            for handler in self.registry.handlers.values():
                mark = conn.execute("SELECT watermark FROM handler_marks WHERE handler = ?", (handler.name,)).fetchone()
                mark = mark[0] if mark else 0
                where, params = "id > ?", [mark]
                if "*" not in handler.types:
                    where += f" AND type IN ({','.join('?' * len(handler.types))})"
                    params += list(handler.types)
                cursor = conn.execute(
                    f"INSERT OR IGNORE INTO handler_runs (event_id, handler, status, next_attempt_at, updated_at)"
                    f" SELECT id, ?, ?, ?, ? FROM events WHERE {where}",
                    (handler.name, PENDING, now, now_iso(), *params))
                added += cursor.rowcount
                latest = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
                conn.execute("INSERT INTO handler_marks (handler, watermark) VALUES (?, ?) ON CONFLICT (handler)"
                             " DO UPDATE SET watermark = excluded.watermark", (handler.name, max(mark, latest)))
        return added

    def claim(self):
        """Atomically take up to `batch` due pairs (pending, failed and due, or running with an expired lease)."""
        now = self.clock()
        names = list(self.registry.handlers)
        if not names:
            return []
        with self.store.transaction() as conn:
            return conn.execute(
                f"UPDATE handler_runs SET status = ?, claimed_by = ?, claimed_until = ?, attempts = attempts + 1,"
                f" updated_at = ? WHERE rowid IN (SELECT rowid FROM handler_runs WHERE handler IN"
                f" ({','.join('?' * len(names))}) AND ((status IN (?, ?) AND next_attempt_at <= ?)"
                f" OR (status = ? AND claimed_until < ?)) ORDER BY event_id LIMIT ?)"
                f" RETURNING event_id, handler, attempts",
                (RUNNING, self.name, now + self.lease, now_iso(), *names, PENDING, FAILED, now, RUNNING, now,
                 self.batch)).fetchall()

    def _finish(self, event_id, handler, status, next_at=None, error=None):
        with self.store.transaction() as conn:
            conn.execute("UPDATE handler_runs SET status = ?, next_attempt_at = coalesce(?, next_attempt_at),"
                         " last_error = ?, claimed_by = NULL, claimed_until = NULL, updated_at = ?"
                         " WHERE event_id = ? AND handler = ? AND claimed_by = ?",
                         (status, next_at, error, now_iso(), event_id, handler, self.name))

    def renew(self):
        """Extend the lease of every run this worker holds; returns how many."""
        with self.store.transaction() as conn:
            return conn.execute("UPDATE handler_runs SET claimed_until = ? WHERE claimed_by = ? AND status = ?",
                                (self.clock() + self.lease, self.name, RUNNING)).rowcount

    @contextmanager
    def _renewing(self):
        """Renew this worker's claims every third of the lease until the block ends."""
        done = threading.Event()

        def renew_until_done():
            while not done.wait(self.lease / 3):
                try:
                    self.renew()
                except BchooksError as error:  # the next round tries again, well within the lease
                    log.warning("could not renew the claims of %s: %s", self.name, error)
        thread = threading.Thread(target=renew_until_done, name="bchooks-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def run_once(self):
        """Enqueue new events, then run the handlers of what is due; returns what happened."""
        enqueued = self.enqueue()
        claimed = self.claim()
        if not claimed:
            return Pass(enqueued, 0, 0, 0, 0)
        with self._renewing():
            counts = self._run(claimed)
        return Pass(enqueued, len(claimed), counts[DONE], counts[FAILED], counts[DEAD])

    def _run(self, claimed):
        counts = {DONE: 0, FAILED: 0, DEAD: 0}
        for event_id, name, attempts in sorted(claimed):
            handler = self.registry.handlers[name]
            event = self.store.get(event_id)
            try:
                handler.function(event)
            except Exception as error:
                dead = attempts > handler.retries
                detail = redact(f"{type(error).__name__}: {error}", self._secrets)[:1000]
                self._finish(event_id, name, DEAD if dead else FAILED,
                             None if dead else self.clock() + handler.delay(attempts), detail)
                counts[DEAD if dead else FAILED] += 1
                if os.environ.get("BCHOOKS_DEBUG"):
                    log.error("%s", redact(traceback.format_exc(), self._secrets))
            else:
                self._finish(event_id, name, DONE)
                counts[DONE] += 1
        return counts

    def run(self, poll=1.0, stop=None, once=False, report=None):
        """Process until `stop` (a threading.Event) is set; with `once`, until nothing is due right now.
        `report(Pass)` is called once per burst of work (when the worker goes idle, or stops), with its totals."""
        burst = [0, 0, 0, 0, 0]

        def flush():
            if report and any(burst):
                report(Pass(*burst))
            burst[:] = [0, 0, 0, 0, 0]
        try:
            while stop is None or not stop.is_set():
                result = self.run_once()
                burst[:] = [a + b for a, b in zip(burst, (result.enqueued, result.ran, result.done, result.failed,
                                                          result.dead))]
                if result.ran:
                    continue
                flush()
                if once:
                    return
                if stop is not None:
                    stop.wait(poll)
                else:
                    time.sleep(poll)
        finally:
            flush()


def replay(store, *, event_ids=(), dead=False, event_type=None, since=None, clock=time.time):
    """Put events back to pending for their handlers; returns how many (event, handler) pairs."""
    where, params = [], []
    if event_ids:
        where.append(f"event_id IN ({','.join('?' * len(event_ids))})")
        params += [int(i) for i in event_ids]
    if dead:
        where.append("status = 'dead'")
    if event_type or since:
        sub, sub_params = event_filter(type=event_type, since=since)
        where.append(f"event_id IN (SELECT id FROM events WHERE {' AND '.join(sub)})")
        params += sub_params
    if not where:
        raise InputError("say what to replay: event ids, --dead, or --type/--since")
    with store.transaction() as conn:
        return conn.execute(f"UPDATE handler_runs SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                            f" last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE status != 'running'"
                            f" AND {' AND '.join(where)}", (clock(), *params)).rowcount


def failures(store, limit=100, secrets=()):
    """Failed and dead (event, handler) pairs with their last error (`secrets` redacted from it, also from errors
    stored before redaction existed), newest first, as dicts."""
    rows = store.read_dicts(
        "SELECT r.event_id, e.type, r.handler, r.status, r.attempts, r.next_attempt_at, r.last_error, r.updated_at"
        " FROM handler_runs r JOIN events e ON e.id = r.event_id WHERE r.status IN ('failed', 'dead')"
        " ORDER BY r.updated_at DESC, r.event_id DESC LIMIT ?", (limit,))
    for row in rows:
        row["last_error"] = redact(row["last_error"], secrets)
    return rows
