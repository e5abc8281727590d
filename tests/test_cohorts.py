"""Cohorts: the retention table, the returning customer rate and the repeat purchase rate against answers computed by
hand, on hand-built frames and on a store of hand-written events; a customer is an e-mail within a shop."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bchooks import EventStore, analysis, parse_envelope
from test_trading import body, order_rows, rows
from trading_frames import frame, two_shops

NAN = np.nan


def one_shop():
    """a: 10 and 20 January, 5 March. b: 15 January, 1 February. c: 3 February, 28 February (refunded), 1 April.
    d: 31 March 23:30 UTC (1 April in Berlin). e: 5 January (refunded), 10 March. Without an e-mail (1 January)
    and without created_at (f): in no period."""
    orders = [("a@x.com", "2026-01-10T09:00Z"), ("a@x.com", "2026-01-20T09:00Z"), ("a@x.com", "2026-03-05T09:00Z"),
              ("b@x.com", "2026-01-15T09:00Z"), ("b@x.com", "2026-02-01T00:00Z"), ("c@x.com", "2026-02-03T09:00Z"),
              ("c@x.com", "2026-02-28T09:00Z", "refunded"), ("c@x.com", "2026-04-01T09:00Z"),
              ("d@x.com", "2026-04-01T00:30+01:00"), ("e@x.com", "2026-01-05T09:00Z", "refunded"),
              ("e@x.com", "2026-03-10T09:00Z"), (None, "2026-01-01T09:00Z"), ("f@x.com", None)]
    return frame(*(dict(order_id=str(n), customer_email=email, created_at=created,
                        payment_status=rest[0] if rest else "completed")
                   for n, (email, created, *rest) in enumerate(orders)))


def table_rows(table):
    return [(cohort.strftime("%Y-%m-%d"), *[None if isinstance(v, float) and np.isnan(v) else v for v in values])
            for cohort, values in zip(table.index, table.itertuples(index=False))]


def test_retention_as_the_contract_says():
    """Cohorts: January a, b (a back in March, b in February, nobody in April); February c (back in April, the
    refunded 28 February does not count); March d and e (e's refunded January order does not make her a January
    customer). The latest order is in April: later months are NaN."""
    table = analysis.retention(one_shop())
    assert table.index.name == "cohort" and str(table.index.dtype) == "datetime64[us, UTC]"
    assert list(table.columns) == ["customers", 0, 1, 2, 3]
    assert table["customers"].dtype == np.int64 and all(table[n].dtype == np.float64 for n in range(4))
    assert table_rows(table) == [("2026-01-01", 2, 1.0, 0.5, 0.5, 0.0), ("2026-02-01", 1, 1.0, 0.0, 1.0, None),
                                 ("2026-03-01", 2, 1.0, 0.0, None, None)]


def test_retention_of_two_shops_counts_a_customer_in_each_shop():
    """b@example.com ordered in both shops: one customer of 111 (January) and one of 222 (January, back in
    February); a of 111 came back in February; d's first order is in February."""
    table = analysis.retention(two_shops())
    assert table_rows(table) == [("2026-01-01", 3, 1.0, pytest.approx(2 / 3)), ("2026-02-01", 1, 1.0, None)]


def test_retention_of_no_customers_is_an_empty_table_of_the_same_shape():
    table = analysis.retention(frame(dict(customer_email=None)))
    assert table.empty and table.index.name == "cohort" and list(table.columns) == ["customers", 0]
    assert str(table.index.dtype) == "datetime64[us, UTC]"


def test_returning_customer_rate_per_month():
    table = analysis.returning_customer_rate(one_shop())
    assert list(table.columns) == ["period", "customers", "new_customers", "returning_customers",
                                   "returning_customer_rate"]
    assert rows(table, *table.columns) == [("2026-01-01", 2, 2, 0, 0.0), ("2026-02-01", 2, 1, 1, 0.5),
                                           ("2026-03-01", 3, 2, 1, pytest.approx(1 / 3)),
                                           ("2026-04-01", 1, 0, 1, 1.0)]


