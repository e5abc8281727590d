"""The trading reports (order values, refunds, discounts, this period against the last) against answers computed by
hand: on hand-built frames (trading_frames.py) and on a store of hand-written events; two shops with the same order
numbers, missing fields, and reports that do not depend on the orders' row order."""

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bchooks import EventStore, analysis, parse_envelope
from trading_frames import frame, two_shops

D = Decimal
NAN = float("nan")


def rows(table, *columns):
    """The table's rows as tuples (periods as dates, NaN as None) for comparing with hand-computed answers."""
    out = []
    for values in zip(*(table[c] for c in columns)):
        out.append(tuple(None if (isinstance(v, float) and np.isnan(v)) or v is None or v is pd.NA
                         else v.strftime("%Y-%m-%d") if isinstance(v, pd.Timestamp) else v for v in values))
    return out


# order_values -------------------------------------------------------------------------------------------------------

def test_order_values_per_month_against_hand_computed_answers():
    """111's January: #1001 20.00 (2 items) + #1002 10.01 (1 item); #1003 is refunded and left out. AOV 30.01 / 2 =
    15.005 -> 15.01 (halves up); goods 18.00 + 9.01 = 27.01 -> 13.505 -> 13.51. 222's #1001 has no item count."""
    table = analysis.order_values(two_shops(), "M")
    assert list(table.columns) == ["period", "currency", "orders", "revenue", "aov", "goods_revenue", "goods_aov",
                                   "items", "items_per_order"]
    assert rows(table, *table.columns) == [
        ("2026-01-01", "GBP", 1, D("12.00"), D("12.00"), D("10.00"), D("10.00"), 0, None),
        ("2026-01-01", "USD", 2, D("30.01"), D("15.01"), D("27.01"), D("13.51"), 3, 1.5),
        ("2026-02-01", "GBP", 1, D("7.00"), D("7.00"), D("5.00"), D("5.00"), 1, 1.0),
        ("2026-02-01", "USD", 2, D("35.00"), D("17.50"), D("32.00"), D("16.00"), 4, 2.0)]
    assert str(table["period"].dtype) == "datetime64[us, UTC]"


def test_order_values_count_refunded_orders_only_when_asked():
    """Shopify's gross AOV: January's USD orders with #1003 (50.00, 5 items): 80.01 / 3 = 26.67; goods 70.01 / 3 =
    23.336... -> 23.34."""
    table = analysis.order_values(two_shops(), "M", include_refunded=True)
    usd = table[table["currency"] == "USD"]
    assert rows(usd, "orders", "revenue", "aov", "goods_aov", "items") == [
        (3, D("80.01"), D("26.67"), D("23.34"), 8), (2, D("35.00"), D("17.50"), D("16.00"), 4)]


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_order_values_revenue_equals_the_revenue_report(freq):
    orders = two_shops()
    ours, theirs = analysis.order_values(orders, freq), analysis.revenue(orders, freq)
    assert rows(ours, "period", "currency", "orders", "revenue") == rows(theirs, "period", "currency", "orders",
                                                                         "revenue")


@pytest.mark.parametrize("freq, expected", [
    ("D", ["2025-12-31", "2026-01-01", "2026-03-29", "2026-03-30", "2026-03-31", "2026-04-01"]),
    ("W", ["2025-12-29", "2026-03-23", "2026-03-30"]),  # weeks from Monday: Sunday 29 March is in the week of 23rd
    ("M", ["2025-12-01", "2026-01-01", "2026-03-01", "2026-04-01"]),
    ("Q", ["2025-10-01", "2026-01-01", "2026-04-01"]),
    ("Y", ["2025-01-01", "2026-01-01"]),
])
def test_the_period_is_the_orders_created_at_in_utc(freq, expected):
    moments = ["2025-12-31T23:59:59.999Z", "2026-01-01T00:00:00Z", "2026-03-29T23:59:59Z", "2026-03-30T00:00:00Z",
               "2026-03-31T12:00:00+05:00", "2026-04-01T00:30:00+01:00",  # 07:00 and 23:30 UTC on 31 March
               "2026-04-01T00:00:00Z"]
    orders = frame(*(dict(order_id=str(n), created_at=moment) for n, moment in enumerate(moments)))
    table = analysis.order_values(orders, freq)
    assert [p.strftime("%Y-%m-%d") for p in table["period"]] == expected
    assert table["orders"].sum() == 7


