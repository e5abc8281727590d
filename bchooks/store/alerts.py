"""Alerts in the store: one row an incident, `active` while its condition lasts, `recovered` once it ended until
its recovery is sent, then `closed`. At most one active row a key (a unique partial index), so two evaluators
(a worker and `bchooks watch`) never open the same incident twice; a send is claimed by a conditional UPDATE
first, so they never send the same message twice either. Every query is an index seek on the state."""

from .interface import StorePart

ACTIVE, RECOVERED, CLOSED = "active", "recovered", "closed"
_COLUMNS = ("id, key, rule, subject, state, message, started_at, ended_at, sent_at, sends, recovery_sent_at,"
            " last_error")


class AlertLog(StorePart):
    def open(self, key: str, rule: str, subject: str | None, message: str, now: str) -> bool:
        """Start an incident for `key` unless one is active (then only its message is updated); whether it began."""
        with self.store.transaction() as conn:
            began = conn.execute("INSERT INTO alerts (key, rule, subject, state, message, started_at)"
                                 " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) WHERE state = 'active' DO NOTHING",
                                 (key, rule, subject, ACTIVE, message, now)).rowcount
            if not began:
                conn.execute("UPDATE alerts SET message = ? WHERE key = ? AND state = ? AND message != ?",
                             (message, key, ACTIVE, message))
        return bool(began)

    def end(self, alert_id: int, now: str) -> None:
        """The incident's condition is over: its recovery is due (closed at once if it was never sent)."""
        self.store.write_one("UPDATE alerts SET state = ?, ended_at = ? WHERE id = ? AND state = ?",
                             (RECOVERED, now, alert_id, ACTIVE))

    def active(self) -> list[dict]:
        """The active incidents, oldest first."""
        return self.store.read_dicts(f"SELECT {_COLUMNS} FROM alerts WHERE state = ? ORDER BY id", (ACTIVE,))

    def recovered(self) -> list[dict]:
        """The incidents over whose recovery is not sent yet, oldest first."""
        return self.store.read_dicts(f"SELECT {_COLUMNS} FROM alerts WHERE state = ? ORDER BY id", (RECOVERED,))

    def recent(self, limit: int = 20) -> list[dict]:
        """The newest incidents of any state, newest first."""
        return self.store.read_dicts(f"SELECT {_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?", (limit,))

    def claim_send(self, alert_id: int, now: str, due_before: str) -> bool:
        """Take the turn to send an active incident: never sent, or last sent before `due_before`; whether taken
        (another evaluator may have just sent it)."""
        return bool(self.store.write_one(
            "UPDATE alerts SET sent_at = ?, sends = sends + 1, last_error = NULL WHERE id = ? AND state = ?"
            " AND (sent_at IS NULL OR sent_at < ?)", (now, alert_id, ACTIVE, due_before))[0])

    def send_failed(self, alert_id: int, previous: str | None, error: str) -> None:
        """A claimed send did not reach the channel: due again at the next evaluation, with its error kept."""
        self.store.write_one("UPDATE alerts SET sent_at = ?, sends = sends - 1, last_error = ? WHERE id = ?",
                             (previous, error[:500], alert_id))

    def claim_recovery(self, alert_id: int, now: str) -> bool:
        """Take the turn to send an incident's recovery (closing it); whether taken."""
        return bool(self.store.write_one("UPDATE alerts SET state = ?, recovery_sent_at = ?, last_error = NULL"
                                         " WHERE id = ? AND state = ?", (CLOSED, now, alert_id, RECOVERED))[0])

    def recovery_failed(self, alert_id: int, error: str) -> None:
        self.store.write_one("UPDATE alerts SET state = ?, recovery_sent_at = NULL, last_error = ? WHERE id = ?",
                             (RECOVERED, error[:500], alert_id))

    def close(self, alert_id: int) -> None:
        """Close an incident over without sending its recovery (nothing was ever sent about it)."""
        self.store.write_one("UPDATE alerts SET state = ? WHERE id = ? AND state = ?", (CLOSED, alert_id, RECOVERED))

    def check_writable(self) -> None:
        """A write that changes nothing, in a transaction of its own: `StoreUnavailable` when the store refuses
        writes (locked past the busy timeout, read-only, the server down)."""
        with self.store.transaction() as conn:
            conn.execute("UPDATE alerts SET sends = sends WHERE id = 0")

    def size_bytes(self) -> int:
        """The space the database's data takes: SQLite's used pages (free pages are reused before the file grows,
        which is what `BCHOOKS_MAX_DB_MB` caps); PostgreSQL's database size."""
        if self.store.engine == "sqlite":
            pages = self.store.read_value("PRAGMA page_count") - self.store.read_value("PRAGMA freelist_count")
            return int(pages * self.store.read_value("PRAGMA page_size"))
        return int(self.store.read_value("SELECT pg_database_size(current_database())"))
