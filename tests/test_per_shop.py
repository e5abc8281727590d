"""Per shop everywhere: two shops may use the same order numbers; every frame carries the account (and the shop's
name where the store knows it), line items are joined to their orders on (account, order), and a report for one
shop equals the same report on a store holding that shop alone."""

import json
import random
from decimal import Decimal

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bchooks import EventStore, analysis, parse_envelope
from bchooks.simulator.shop import Shop


def put(store, *bodies):
    for body in bodies:
        store.append(body, parse_envelope(body))


def order(account, oid, total, items, updated="2026-03-02T10:00:00.000Z", shipping="unshipped", payment="completed",
          email="a@example.com", created="2026-03-02T10:00:00.000Z"):
    payload = {"id": oid, "created_at": created, "updated_at": updated, "total": total,
               "customer_email": email, "shipping_country_id": "GB", "shipping_status": shipping,
               "payment_status": payment, "currency": {"id": "USD"},
               "items": [{"id": str(n), "product_id": product, "product_name": product, "quantity": quantity,
                          "price": price, "total": f"{Decimal(price) * quantity}"}
                         for n, (product, quantity, price) in enumerate(items, start=1)]}
    return json.dumps({"account_id": account, "type": "order.updated", "payload": payload}).encode()


def two_shops(store):
    """Shop 111 ('North Prints', polled: its name is known) and shop 222 (webhooks only: no name), both with an
    order 1001."""
    store.cursors.remember_shop("111", "North Prints")
    put(store,
        order("111", "1001", "10.0", [("Tee", 2, "5.0")]),
        order("222", "1001", "99.0", [("Zine", 5, "19.8")], email="b@example.com", created="2026-03-01T09:00:00Z",
              updated="2026-03-01T09:00:00Z"),
        order("111", "1002", "30.0", [("Mug", 3, "10.0")], email="b@example.com", created="2026-03-09T10:00:00Z",
              updated="2026-03-09T10:00:00Z"),
        order("111", "1003", "8.0", [("Tee", 1, "8.0")], payment="refunded", created="2026-03-10T10:00:00Z",
              updated="2026-03-10T10:00:00Z"),
        order("222", "1001", "99.0", [("Zine", 5, "19.8")], email="b@example.com", created="2026-03-01T09:00:00Z",
              updated="2026-03-04T09:00:00Z", shipping="shipped"))  # 222's 1001 shipped; 111's 1001 is not


def test_every_frame_carries_the_account_and_the_shops_name_where_known(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        two_shops(store)
        orders, items = analysis.frames(store)
    names = orders["store_name"].astype(object).fillna("(unknown)")
    assert list(zip(orders["account_id"], orders["order_id"], names)) == [
        ("222", "1001", "(unknown)"), ("111", "1001", "North Prints"), ("111", "1002", "North Prints"),
        ("111", "1003", "North Prints")]
    assert list(items.columns[:3]) == ["order_id", "account_id", "store_name"]
    assert list(zip(items["account_id"], items["order_id"], items["product_name"], items["quantity"])) == [
        ("222", "1001", "Zine", 5), ("111", "1001", "Tee", 2), ("111", "1002", "Mug", 3), ("111", "1003", "Tee", 1)]
    assert items["store_name"].isna().tolist() == [True, False, False, False]
    assert items[items["account_id"] == "222"]["quantity"].sum() == 5  # the README's advice: filter by account


def test_per_shop_reports_against_hand_computed_answers(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        two_shops(store)
        frames = analysis.frames(store)
    north, south = analysis.for_shop(frames, "111"), analysis.for_shop(frames, "222")
    assert sorted(analysis.by_shop(frames)) == ["111", "222"]
    first = analysis.summary(*north)["value"]
    assert (first["orders"], first["refunded orders"], first["units sold"], first["revenue USD"]) == (
        3, 1, 5, Decimal("40.00"))
    assert (first["customers"], first["repeat customer rate"], first["median time to ship"]) == (2, "0.0%", None)
    second = analysis.summary(*south)["value"]
    assert (second["orders"], second["units sold"], second["revenue USD"], second["median time to ship"]) == (
        1, 5, Decimal("99.00"), "3 d")
    top = analysis.top_products(north.items, by="units")
    assert list(zip(top["product_name"], top["units"], top["orders"])) == [("Mug", 3, 1), ("Tee", 2, 1)]
    weekly = analysis.revenue(north.orders, "W")
    assert list(zip(weekly["period"].dt.strftime("%Y-%m-%d"), weekly["orders"], weekly["revenue"])) == [
        ("2026-03-02", 1, Decimal("10.00")), ("2026-03-09", 1, Decimal("30.00"))]
    assert analysis.open_orders(south.orders, now="2026-04-01T00:00Z").empty
    assert analysis.open_orders(north.orders, now="2026-04-01T00:00Z")["order_id"].tolist() == ["1001", "1002"]
    assert analysis.shipping_times(south.orders)["time_to_ship"].tolist() == [pd.Timedelta(days=3)]
    assert analysis.customers(south.orders)["lifetime_value_cents"].tolist() == [9900]
    assert analysis.customers(north.orders)["lifetime_value_cents"].tolist() == [3000, 1000]
    # one shop's orders with every shop's line items (the README's old advice): only those orders' items count
    summary = analysis.summary(frames.orders[frames.orders["account_id"] == "111"], frames.items)["value"]
    assert summary["units sold"] == 5


def test_orders_without_an_account_belong_to_the_one_shop_or_form_their_own(tmp_path):
    guide = json.dumps({"type": "order.created", "data": json.loads(order("x", "7", "4.0", [("Pin", 1, "4.0")]))[
        "payload"]}).encode()
    with EventStore(tmp_path / "one.db") as store:
        put(store, order("111", "1001", "10.0", [("Tee", 2, "5.0")]), guide)
        frames = analysis.frames(store)
    assert list(analysis.by_shop(frames)) == ["111"]
    assert analysis.summary(*analysis.for_shop(frames, "111"))["value"]["units sold"] == 3
    with EventStore(tmp_path / "two.db") as store:
        put(store, order("111", "1001", "10.0", [("Tee", 2, "5.0")]), guide,
            order("222", "1001", "99.0", [("Zine", 5, "19.8")]))
        frames = analysis.frames(store)
    assert list(analysis.by_shop(frames)) == ["111", "222", None]
    assert [analysis.summary(*analysis.for_shop(frames, a))["value"]["units sold"] for a in ("111", "222", None)] \
        == [2, 5, 1]


def reports(frames):
    orders, items = frames
    return [analysis.summary(orders, items), analysis.revenue(orders, "W"), analysis.revenue(orders, "M"),
            analysis.top_products(items, n=50), analysis.top_products(items, by="units", n=50, options=True),
            analysis.customers(orders), analysis.sales_by_country(orders),
            analysis.open_orders(orders, now="2027-01-01T00:00Z"), analysis.shipping_times(orders),
            analysis.repeat_rate(orders), analysis.order_values(orders, "W"), analysis.refunds(orders, "D"),
            *analysis.discounts(orders), analysis.compare_periods(orders, "W", now="2026-01-14T12:00Z"),
            analysis.retention(orders), analysis.returning_customer_rate(orders, "D"),
            analysis.repeat_purchase_rate(orders)]


def without_events(frames):
    return [frame.drop(columns="event_id") for frame in frames]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10 ** 6), created=st.tuples(st.integers(1, 25), st.integers(1, 25)),
       updated=st.tuples(st.integers(0, 15), st.integers(0, 15)), jsonapi=st.booleans())