def test_a_bad_frequency_or_dating_is_refused():
    with pytest.raises(ValueError, match="freq"):
        analysis.order_values(two_shops(), "H")
    with pytest.raises(ValueError, match="by must be"):
        analysis.refunds(two_shops(), by="shipped_at")
    with pytest.raises(ValueError, match="freq"):
        analysis.compare_periods(two_shops(), "X")


# refunds ------------------------------------------------------------------------------------------------------------

def test_a_refund_is_dated_when_it_happened_by_default_and_with_its_order_on_request():
    """#1003 (USD 50.00) was ordered on 31 January and refunded on 2 February (then updated again on the 20th)."""
    columns = ("period", "currency", "orders", "refunded", "refund_rate", "refunded_amount", "flagged")
    when_refunded = analysis.refunds(two_shops(), "M")
    assert list(when_refunded.columns) == list(columns)
    assert rows(when_refunded, *columns) == [
        ("2026-01-01", "GBP", 1, 0, 0.0, D("0.00"), False), ("2026-01-01", "USD", 3, 0, 0.0, D("0.00"), False),
        ("2026-02-01", "GBP", 1, 0, 0.0, D("0.00"), False), ("2026-02-01", "USD", 2, 1, 0.5, D("50.00"), False)]
    when_ordered = analysis.refunds(two_shops(), "M", by="created_at")
    assert rows(when_ordered, "currency", "orders", "refunded", "refunded_amount") == [
        ("GBP", 1, 0, D("0.00")), ("USD", 3, 1, D("50.00")), ("GBP", 1, 0, D("0.00")), ("USD", 2, 0, D("0.00"))]
    assert when_ordered["refund_rate"][1] == pytest.approx(1 / 3)


def test_a_refund_without_refunded_at_is_dated_by_the_orders_last_update():
    """Frames from before `refunded_at` (or a missing one): #1003's updated_at, 20 February, dates it."""
    for orders in (two_shops().drop(columns="refunded_at"),
                   two_shops().assign(refunded_at=pd.Series(pd.NaT, dtype="datetime64[us, UTC]"))):
        weekly = analysis.refunds(orders, "W")
        refunded = weekly[weekly["refunded"] > 0]
        assert rows(refunded, "period", "currency", "orders", "refunded", "refunded_amount") == [
            ("2026-02-16", "USD", 0, 1, D("50.00"))]  # a week with a refund and no orders: rate NaN
        assert np.isnan(refunded["refund_rate"].iloc[0])


def weekly(refunds_and_orders):
    """Orders over consecutive weeks from Monday 5 January 2026: (orders, refunded) per week, refunded by order date."""
    built = []
    for week, (count, back) in enumerate(refunds_and_orders):
        day = pd.Timestamp("2026-01-05T10:00Z") + pd.Timedelta(weeks=week)
        for n in range(count):
            built.append(dict(order_id=f"{week}-{n}", created_at=day.isoformat(),
                              payment_status="refunded" if n < back else "completed"))
    return frame(*built)


def test_a_period_is_flagged_when_its_rate_is_above_the_others_mean_plus_two_sd():
    """Rates .05 .05 .10 .05 .40 (20 orders a week): week 5's others have mean .0625 and sd .025 (ddof=1), so .40 >
    .1125 is flagged; week 3's others (.05 .05 .05 .40) have mean .1375, so .10 is not. Week 6 has a rate of 1.0 but
    only 19 orders: never flagged, nor counted among the others."""
    table = analysis.refunds(weekly([(20, 1), (20, 1), (20, 2), (20, 1), (20, 8), (19, 19)]), "W", by="created_at")
    assert table["refund_rate"].round(4).tolist() == [0.05, 0.05, 0.1, 0.05, 0.4, 1.0]
    assert table["flagged"].tolist() == [False, False, False, False, True, False]
    # a lower bar: week 6 now counts; its others' mean is .13, sd .1525..: 1.0 > .435 is flagged, and week 5 is not
    # any more (its others .05 .05 .10 .05 1.0: mean .25, sd .4183..)
    lower = analysis.refunds(weekly([(20, 1), (20, 1), (20, 2), (20, 1), (20, 8), (19, 19)]), "W", by="created_at",
                             min_orders=19)
    assert lower["flagged"].tolist() == [False, False, False, False, False, True]


