"""late_orders: paid orders not shipped, against the promised days, on hand-built frames and on a store."""

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from bchooks import analysis
from bchooks.wire import parse_envelope

NOW = pd.Timestamp("2026-03-10T12:00:00Z")
NAT = None


def orders_frame():
    rows = [  # account, order, created, shipping, payment, refunded_at
        ("1", "A-1", "2026-03-01T12:00:00Z", "unshipped", "completed", NAT),  # 6 days past due
        ("1", "A-2", "2026-03-07T10:00:00Z", "unshipped", "completed", NAT),  # 2 h past due: 1 day late
        ("1", "A-3", "2026-03-08T12:00:00Z", "unshipped", "completed", NAT),  # due tomorrow
        ("1", "A-4", "2026-03-01T12:00:00Z", "unshipped", "refunded", "2026-03-02T00:00:00Z"),
        ("1", "A-5", "2026-03-01T12:00:00Z", "shipped", "completed", NAT),
        ("1", "A-6", "2026-03-02T12:00:00Z", "unshipped", "completed", "2026-03-03T00:00:00Z"),  # refunded once
        ("1", "A-7", NAT, "unshipped", "completed", NAT),  # no created_at: no due date
        ("2", "A-1", "2026-03-07T12:00:00Z", "unshipped", "completed", NAT),  # due exactly now: not late
        ("2", "A-2", "2026-03-05T11:00:00Z", "unshipped", "completed", NAT),  # 2 d 1 h past due: 3 days late
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "order_id", "created_at", "shipping_status", "payment_status",
                                        "refunded_at"])
    frame.insert(1, "store_name", ["Alpha"] * 7 + ["Beta"] * 2)
    for name in ("created_at", "refunded_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    frame["customer_name"] = [f"C{n}" for n in range(len(frame))]
    frame["item_count"] = pd.array([1] * len(frame), dtype="Int64")
    frame["currency"] = ["USD"] * 7 + ["GBP"] * 2
    frame["total_cents"] = pd.array([1000 + n for n in range(len(frame))], dtype="Int64")
    return frame


ITEMS = pd.DataFrame({"account_id": ["1", "1", "2", "2"], "order_id": ["A-1", "A-1", "A-1", "A-9"],
                      "line": [2, 1, 1, 1], "product_name": ["Pin", "Tee", "Mug", "Other"],
                      "option_name": ["", "M", "", ""], "quantity": [1, 2, 1, 5]})

EXPECTED = [  # account, order, late, days late, due
    ("1", "A-1", True, 6, "2026-03-04T12:00:00Z"),
    ("2", "A-2", True, 3, "2026-03-08T11:00:00Z"),
    ("1", "A-2", True, 1, "2026-03-10T10:00:00Z"),
    ("2", "A-1", False, 0, "2026-03-10T12:00:00Z"),
    ("1", "A-3", False, 0, "2026-03-11T12:00:00Z"),
    ("1", "A-7", False, None, None),
]


def summary(frame):
    return [(r.account_id, r.order_id, r.late, None if pd.isna(r.days_late) else r.days_late,
             None if pd.isna(r.due_at) else r.due_at) for r in frame.itertuples()]


def test_late_orders_on_a_hand_built_frame():
    report = analysis.late_orders(orders_frame(), ITEMS, promised_days=3, now=NOW)
    assert summary(report) == [(a, o, late, days, None if due is None else pd.Timestamp(due))
                               for a, o, late, days, due in EXPECTED]
    assert list(report.columns) == ["account_id", "store_name", "order_id", "created_at", "due_at", "age", "late",
                                    "days_late", "customer_name", "item_count", "currency", "total_cents", "items"]
    assert report.loc[0, "age"] == pd.Timedelta(days=9)
    assert [None if pd.isna(text) else text for text in report["items"]][:4] == ["2 × Tee (M); 1 × Pin", None, None, "1 × Mug"]
    assert report["store_name"].tolist()[:2] == ["Alpha", "Beta"] and report["currency"].tolist()[1] == "GBP"
    assert str(report["days_late"].dtype) == "Int64"


def test_promised_days_and_one_shop():
    shop = orders_frame()[lambda f: f["account_id"] == "1"]
    report = analysis.late_orders(shop, promised_days=10, now=NOW)
    assert [(r.order_id, r.late) for r in report.itertuples()] == [("A-1", False), ("A-2", False), ("A-3", False),
                                                                    ("A-7", False)]
    late = analysis.late_orders(shop, promised_days=0.5, now=NOW.tz_localize(None))  # naive now: UTC
    assert late["days_late"].tolist()[:3] == [9, 3, 2] and "items" not in late


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(9)))
def test_late_orders_do_not_depend_on_row_order(order):
    shuffled = orders_frame().take(list(order)).reset_index(drop=True)
    pd.testing.assert_frame_equal(analysis.late_orders(shuffled, ITEMS, now=NOW),
                                  analysis.late_orders(orders_frame(), ITEMS, now=NOW))


def _order(order_id, created, updated, shipping="unshipped", payment="completed"):
    return {"id": order_id, "created_at": created, "updated_at": updated, "shipping_status": shipping,
            "payment_status": payment, "total": "10.0", "currency": {"id": "USD"},
            "items": [{"product_id": "10", "product_name": "Tee", "product_option_name": "S", "quantity": 1,
                       "price": "10.0", "total": "10.0"}]}


def test_late_orders_from_a_store(store):
    events = [
        ("1", "order.created", _order("N-1", "2026-03-01T09:00:00.000Z", "2026-03-01T09:00:00.000Z")),
        ("2", "order.created", _order("N-1", "2026-03-09T09:00:00.000Z", "2026-03-09T09:00:00.000Z")),
        # shop 1's N-2: refunded, the update arriving before its creation
        ("1", "order.updated", _order("N-2", "2026-03-01T08:00:00.000Z", "2026-03-02T08:00:00.000Z",
                                      payment="refunded")),
        ("1", "order.created", _order("N-2", "2026-03-01T08:00:00.000Z", "2026-03-01T08:00:00.000Z")),
        ("1", "order.created", _order("N-3", "2026-03-05T09:00:00.000Z", "2026-03-05T09:00:00.000Z")),
        ("1", "order.updated", _order("N-3", "2026-03-05T09:00:00.000Z", "2026-03-06T09:00:00.000Z", "shipped")),
    ]
    for account, kind, payload in events:
        body = json.dumps({"account_id": account, "type": kind, "payload": payload}).encode()
        store.append(body, parse_envelope(body))
    orders, items = analysis.frames(store)
    report = analysis.late_orders(orders, items, promised_days=3, now=NOW)
    assert [(r.account_id, r.order_id, r.late, r.days_late, r.items) for r in report.itertuples()] == [
        ("1", "N-1", True, 7, "1 × Tee (S)"), ("2", "N-1", False, 0, "1 × Tee (S)")]
    shops = {account: analysis.late_orders(shop.orders, now=NOW)["order_id"].tolist()
             for account, shop in analysis.by_shop((orders, items)).items()}
    assert shops == {"1": ["N-1"], "2": ["N-1"]}
