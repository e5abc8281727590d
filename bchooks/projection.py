"""The order projection: the latest state of every order, maintained incrementally from the event store.

`Projection(store).refresh()` reads only the events appended since the last refresh; `frames()` gives typed
DataFrames. The newest `updated_at` wins (ties: the body's hash), so duplicates and reordering change nothing.
`shipped_at` is the earliest `updated_at` of an event that showed the order shipped.
"""

import pandas as pd

from .records import ITEM_COLUMNS, ORDER_COLUMNS, ORDER_TYPES, order_record

ORDER_DTYPES = {
    "order_id": "string", "account_id": "string", "event_id": "int64", "currency": "category", "country": "category",
    "country_name": "string", "customer_email": "string", "customer_name": "string", "item_count": "Int64",
    "item_total_cents": "Int64", "discount_total_cents": "Int64", "shipping_total_cents": "Int64",
    "tax_total_cents": "Int64", "total_cents": "Int64", "shipping_status": "category", "payment_status": "category",
}
ITEM_DTYPES = {"order_id": "string", "line": "int64", "product_id": "string", "product_name": "string",
               "option_name": "string", "quantity": "int64", "price_cents": "Int64", "total_cents": "Int64",
               "currency": "category"}
TIMES = ("created_at", "updated_at", "completed_at", "shipped_at")


class Projection:
    def __init__(self, store):
        self.store = store
        self.watermark = 0
        self.orders = {}
        self.items = {}
        self.shipped = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def apply(self, event):
        record = order_record(event.id, event.account_id, event.body, event.body_sha256, event.received_at)
        if record is None:
            return
        order = record.order
        oid = order["order_id"]
        if order["shipping_status"] == "shipped":
            previous = self.shipped.get(oid)
            if previous is None or order["updated_at"] < previous:
                self.shipped[oid] = order["updated_at"]
        current = self.orders.get(oid)
        if current is None or order["rank"] > current["rank"]:
            self.orders[oid] = order
            self.items[oid] = record.items

    def refresh(self):
        """Apply the events stored since the last refresh; returns how many were read."""
        seen = 0
        for event in self.store.iter_events(type=ORDER_TYPES, after_id=self.watermark, batch=5000):
            self.apply(event)
            self.watermark = event.id
            seen += 1
        return seen

    def frames(self):
        self.refresh()
        orders = pd.DataFrame(list(self.orders.values()), columns=list(ORDER_COLUMNS))
        orders["shipped_at"] = orders["order_id"].map(self.shipped)
        orders = orders.drop(columns="rank")
        for column in TIMES:
            orders[column] = pd.to_datetime(orders[column], utc=True, format="ISO8601")
        orders = orders.astype(ORDER_DTYPES)
        orders = orders.sort_values(["created_at", "order_id"], ignore_index=True, na_position="last")
        items = pd.DataFrame([row for rows in self.items.values() for row in rows], columns=list(ITEM_COLUMNS))
        items = items.astype(ITEM_DTYPES).sort_values(["order_id", "line"], ignore_index=True)
        return orders, items