def test_the_spread_is_the_sample_standard_deviation():
    """100 orders a week, rates 0 0 .10 .14: week 4's others (0 0 .10) have mean .0333 and sample sd .0577, so the
    bar is .1488 and .14 is not flagged (with the population sd, .0471, the bar would be .1276 and it would be)."""
    table = analysis.refunds(weekly([(100, 0), (100, 0), (100, 10), (100, 14)]), "W", by="created_at")
    assert not table["flagged"].any()
    assert analysis.refunds(weekly([(100, 0), (100, 0), (100, 10), (100, 15)]), "W", by="created_at",
                            sigmas=1.9)["flagged"].tolist() == [False, False, False, True]  # bar .1430


def test_a_flag_needs_three_other_periods_and_a_rate_above_theirs():
    assert not analysis.refunds(weekly([(20, 0), (20, 0), (20, 5)]), "W", by="created_at")["flagged"].any()
    four = analysis.refunds(weekly([(20, 0), (20, 0), (20, 0), (20, 1)]), "W", by="created_at")
    assert four["flagged"].tolist() == [False, False, False, True]  # the others are all 0: sd 0, any rate above
    equal = analysis.refunds(weekly([(20, 1)] * 5), "W", by="created_at")
    assert not equal["flagged"].any()  # equal to the others is not above them
    assert analysis.refunds(weekly([(20, 0), (20, 0), (20, 0), (20, 1)]), "W", by="created_at",
                            sigmas=2, min_periods=4)["flagged"].sum() == 0


# discounts ----------------------------------------------------------------------------------------------------------

def test_discounts_overall_and_per_code():
    """USD (not refunded): #1001 20.00, #1002 10.01 (code FREESHIP, no amount), #1004 30.00 (SPRING, 5.00 off),
    #1005 5.00; #1003 (SPRING, refunded) is left out. GBP: #1001 12.00, #1002 7.00 (1.00 off, no code)."""
    summary, codes = analysis.discounts(two_shops())
    assert list(summary.columns) == ["currency", "orders", "discounted_orders", "discounted_share",
                                     "discount_amount", "revenue", "revenue_with_discount",
                                     "revenue_without_discount", "revenue_before_discounts"]
    assert rows(summary, *summary.columns) == [
        ("GBP", 2, 1, 0.5, D("1.00"), D("19.00"), D("7.00"), D("12.00"), D("20.00")),
        ("USD", 4, 2, 0.5, D("5.00"), D("65.01"), D("40.01"), D("25.00"), D("70.01"))]
    assert list(codes.columns) == ["discount_code", "currency", "orders", "discount_amount", "revenue"]
    assert rows(codes, *codes.columns) == [(None, "GBP", 1, D("1.00"), D("7.00")),
                                          ("FREESHIP", "USD", 1, D("0.00"), D("10.01")),
                                          ("SPRING", "USD", 1, D("5.00"), D("30.00"))]


def test_codes_by_orders_then_name_with_the_orders_without_a_code_last():
    used = [("B", "1.00"), ("A", "1.00"), (None, "2.00"), (None, "2.00"), (None, "2.00"), ("C", "1.00"),
            ("C", "0.50"), (None, "0.00")]
    orders = frame(*(dict(order_id=str(n), discount_code=code, discount_total=amount, total="10.00")
                     for n, (code, amount) in enumerate(used)))
    summary, codes = analysis.discounts(orders)
    assert rows(codes, "discount_code", "orders", "discount_amount") == [
        ("C", 2, D("1.50")), ("A", 1, D("1.00")), ("B", 1, D("1.00")), (None, 3, D("6.00"))]
    assert rows(summary, "orders", "discounted_orders", "discount_amount") == [(8, 7, D("9.50"))]


def test_discounts_per_period():
    summary, codes = analysis.discounts(two_shops(), "M")
    assert rows(summary, "period", "currency", "orders", "discounted_orders", "discount_amount") == [
        ("2026-01-01", "GBP", 1, 0, D("0.00")), ("2026-01-01", "USD", 2, 1, D("0.00")),
        ("2026-02-01", "GBP", 1, 1, D("1.00")), ("2026-02-01", "USD", 2, 1, D("5.00"))]
    assert rows(codes, "period", "discount_code", "currency", "orders") == [
        ("2026-01-01", "FREESHIP", "USD", 1), ("2026-02-01", None, "GBP", 1), ("2026-02-01", "SPRING", "USD", 1)]


def test_discounts_without_a_code_column_are_one_row_without_a_code():
    summary, codes = analysis.discounts(two_shops().drop(columns="discount_code"))
    assert rows(codes, "discount_code", "currency", "orders", "discount_amount") == [
        (None, "GBP", 1, D("1.00")), (None, "USD", 1, D("5.00"))]  # FREESHIP had no amount: not discounted now


