"""Each shop's poll outcomes in the store: when it was last tried and last reached, failures in a row, the last
error (one line, redacted by the caller), and the orders the last reconcile of it found missing. The alerts read
them (a shop whose polls keep failing, a quiet shop, missing orders)."""

from ..clock import now_iso
from .interface import StorePart


class PollOutcomes(StorePart):
    def record(self, account_id: str, *, ok: bool, error: str | None = None, missing: int | None = None,
               at: str | None = None) -> None:
        """Record one poll (or reconcile) of a shop: `ok`, or failed with `error` (already redacted, one line).
        `missing`: orders this attempt found missing (a reconcile); None (a poll) keeps the last count."""
        at = at or now_iso()
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO poll_outcomes (account_id, last_attempt_at, last_success_at, failures, last_error,"
                " missing) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET"
                " last_attempt_at = excluded.last_attempt_at,"
                " last_success_at = coalesce(excluded.last_success_at, poll_outcomes.last_success_at),"
                " failures = CASE WHEN excluded.failures = 0 THEN 0 ELSE poll_outcomes.failures + 1 END,"
                " last_error = excluded.last_error,"
                " missing = CASE WHEN ? THEN excluded.missing ELSE poll_outcomes.missing END",
                (str(account_id), at, at if ok else None, 0 if ok else 1, None if ok else (error or "failed")[:500],
                 int(missing or 0), missing is not None))

    def status(self) -> list[dict]:
        """One dict a shop polled: account_id, last_attempt_at, last_success_at, failures (in a row), last_error,
        missing; by account id."""
        return self.store.read_dicts("SELECT account_id, last_attempt_at, last_success_at, failures, last_error,"
                                     " missing FROM poll_outcomes ORDER BY account_id")
