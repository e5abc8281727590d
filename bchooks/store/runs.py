"""Handler runs in the store: one row per (event, handler), claimed, renewed and finished by workers.

States: pending, running (claimed until a lease ends), done, failed (with the next attempt's time) and dead. A
claim is one atomic UPDATE, so two workers never take the same row; a worker renews its claims while it runs them.
"""

from ..clock import now_iso
from .interface import StorePart

DONE, PENDING, RUNNING, FAILED, DEAD = "done", "pending", "running", "failed", "dead"


class HandlerRuns(StorePart):
    def enqueue(self, handlers, now):
        """Add a pending row for each (name, types) handler and each event stored since it last looked ("*" in
        types: every event); returns how many rows were added."""
        added = 0
        with self.store.transaction() as conn:
            latest = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            for name, types in handlers:
                mark = conn.execute("SELECT watermark FROM handler_marks WHERE handler = ?", (name,)).fetchone()
                mark = mark[0] if mark else 0
                where, params = "id > ? AND id <= ?", [mark, latest]
                if "*" not in types:
                    where += f" AND type IN ({','.join('?' * len(types))})"
                    params += list(types)
                added += conn.execute(
                    f"INSERT INTO handler_runs (event_id, handler, status, next_attempt_at, updated_at)"
                    f" SELECT id, ?, ?, ?, ? FROM events WHERE {where} ON CONFLICT DO NOTHING",
                    (name, PENDING, now, now_iso(), *params)).rowcount
                conn.execute("INSERT INTO handler_marks (handler, watermark) VALUES (?, ?) ON CONFLICT (handler)"
                             " DO UPDATE SET watermark = CASE WHEN excluded.watermark > handler_marks.watermark"
                             " THEN excluded.watermark ELSE handler_marks.watermark END",
                             (name, max(mark, latest)))  # (two workers at once: it never goes back)
        return added

    def claim(self, names, worker, now, lease, limit):
        """Atomically take up to `limit` due runs of these handlers (pending, failed and due, or running with an
        expired lease) for `worker` until `now + lease`; [(event_id, handler, attempts)]."""
        if not names:
            return []
        return self.store.write_one(
            f"UPDATE handler_runs SET status = ?, claimed_by = ?, claimed_until = ?, attempts = attempts + 1,"
            f" updated_at = ? WHERE (event_id, handler) IN (SELECT event_id, handler FROM handler_runs WHERE handler IN"
            f" ({','.join('?' * len(names))}) AND ((status IN (?, ?) AND next_attempt_at <= ?)"
            f" OR (status = ? AND claimed_until < ?)) ORDER BY event_id LIMIT ?{self.store.skip_locked})"
            f" RETURNING event_id, handler, attempts",
            (RUNNING, worker, now + lease, now_iso(), *names, PENDING, FAILED, now, RUNNING, now, limit))[1]

    def renew(self, worker, until):
        """Extend every claim `worker` holds to `until`; returns how many."""
        return self.store.write_one("UPDATE handler_runs SET claimed_until = ? WHERE claimed_by = ? AND status = ?",
                                    (until, worker, RUNNING))[0]

    def finish(self, event_id, handler, worker, status, next_at=None, error=None):
        """Record the outcome of a run `worker` holds (a claim lost to another worker is left alone)."""
        self.store.write_one("UPDATE handler_runs SET status = ?, next_attempt_at = coalesce(?, next_attempt_at),"
                             " last_error = ?, claimed_by = NULL, claimed_until = NULL, updated_at = ?"
                             " WHERE event_id = ? AND handler = ? AND claimed_by = ?",
                             (status, next_at, error, now_iso(), event_id, handler, worker))

    def replay(self, now, *, event_ids=(), dead=False, type=None, since=None):
        """Put runs back to pending (not those running): of these events, the dead ones, or those of events of
        `type` received since `since`; returns how many. At least one selection is needed."""
        from .sql import event_filter
        where, params = [], []
        if event_ids:
            where.append(f"event_id IN ({','.join('?' * len(event_ids))})")
            params += [int(i) for i in event_ids]
        if dead:
            where.append("status = 'dead'")
        if type or since:
            sub, sub_params = event_filter(type=type, since=since)
            where.append(f"event_id IN (SELECT id FROM events WHERE {' AND '.join(sub)})")
            params += sub_params
        if not where:
            raise ValueError("replay needs event ids, dead=True, or a type or since")
        with self.store.transaction() as conn:
            return conn.execute(f"UPDATE handler_runs SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                                f" last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE status != 'running'"
                                f" AND {' AND '.join(where)}", (now, *params)).rowcount

    def failures(self, limit=100):
        """Failed and dead runs with their last error, newest first, as dicts."""
        return self.store.read_dicts(
            "SELECT r.event_id, e.type, r.handler, r.status, r.attempts, r.next_attempt_at, r.last_error,"
            " r.updated_at FROM handler_runs r JOIN events e ON e.id = r.event_id"
            " WHERE r.status IN ('failed', 'dead') ORDER BY r.updated_at DESC, r.event_id DESC LIMIT ?", (limit,))

    def count(self, status):
        """How many runs are in `status`."""
        return self.store.read_value("SELECT count(*) FROM handler_runs WHERE status = ?", (status,))

    def counts_by_status(self) -> dict[str, int]:
        """How many runs are in each status, as {status: count} (statuses with no run are left out)."""
        return {row["status"]: row["n"] for row in self.store.read_dicts(
            "SELECT status, count(*) AS n FROM handler_runs GROUP BY status")}

    def counts_up_to(self, cap: int, statuses: tuple = (PENDING, RUNNING, FAILED, DEAD)) -> dict[str, int]:
        """{status: how many runs are in it, counted up to `cap`} (a count of `cap` means `cap` or more): each one
        an index range of at most `cap` entries, so as quick with a million finished runs as with none."""
        if not set(statuses) <= {DONE, PENDING, RUNNING, FAILED, DEAD}:
            raise ValueError(f"unknown statuses: {sorted(set(statuses) - {DONE, PENDING, RUNNING, FAILED, DEAD})}")
        parts = " UNION ALL ".join(
            f"SELECT '{status}' AS status, (SELECT count(*) FROM (SELECT 1 FROM handler_runs WHERE status = ?"
            f" LIMIT ?) AS few) AS n" for status in statuses)
        params = [value for status in statuses for value in (status, int(cap))]
        return {row["status"]: int(row["n"]) for row in self.store.read_dicts(parts, params)}

    def oldest_due(self, status: str = PENDING) -> float | None:
        """The earliest `next_attempt_at` (unix seconds) of the runs in `status` (pending: when the oldest waiting
        run was queued), or None when there is none: one index seek."""
        rows = self.store.read_dicts("SELECT next_attempt_at FROM handler_runs WHERE status = ?"
                                     " ORDER BY next_attempt_at LIMIT 1", (status,))
        return float(rows[0]["next_attempt_at"]) if rows else None