# compare_periods ----------------------------------------------------------------------------------------------------

def test_this_month_against_the_last_is_the_last_complete_month_by_default():
    """On 5 March: February against January. USD: February #1004 30.00 (a, seen in January: returning) and #1005
    5.00 (d, new); January #1001 20.00 (a) and #1002 10.01 (b), both new. GBP: b of shop 222, new in January,
    returning in February (b's January order in shop 111 is another shop's)."""
    table = analysis.compare_periods(two_shops(), "M", now="2026-03-05T08:00Z")
    assert rows(table, "currency", "metric", "current", "previous", "change") == [
        ("GBP", "orders", 1, 1, 0), ("GBP", "revenue", D("7.00"), D("12.00"), D("-5.00")),
        ("GBP", "aov", D("7.00"), D("12.00"), D("-5.00")), ("GBP", "customers", 1, 1, 0),
        ("GBP", "new_customers", 0, 1, -1), ("GBP", "returning_customers", 1, 0, 1),
        ("USD", "orders", 2, 2, 0), ("USD", "revenue", D("35.00"), D("30.01"), D("4.99")),
        ("USD", "aov", D("17.50"), D("15.01"), D("2.49")), ("USD", "customers", 2, 2, 0),
        ("USD", "new_customers", 1, 2, -1), ("USD", "returning_customers", 1, 0, 1)]
    relative = dict(zip(table["currency"] + " " + table["metric"], table["relative_change"]))
    assert relative["USD revenue"] == pytest.approx(4.99 / 30.01) and relative["USD new_customers"] == -0.5
    assert np.isnan(relative["USD returning_customers"]) and relative["USD orders"] == 0.0
    assert [table[c][0].isoformat() for c in ("current_start", "current_end", "previous_start", "previous_end")] == [
        "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00",
        "2026-02-01T00:00:00+00:00"]


def test_to_date_compares_the_period_so_far_with_as_long_from_the_previous_periods_start():
    """14 February 12:00: 1-14 February 12:00 against 1-14 January 12:00: USD #1004, #1005 (35.00) against #1001
    (20.00; #1002 on the 20th is outside); GBP #1002 7.00 against #1001 12.00."""
    table = analysis.compare_periods(two_shops(), "M", now="2026-02-14T12:00Z", to_date=True)
    picked = table[table["metric"].isin(["orders", "revenue", "aov"])]
    assert rows(picked, "currency", "current", "previous", "change") == [
        ("GBP", 1, 1, 0), ("GBP", D("7.00"), D("12.00"), D("-5.00")), ("GBP", D("7.00"), D("12.00"), D("-5.00")),
        ("USD", 2, 1, 1), ("USD", D("35.00"), D("20.00"), D("15.00")), ("USD", D("17.50"), D("20.00"), D("-2.50"))]
    assert table["previous_end"][0] == pd.Timestamp("2026-01-14T12:00Z")
    # 31 March so far (30 days 12 h) against February: never past February's end
    march = analysis.compare_periods(two_shops(), "M", now="2026-03-31T12:00Z", to_date=True)
    assert (march["previous_start"][0], march["previous_end"][0]) == (pd.Timestamp("2026-02-01T00:00Z"),
                                                                      pd.Timestamp("2026-03-01T00:00Z"))
    assert rows(march[march["metric"] == "orders"], "currency", "current", "previous") == [("GBP", 0, 1),
                                                                                          ("USD", 0, 2)]


@pytest.mark.parametrize("freq, now, current, previous", [
    ("W", "2026-02-02T00:00Z", "2026-01-26", "2026-01-19"),  # Monday midnight: the week just ended is complete
    ("W", "2026-02-01T23:59Z", "2026-01-19", "2026-01-12"),
    ("Q", "2026-04-02T00:00Z", "2026-01-01", "2025-10-01"),
    ("Y", "2027-01-01T00:00Z", "2026-01-01", "2025-01-01"),
    ("D", "2026-02-02T00:00Z", "2026-02-01", "2026-01-31"),
])
def test_the_last_complete_week_quarter_year(freq, now, current, previous):
    table = analysis.compare_periods(two_shops(), freq, now=now)
    assert (table["current_start"][0].strftime("%Y-%m-%d"), table["previous_start"][0].strftime("%Y-%m-%d")) == (
        current, previous)