def test_a_report_for_one_shop_equals_it_on_a_store_holding_that_shop_alone(tmp_path_factory, seed, created,
                                                                            updated, jsonapi):
    """Two simulated shops with the same order numbers, interleaved in one store: each shop's frames (for_shop)
    and every report on them equal those of a store holding that shop alone."""
    folder = tmp_path_factory.mktemp("shops")
    shape = "jsonapi" if jsonapi else "flat"
    events = {}
    for n, account in enumerate(("111", "222")):
        shop = Shop(seed + n, account_id=account)
        events[account] = shop.events("order.created", created[n], shape=shape) + \
            shop.events("order.updated", updated[n], shape=shape)
    rng = random.Random(seed)
    mixed = [body for account in events for body in events[account]]
    rng.shuffle(mixed)
    with EventStore(folder / "both.db") as store:
        store.cursors.remember_shop("111", "North")
        store.cursors.remember_shop("222", "South")
        put(store, *mixed)
        both = analysis.frames(store)
    assert sorted(analysis.by_shop(both)) == ["111", "222"]
    for account, name in (("111", "North"), ("222", "South")):
        with EventStore(folder / f"{account}.db") as store:
            store.cursors.remember_shop(account, name)
            put(store, *events[account])
            alone = analysis.frames(store)
        mine = analysis.for_shop(both, account)
        for left, right in zip(without_events(mine), without_events(alone)):
            pd.testing.assert_frame_equal(left, right, check_categorical=True)
            assert left.equals(right)
        for left, right in zip(reports(mine), reports(alone)):
            assert left.equals(right) if isinstance(left, pd.DataFrame) else left == right


def test_order_listings_say_which_shop_each_order_is_from(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        two_shops(store)
        put(store, order("111", "1001", "10.0", [("Tee", 2, "5.0")], shipping="shipped",
                         updated="2026-03-05T10:00:00Z"))  # 111's 1001 shipped too, after 3 days as 222's
        orders = analysis.frames(store).orders
    listed = analysis.shipping_times(orders)
    assert list(zip(listed["account_id"], listed["store_name"].astype(object).fillna("-"), listed["order_id"],
                    listed["time_to_ship"])) == [("111", "North Prints", "1001", pd.Timedelta(days=3)),
                                                 ("222", "-", "1001", pd.Timedelta(days=3))]
    waiting = analysis.open_orders(orders, now="2026-04-01T00:00Z")
    assert list(zip(waiting["account_id"], waiting["order_id"])) == [("111", "1002")]
