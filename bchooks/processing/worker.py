"""The worker: runs the handlers for every stored event, durably, with retries and dead letters.

Each (event, handler) pair is a row in `handler_runs`: pending, running (claimed until a lease ends), done,
failed (with attempts, next attempt time and last error) or dead after the last retry. Claims are one atomic
UPDATE, so two workers on one file never run the same pair at once; a worker killed mid-handler leaves its claim
to expire, and the pair runs again (at least once, never marked done without running). Retries follow each
handler's `retries`, `retry_delay` and `retry_backoff`, and survive restarts because they live in the file.
The echo of the kit's own shipments (`fulfilment.is_own_change`) is marked done without running the handlers that
did not opt in with `@on(..., own_changes=True)`.
"""

import logging
from collections.abc import Callable, Sequence
import os
import secrets as random_tokens
import socket
import threading
import time
import traceback
from dataclasses import dataclass

from ..errors import BchooksError, InputError, StoreUnavailable
from ..leasing import renewing
from ..secrecy import redact
from ..store import Store
from ..store.runs import DEAD, DONE, FAILED


log = logging.getLogger("bchooks.worker")



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
        """Add a pending run for each handler and each event stored since that handler last looked."""
        return self.store.runs.enqueue([(h.name, h.types) for h in self.registry.handlers.values()], self.clock())

    def claim(self):
        """Atomically take up to `batch` due runs (pending, failed and due, or running with an expired lease)."""
        return self.store.runs.claim(list(self.registry.handlers), self.name, self.clock(), self.lease, self.batch)

    def _finish(self, event_id, handler, status, next_at=None, error=None):
        self.store.runs.finish(event_id, handler, self.name, status, next_at, error)

    def renew(self):
        """Extend the lease of every run this worker holds; returns how many."""
        return self.store.runs.renew(self.name, self.clock() + self.lease)

    def _renewing(self):
        """Renew this worker's claims every third of the lease until the block ends."""
        return renewing(self.lease, self.renew, log, f"the claims of {self.name}")

    def run_once(self) -> Pass:
        """Enqueue new events, then run the handlers of what is due; returns what happened."""
        enqueued = self.enqueue()
        claimed = self.claim()
        if not claimed:
            return Pass(enqueued, 0, 0, 0, 0)
        with self._renewing():
            counts = self._run(claimed)
        return Pass(enqueued, len(claimed), counts[DONE], counts[FAILED], counts[DEAD])

    def _own_change(self, event, known):
        """Whether `event` echoes the kit's own change (asked once an event a pass)."""
        if event.id not in known:
            from ..fulfilment import is_own_change
            try:
                known[event.id] = event.type == "order.updated" and is_own_change(self.store, event)
            except Exception as error:  # noqa: BLE001 (cannot tell: the handlers run, as for any other event)
                log.warning("event %s: could not tell whether it echoes the kit's own change (%s): handlers run",
                            event.id, redact(str(error), self._secrets))
                known[event.id] = False
        return known[event.id]

    def _run(self, claimed):
        counts = {DONE: 0, FAILED: 0, DEAD: 0}
        own: dict[int, bool] = {}
        for event_id, name, attempts in sorted(claimed):
            handler = self.registry.handlers[name]
            event = self.store.get(event_id)
            if event is not None and not handler.own_changes and self._own_change(event, own):
                self._finish(event_id, name, DONE)  # (the echo of our own change: never acted on again)
                counts[DONE] += 1
                continue
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

    def run(self, poll: float = 1.0, stop: threading.Event | None = None, once: bool = False,
            report: Callable[[Pass], None] | None = None, every_pass: Callable[[], object] | None = None) -> None:
        """Process until `stop` (a threading.Event) is set; with `once`, until nothing is due right now.
        `report(Pass)` is called once per burst of work (when the worker goes idle, or stops), with its totals;
        `every_pass()` after each pass (the retention schedule: `archives.Retention.tick`)."""
        burst = [0, 0, 0, 0, 0]

        def flush():
            if report and any(burst):
                report(Pass(*burst))
            burst[:] = [0, 0, 0, 0, 0]
        waited = 0.0  # seconds the worker has been waiting for an unavailable store, 0 when it is available
        try:
            while stop is None or not stop.is_set():
                try:
                    result = self.run_once()
                except StoreUnavailable as error:
                    if once:
                        raise
                    if not waited:
                        log.warning("worker %s: the store is unavailable (%s); trying again until it is back",
                                    self.name, error)
                    waited = min(30.0, max(poll, waited * 2))  # (a run claimed meanwhile is retried after its lease)
                    (stop or threading.Event()).wait(waited)
                    continue
                if every_pass is not None:  # (after a pass: the handlers' watermarks are set)
                    every_pass()
                if waited:
                    log.warning("worker %s: the store is back", self.name)
                    waited = 0.0
                burst[:] = [a + b for a, b in zip(burst, (result.enqueued, result.ran, result.done, result.failed,
                                                          result.dead))]
                if result.ran:
                    continue
                flush()
                if once:
                    return
                self.store.wait_for_events(poll, stop)  # PostgreSQL: woken at once by a NOTIFY; SQLite: a sleep
        finally:
            flush()


def replay(store: Store, *, event_ids: Sequence[int] = (), dead: bool = False, event_type: str | None = None,
           since: str | None = None, clock: Callable[[], float] = time.time) -> int:
    """Put events back to pending for their handlers; returns how many (event, handler) pairs."""
    if not (event_ids or dead or event_type or since):
        raise InputError("say what to replay: event ids, --dead, or --type/--since")
    return store.runs.replay(clock(), event_ids=event_ids, dead=dead, type=event_type, since=since)


def failures(store: Store, limit: int = 100, secrets: Sequence[str] = ()) -> list[dict]:
    """Failed and dead (event, handler) pairs with their last error (`secrets` redacted from it, also from errors
    stored before redaction existed), newest first, as dicts."""
    rows = store.runs.failures(limit)
    for row in rows:
        row["last_error"] = redact(row["last_error"], secrets)
    return rows


def failure_count(store: Store) -> int:
    """How many (event, handler) pairs are failed or dead, counted by the store (no row is fetched)."""
    counts = store.runs.counts_by_status()
    return counts.get(FAILED, 0) + counts.get(DEAD, 0)


def failures_shown(shown: int, total: int) -> str:
    """What a list of `shown` failures says of the `total`: "showing 20 of 310 failed or dead handler runs"."""
    if not total and not shown:
        return "no failed or dead handler runs"
    return f"showing {shown} of {max(total, shown)} failed or dead handler runs"  # (counted a moment apart)