def test_the_quarter_and_the_year_in_numbers():
    """Q1 2026 against Q4 2025: every USD order not refunded (65.01, 4 orders, 3 customers new) against none."""
    table = analysis.compare_periods(two_shops(), "Q", now="2026-04-02T00:00Z")
    usd = table[table["currency"] == "USD"]
    assert rows(usd, "metric", "current", "previous", "change") == [
        ("orders", 4, 0, 4), ("revenue", D("65.01"), D("0.00"), D("65.01")), ("aov", D("16.25"), None, None),
        ("customers", 3, 0, 3), ("new_customers", 3, 0, 3), ("returning_customers", 0, 0, 0)]
    assert usd["relative_change"].isna().all()


def test_no_orders_in_either_period_is_an_empty_table():
    table = analysis.compare_periods(two_shops(), "M", now="2030-01-01")
    assert table.empty and "relative_change" in table


# missing fields, shops, row order ------------------------------------------------------------------------------------

def test_missing_fields_have_their_own_group_or_are_left_out_as_documented():
    """No created_at: in no period (but in the overall discounts); no currency: its own group, last; no total:
    counted as an order of 0.00; no e-mail: an order, never a customer."""
    orders = frame(dict(order_id="1", total="10.00"),
                   dict(order_id="2", created_at=None, total="99.00", discount_total="1.00"),
                   dict(order_id="3", currency=None, total="4.00"),
                   dict(order_id="4", total=None, customer_email=None, item_count=None))
    values = analysis.order_values(orders, "M")
    assert rows(values, "currency", "orders", "revenue", "aov", "items", "items_per_order") == [
        ("USD", 2, D("10.00"), D("5.00"), 1, 1.0), (None, 1, D("4.00"), D("4.00"), 1, 1.0)]
    assert rows(analysis.discounts(orders).summary, "currency", "orders", "discounted_orders") == [
        ("USD", 3, 1), (None, 1, 0)]
    compared = analysis.compare_periods(orders, "M", now="2026-02-01")
    assert rows(compared[compared["metric"] == "customers"], "currency", "current") == [("USD", 1), (None, 1)]


def test_each_shop_through_for_shop():
    shops = analysis.by_shop((two_shops(), pd.DataFrame(columns=["account_id", "order_id"])))
    assert sorted(shops) == ["111", "222"]
    north = analysis.order_values(shops["111"].orders, "M")
    assert rows(north, "currency", "orders", "revenue") == [("USD", 2, D("30.01")), ("USD", 2, D("35.00"))]
    south = analysis.compare_periods(shops["222"].orders, "M", now="2026-03-01")
    assert set(south["currency"]) == {"GBP"}


REPORTS = {
    "order_values": lambda o: analysis.order_values(o, "W"),
    "order_values_gross": lambda o: analysis.order_values(o, "D", include_refunded=True),
    "refunds": lambda o: analysis.refunds(o, "W", min_orders=1),
    "refunds_by_order": lambda o: analysis.refunds(o, "M", by="created_at", min_orders=1),
    "discounts": lambda o: analysis.discounts(o).summary,
    "codes": lambda o: analysis.discounts(o, "Q").codes,
    "compare": lambda o: analysis.compare_periods(o, "M", now="2026-03-10"),
    "compare_to_date": lambda o: analysis.compare_periods(o, "W", now="2026-02-11T13:00Z", to_date=True),
}

order_rows = st.lists(st.fixed_dictionaries({
    "account_id": st.sampled_from(["111", "222"]), "order_id": st.sampled_from(["1001", "1002", "1003"]),
    "created_at": st.one_of(st.none(), st.integers(0, 90 * 24).map(
        lambda h: (pd.Timestamp("2026-01-01T00:00Z") + pd.Timedelta(hours=h)).isoformat())),
    "currency": st.sampled_from(["USD", "GBP", None]),
    "customer_email": st.sampled_from(["a@x.com", "b@x.com", "c@x.com", None]),
    "total": st.one_of(st.none(), st.integers(0, 5000).map(lambda c: f"{c / 100:.2f}")),
    "discount_total": st.sampled_from(["0.00", "1.50", None]),
    "discount_code": st.sampled_from([None, "A", "B"]),
    "payment_status": st.sampled_from(["completed", "refunded", "pending"]),
    "item_count": st.one_of(st.none(), st.integers(0, 4)),
    "refunded_at": st.sampled_from([None, "2026-02-03T00:00:00Z", "2026-03-30T00:00:00Z"]),
}), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_rows, st.randoms(use_true_random=False))
def test_the_reports_do_not_depend_on_the_orders_row_order(drawn, rng):
    orders = frame(*drawn)
    shuffled = orders.take(rng.sample(range(len(orders)), len(orders))).reset_index(drop=True)
    for name, report in REPORTS.items():
        pd.testing.assert_frame_equal(report(orders), report(shuffled), obj=name)


