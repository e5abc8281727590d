"""Poll leases in the store: which poller is polling which shop, until when, and when each shop's last poll ended.

Several `bchooks poll` processes on one store (on one host or several) share the shops through these rows: a poller
takes a shop that is free and due in one atomic statement (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so pollers on
several hosts take different shops without waiting; SQLite: one write transaction, writers in turn), renews its
lease while it polls, and releases it when the poll ends (or when it stops). A shop whose lease ran out (its
poller killed) is free again. Every time is in unix seconds by the database's clock, so hosts whose clocks disagree
still agree on who holds what.
"""

from ..clock import now_iso
from .interface import StorePart

#: the database's clock in unix seconds, as an SQL expression of each engine
NOW = {"sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
       "postgresql": "(extract(epoch FROM clock_timestamp())::float8)"}


class PollLeases(StorePart):
    @property
    def _now(self) -> str:
        return NOW[self.store.engine]

    def _add(self, conn, account_ids) -> None:
        conn.executemany("INSERT INTO poll_leases (account_id, holder, held_until, polled_at, updated_at)"
                         " VALUES (?, NULL, 0, NULL, ?) ON CONFLICT (account_id) DO NOTHING",
                         [(account_id, now_iso()) for account_id in account_ids])

    def claim(self, holder: str, account_ids: list[str], *, lease: float, every: float) -> str | None:
        """Take for `holder`, until `lease` seconds from now, the one of these shops that is free (never leased,
        released, its lease run out, or already `holder`'s) and due (never polled, or its last poll ended `every`
        seconds ago or more), the one waiting longest; its account id, or None when none is."""
        if not account_ids:
            return None
        marks, now = ",".join("?" * len(account_ids)), self._now
        with self.store.transaction() as conn:
            self._add(conn, account_ids)
            rows = conn.execute(
                f"UPDATE poll_leases SET holder = ?, held_until = {now} + ?, updated_at = ? WHERE account_id IN"
                f" (SELECT account_id FROM poll_leases WHERE account_id IN ({marks})"
                f" AND (holder IS NULL OR holder = ? OR held_until < {now})"
                f" AND (polled_at IS NULL OR polled_at <= {now} - ?)"
                f" ORDER BY coalesce(polled_at, 0), account_id LIMIT 1{self.store.skip_locked}) RETURNING account_id",
                (holder, lease, now_iso(), *account_ids, holder, every)).fetchall()
        return rows[0][0] if rows else None

    def hold(self, holder: str, account_id: str, *, lease: float) -> bool:
        """Take or keep this one shop for `holder` until `lease` seconds from now, due or not (a pinned poller
        holds its shop all the time it runs); False while another poller's lease on it lasts."""
        with self.store.transaction() as conn:
            self._add(conn, [account_id])
            rows = conn.execute(
                f"UPDATE poll_leases SET holder = ?, held_until = {self._now} + ?, updated_at = ? WHERE account_id = ?"
                f" AND (holder IS NULL OR holder = ? OR held_until < {self._now}) RETURNING account_id",
                (holder, lease, now_iso(), account_id, holder)).fetchall()
        return bool(rows)

    def renew(self, holder: str, lease: float) -> int:
        """Extend every lease `holder` holds to `lease` seconds from now; how many (a lease another poller took
        after it ran out stays theirs)."""
        return self.store.write_one(f"UPDATE poll_leases SET held_until = {self._now} + ? WHERE holder = ?",
                                    (lease, holder))[0]

    def release(self, holder: str, account_id: str, *, polled: bool, keep: bool = False) -> bool:
        """End `holder`'s poll of this shop: `polled` marks it polled now (due again `every` seconds later); `keep`
        keeps the lease (a pinned poller). False when the lease was no longer `holder`'s (it ran out and another
        poller took it)."""
        sets = ["updated_at = ?"]
        if polled:
            sets.append(f"polled_at = {self._now}")
        if not keep:
            sets.append("holder = NULL, held_until = 0")
        return self.store.write_one(f"UPDATE poll_leases SET {', '.join(sets)} WHERE account_id = ? AND holder = ?",
                                    (now_iso(), account_id, holder))[0] > 0

    def release_all(self, holder: str) -> int:
        """Free every shop `holder` holds (a poller that stops: the others take them at once); how many."""
        return self.store.write_one("UPDATE poll_leases SET holder = NULL, held_until = 0, updated_at = ?"
                                    " WHERE holder = ?", (now_iso(), holder))[0]

    def status(self, account_ids: list[str] | None = None) -> list[dict]:
        """Each shop's lease, by account id: `holder` (None when free or run out), `held_for` (seconds of the
        lease left) and `polled_ago` (seconds since its last poll ended, None if never); of these shops, or of
        all."""
        where, params = "", []
        if account_ids is not None:
            if not account_ids:
                return []
            where, params = f" WHERE account_id IN ({','.join('?' * len(account_ids))})", list(account_ids)
        rows = self.store._read(f"SELECT account_id, holder, held_until, polled_at, {self._now} FROM poll_leases"
                                f"{where} ORDER BY account_id", params)
        return [{"account_id": account_id, "holder": holder if holder and until > now else None,
                 "held_for": max(0.0, until - now) if holder else 0.0,
                 "polled_ago": None if polled is None else now - polled}
                for account_id, holder, until, polled, now in rows]

    def wait(self, holder: str, account_ids: list[str], every: float, *, recheck: float | None = None) -> float:
        """Seconds until one of these shops is free and due for `holder` (0 when one is now, or was never leased):
        how long a poller with nothing to take may sleep. A shop another poller holds counts as due when its lease
        ends, or after `recheck` seconds if sooner (that poller may let it go early)."""
        known = {row["account_id"]: row for row in self.status(account_ids)}
        waits = []
        for account_id in account_ids:
            row = known.get(account_id)
            if row is None or row["polled_ago"] is None:
                due = 0.0
            else:
                due = every - row["polled_ago"]
            if row is not None and row["holder"] not in (None, holder):
                due = max(due, row["held_for"] if recheck is None else min(row["held_for"], recheck))
            waits.append(max(0.0, due))
        return min(waits, default=every)
