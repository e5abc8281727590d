"""Reconciliation runs in the store: when each started and finished, what it checked and found, or its error."""

from ..clock import now_iso
from .interface import StorePart


class Reconciliations(StorePart):
    def start(self, since=None):
        """Record a run starting now; its id."""
        with self.store.transaction() as conn:
            return conn.execute("INSERT INTO reconciliations (started_at, since) VALUES (?, ?) RETURNING id",
                                (now_iso(), since)).fetchone()[0]

    def finish(self, run, *, checked, missing, stale):
        with self.store.transaction() as conn:
            conn.execute("UPDATE reconciliations SET finished_at = ?, checked = ?, missing = ?, stale = ?"
                         " WHERE id = ?", (now_iso(), checked, missing, stale, run))

    def fail(self, run, error):
        with self.store.transaction() as conn:
            conn.execute("UPDATE reconciliations SET finished_at = ?, error = ? WHERE id = ?",
                         (now_iso(), str(error), run))

    def last(self):
        """The newest run as a dict, or None."""
        rows = self.store.read_dicts("SELECT id, started_at, finished_at, since, checked, missing, stale, error"
                                     " FROM reconciliations ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None
