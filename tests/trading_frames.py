"""Orders frames built by hand for the trading and cohort tests, typed as `analysis.frames(store).orders` types
them (UTC datetimes, Int64 cents, categorical currency, statuses, e-mail and discount code)."""

from decimal import Decimal

import pandas as pd

DEFAULTS = {"account_id": "111", "order_id": "1001", "created_at": "2026-01-05T10:00:00Z", "updated_at": None,
            "currency": "USD", "customer_email": "a@example.com", "item_count": 1, "item_total": "10.00",
            "discount_total": "0.00", "shipping_total": "0.00", "tax_total": "0.00", "total": "10.00",
            "payment_status": "completed", "shipping_status": "unshipped", "discount_code": None,
            "refunded_at": None}
MONEY = ("item_total", "discount_total", "shipping_total", "tax_total", "total")
TIMES = ("created_at", "updated_at", "refunded_at")
CATEGORIES = ("currency", "customer_email", "payment_status", "shipping_status", "discount_code")


def cents(text):
    return None if text is None or pd.isna(text) else int(Decimal(text) * 100)


def frame(*rows, drop=()):
    """An orders frame of `rows` (dicts over DEFAULTS; money as decimal strings), sorted as the real frames are;
    `drop`: columns left out (frames from before a column existed)."""
    records = []
    for row in rows:
        record = {**DEFAULTS, **row}
        record["updated_at"] = record["updated_at"] or record["created_at"]
        records.append(record)
    orders = pd.DataFrame(records, columns=list(DEFAULTS))
    for name in TIMES:
        orders[name] = pd.to_datetime(orders[name], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    for name in MONEY:
        orders[f"{name}_cents"] = pd.array([cents(value) for value in orders.pop(name)], dtype="Int64")
    orders["item_count"] = pd.array(orders["item_count"].tolist(), dtype="Int64")
    for name in CATEGORIES:
        orders[name] = orders[name].astype("category")
    orders["account_id"] = orders["account_id"].astype("str")
    orders["order_id"] = orders["order_id"].astype("str")
    orders = orders.sort_values(["created_at", "order_id"], ignore_index=True, na_position="last")
    return orders.drop(columns=list(drop))


def two_shops():
    """Shop 111 (USD) and shop 222 (GBP) with the same order numbers; the answers in the tests are computed by hand
    from this table (see each test)."""
    return frame(
        dict(order_id="1001", created_at="2026-01-05T10:00:00Z", item_count=2, item_total="18.00",
             shipping_total="2.00", total="20.00"),
        dict(order_id="1002", created_at="2026-01-20T08:00:00Z", customer_email="b@example.com", item_count=1,
             item_total="9.01", shipping_total="1.00", total="10.01", discount_code="FREESHIP"),
        dict(order_id="1003", created_at="2026-01-31T23:30:00Z", item_count=5, item_total="45.00",
             shipping_total="5.00", total="50.00", payment_status="refunded", discount_code="SPRING",
             discount_total="2.00", refunded_at="2026-02-02T09:00:00Z", updated_at="2026-02-20T09:00:00Z"),
        dict(order_id="1004", created_at="2026-02-01T00:00:00Z", item_count=3, item_total="33.00",
             discount_total="5.00", shipping_total="2.00", total="30.00", discount_code="SPRING"),
        dict(order_id="1005", created_at="2026-02-10T12:00:00Z", customer_email="d@example.com", item_count=1,
             item_total="4.00", shipping_total="1.00", total="5.00"),
        dict(account_id="222", order_id="1001", created_at="2026-01-10T12:00:00Z", currency="GBP",
             customer_email="b@example.com", item_count=None, item_total="10.00", shipping_total="2.00",
             total="12.00"),
        dict(account_id="222", order_id="1002", created_at="2026-02-14T09:00:00Z", currency="GBP",
             customer_email="b@example.com", item_count=1, item_total="6.00", discount_total="1.00",
             shipping_total="2.00", total="7.00"),
    )