# from stored events -------------------------------------------------------------------------------------------------

def body(account, oid, created, updated=None, total="10.0", item_total=None, discount="0.0", shipping="0.0",
         payment="completed", currency="USD", email="a@example.com", code=None, item_count=1):
    payload = {"id": oid, "created_at": created, "updated_at": updated or created, "total": total,
               "item_total": item_total or total, "discount_total": discount, "shipping_total": shipping,
               "tax_total": "0.0", "item_count": item_count, "customer_email": email, "shipping_status": "unshipped",
               "payment_status": payment, "currency": {"id": currency}, "items": []}
    if code:
        payload["adjustments"] = [{"id": "9", "type": "discount", "amount": f"-{discount}",
                                   "label": f"[{code}] {code} discount"}]
    return json.dumps({"account_id": account, "type": "order.updated", "payload": payload}).encode()


def stored_events():
    """Two shops, both with orders 1001 and 1002; 111's 1002 refunded on 9 March, then updated on 30 March; events
    stored out of order (an older state after a newer one)."""
    return [
        body("111", "1001", "2026-03-02T10:00:00Z", total="25.0", item_total="28.0", discount="5.0", shipping="2.0",
             code="SPRING", item_count=2),
        body("111", "1002", "2026-03-03T10:00:00Z", "2026-03-30T10:00:00Z", total="40.0", payment="refunded",
             email="b@example.com"),
        body("111", "1002", "2026-03-03T10:00:00Z", "2026-03-09T10:00:00Z", total="40.0", payment="refunded",
             email="b@example.com"),
        body("111", "1002", "2026-03-03T10:00:00Z", total="40.0", email="b@example.com"),
        body("111", "1003", "2026-04-01T10:00:00Z", total="15.5", item_count=3),
        body("222", "1001", "2026-03-05T10:00:00Z", total="8.0", currency="GBP", email="a@example.com"),
        body("222", "1002", "2026-03-31T23:00:00Z", total="3.0", currency="GBP", discount="1.0",
             email="c@example.com", item_count=None),
    ]


def test_the_reports_from_a_store_of_hand_written_events(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        for event in stored_events():
            store.append(event, parse_envelope(event))
        frames = analysis.frames(store)
    north, south = (analysis.for_shop(frames, account).orders for account in ("111", "222"))
    assert rows(analysis.order_values(north, "M"), "period", "currency", "orders", "revenue", "aov",
                "goods_revenue", "items_per_order") == [
        ("2026-03-01", "USD", 1, D("25.00"), D("25.00"), D("23.00"), 2.0),
        ("2026-04-01", "USD", 1, D("15.50"), D("15.50"), D("15.50"), 3.0)]
    weekly = analysis.refunds(north, "W")  # refunded on 9 March (a Monday), ordered on 3 March
    assert rows(weekly, "period", "orders", "refunded", "refunded_amount") == [
        ("2026-03-02", 2, 0, D("0.00")), ("2026-03-09", 0, 1, D("40.00")), ("2026-03-30", 1, 0, D("0.00"))]
    assert rows(analysis.refunds(north, "W", by="created_at"), "period", "orders", "refunded") == [
        ("2026-03-02", 2, 1), ("2026-03-30", 1, 0)]
    summary, codes = analysis.discounts(frames.orders)
    assert rows(summary, "currency", "orders", "discounted_orders", "discount_amount", "revenue_before_discounts") \
        == [("GBP", 2, 1, D("1.00"), D("12.00")), ("USD", 2, 1, D("5.00"), D("45.50"))]
    assert rows(codes, "discount_code", "currency", "orders", "discount_amount") == [
        (None, "GBP", 1, D("1.00")), ("SPRING", "USD", 1, D("5.00"))]
    compared = analysis.compare_periods(frames.orders, "M", now="2026-04-02")
    assert rows(compared[compared["metric"].isin(["orders", "revenue", "new_customers"])], "currency", "metric",
                "current", "previous") == [
        ("GBP", "orders", 2, 0), ("GBP", "revenue", D("11.00"), D("0.00")), ("GBP", "new_customers", 2, 0),
        ("USD", "orders", 1, 0), ("USD", "revenue", D("25.00"), D("0.00")), ("USD", "new_customers", 1, 0)]