def test_two_orders_in_a_customers_first_week_make_them_new_that_week():
    """a: Saturday 10 January (week of the 5th), then Tuesday 20 January (week of the 19th: returning). b: Monday
    12 and Sunday 18 January 23:59, one week: a new customer's second order in their first week keeps them new."""
    orders = frame(dict(order_id="1", created_at="2026-01-10T09:00Z"),
                   dict(order_id="2", created_at="2026-01-20T09:00Z"),
                   dict(order_id="3", customer_email="b@x.com", created_at="2026-01-12T09:00Z"),
                   dict(order_id="4", customer_email="b@x.com", created_at="2026-01-18T23:59Z"))
    assert rows(analysis.returning_customer_rate(orders, "W"), "period", "customers", "returning_customers") == [
        ("2026-01-05", 1, 0), ("2026-01-12", 1, 0), ("2026-01-19", 1, 1)]


def test_repeat_purchase_rate_is_the_share_of_customers_with_two_orders_ever():
    """one_shop: a 3 orders, b 2, c 2 (not the refunded one), d 1, e 1, f 1 (no time needed here): 3 of 6.
    two_shops: 111's a (2 counted), 111's b (1), 111's d (1), 222's b (2): 2 of 4, where `repeat_rate` (b across
    shops: 3 orders) says 2 of 3."""
    assert analysis.repeat_purchase_rate(one_shop()) == analysis.repeat_rate(one_shop()) == 0.5
    assert analysis.repeat_purchase_rate(two_shops()) == 0.5
    assert analysis.repeat_rate(two_shops()) == pytest.approx(2 / 3)
    assert analysis.repeat_purchase_rate(frame(dict(customer_email=None))) == 0.0


def test_the_cohort_reports_from_a_store_of_hand_written_events(tmp_path):
    """Shop 111: a on 5 January and 2 March; b on 10 February (refunded on the 12th) and 20 February. Shop 222
    (the same order number 1001): a on 1 February, a new customer of that shop."""
    events = [body("111", "1001", "2026-01-05T10:00:00Z"), body("111", "1002", "2026-03-02T10:00:00Z"),
              body("111", "1003", "2026-02-10T10:00:00Z", "2026-02-12T10:00:00Z", payment="refunded",
                   email="b@example.com"),
              body("111", "1003", "2026-02-10T10:00:00Z", email="b@example.com"),  # older, arrives later
              body("111", "1004", "2026-02-20T10:00:00Z", email="b@example.com"),
              body("222", "1001", "2026-02-01T10:00:00Z", currency="GBP")]
    with EventStore(tmp_path / "events.db") as store:
        for event in events:
            store.append(event, parse_envelope(event))
        frames = analysis.frames(store)
    assert table_rows(analysis.retention(frames.orders)) == [("2026-01-01", 1, 1.0, 0.0, 1.0),
                                                             ("2026-02-01", 2, 1.0, 0.0, None)]
    assert rows(analysis.returning_customer_rate(frames.orders), "period", "customers", "new_customers",
                "returning_customers") == [("2026-01-01", 1, 1, 0), ("2026-02-01", 2, 2, 0), ("2026-03-01", 1, 0, 1)]
    assert analysis.repeat_purchase_rate(frames.orders) == pytest.approx(1 / 3)
    assert analysis.repeat_rate(frames.orders) == 0.5
    north = analysis.for_shop(frames, "111").orders
    assert table_rows(analysis.retention(north)) == [("2026-01-01", 1, 1.0, 0.0, 1.0),
                                                     ("2026-02-01", 1, 1.0, 0.0, None)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_rows, st.randoms(use_true_random=False))
def test_the_cohort_reports_do_not_depend_on_the_orders_row_order(drawn, rng):
    orders = frame(*drawn)
    shuffled = orders.take(rng.sample(range(len(orders)), len(orders))).reset_index(drop=True)
    pd.testing.assert_frame_equal(analysis.retention(orders), analysis.retention(shuffled))
    for freq in ("W", "M"):
        pd.testing.assert_frame_equal(analysis.returning_customer_rate(orders, freq),
                                      analysis.returning_customer_rate(shuffled, freq))
    assert analysis.repeat_purchase_rate(orders) == analysis.repeat_purchase_rate(shuffled)
