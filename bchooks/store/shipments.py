"""Shipments the kit sent (`bchooks ship`, the panel, a handler): one row per (account, order, attempt).

Each attempt is written BEFORE the API is called (who, when, what: carrier, tracking, items) in state `pending`,
and finished AFTER with the API's answer: `shipped` (HTTP status, the shipment's id, the order's `updated_at` and
`shipping_status` as the API then showed them: what its echo `order.updated` will carry) or `failed` (status and
the error, one line, redacted by the caller). A `pending` row without an answer is an attempt whose outcome is
unknown (the process died mid-call, or the API did not answer): `fulfilment.ship` reads the order from the API
before ever sending it again.
"""

import json

from ..clock import now_iso
from .interface import StorePart

PENDING, SHIPPED, FAILED = "pending", "shipped", "failed"
COLUMNS = ("account_id", "order_id", "attempt", "who", "started_at", "carrier", "tracking_number", "tracking_url",
           "items", "notify", "state", "answered_at", "status", "shipment_id", "error", "order_updated_at",
           "order_status")


class Shipments(StorePart):
    def start(self, account_id: str, order_id: str, *, who: str, carrier: str | None = None,
              tracking_number: str | None = None, tracking_url: str | None = None,
              items: tuple = (), notify: bool = False) -> int:
        """Record an attempt about to be sent (state pending); its attempt number (1 for the order's first)."""
        with self.store.transaction() as conn:
            rows = conn.execute("INSERT INTO shipments (account_id, order_id, attempt, who, started_at, carrier,"
                                " tracking_number, tracking_url, items, notify, state) SELECT ?, ?,"
                                " coalesce(max(attempt), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? FROM shipments"
                                " WHERE account_id = ? AND order_id = ? RETURNING attempt",
                                (str(account_id), str(order_id), who, now_iso(), carrier, tracking_number,
                                 tracking_url, json.dumps([list(i) for i in items]) if items else None,
                                 int(bool(notify)), PENDING, str(account_id), str(order_id))).fetchall()
        return int(rows[0][0])

    def finish(self, account_id: str, order_id: str, attempt: int, *, state: str, status: int | None = None,
               shipment_id: str | None = None, error: str | None = None, order_updated_at: str | None = None,
               order_status: str | None = None, answered: bool = True) -> None:
        """Record an attempt's answer: `state` shipped or failed (or pending with `answered=False`: no answer
        came, `error` says why); `error` already redacted, one line."""
        self.store.write_one(
            "UPDATE shipments SET state = ?, answered_at = ?, status = ?, shipment_id = ?, error = ?,"
            " order_updated_at = ?, order_status = ? WHERE account_id = ? AND order_id = ? AND attempt = ?",
            (state, now_iso() if answered else None, status, shipment_id, (error or None) and error[:500],
             order_updated_at, order_status, str(account_id), str(order_id), int(attempt)))

    def of_orders(self, account_id: str, order_ids: list[str]) -> dict[str, list[dict]]:
        """{order id: its attempts, oldest first} for these orders of one shop (orders never attempted left out)."""
        found: dict[str, list[dict]] = {}
        ids = sorted({str(i) for i in order_ids})
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in self.store.read_dicts(
                    f"SELECT {', '.join(COLUMNS)} FROM shipments WHERE account_id = ? AND order_id IN"
                    f" ({','.join('?' * len(chunk))}) ORDER BY order_id, attempt", (str(account_id), *chunk)):
                found.setdefault(row["order_id"], []).append(_readable(row))
        return found

    def recent(self, limit: int = 50, account_id: str | None = None) -> list[dict]:
        """The newest attempts first (of one shop, or all), as dicts of `COLUMNS`."""
        where, params = ("WHERE account_id = ?", [str(account_id)]) if account_id else ("", [])
        return [_readable(row) for row in self.store.read_dicts(
            f"SELECT {', '.join(COLUMNS)} FROM shipments {where} ORDER BY started_at DESC, order_id, attempt DESC"
            f" LIMIT ?", (*params, int(limit)))]


def _readable(row: dict) -> dict:
    row["items"] = tuple((str(line), int(quantity)) for line, quantity in json.loads(row["items"])) \
        if row["items"] else ()
    row["notify"] = bool(row["notify"])
    return row
