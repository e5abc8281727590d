"""Polling cursors in the store: per shop (account) and resource, where the last walk ended and when."""

from ..clock import now_iso
from .interface import StorePart


class Cursors(StorePart):
    def get(self, account_id, name):
        """The cursor's value, or None before the first poll."""
        rows = self.store._read("SELECT value FROM cursors WHERE account_id = ? AND name = ?", (account_id, name))
        return rows[0][0] if rows else None

    def set(self, account_id, name, value):
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO cursors (account_id, name, value, updated_at) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value,"
                         " updated_at = excluded.updated_at", (account_id, name, value, now_iso()))

    def remember_shop(self, account_id, store_name):
        """Keep a shop's name (the analysis frames show it beside the account id)."""
        if not store_name:
            return
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO accounts (account_id, store_name, updated_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (account_id) DO UPDATE SET store_name = excluded.store_name,"
                         " updated_at = excluded.updated_at", (account_id, store_name, now_iso()))

    def shop_names(self):
        """{account_id: store name} of the shops the store has seen."""
        return dict(self.store._read("SELECT account_id, store_name FROM accounts"))

    def last_polled(self):
        """{account_id: when its cursors last moved}."""
        return dict(self.store._read("SELECT account_id, max(updated_at) FROM cursors GROUP BY account_id"))
