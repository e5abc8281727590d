"""The demo shop's year of trading: ends now (or when pinned), reaches back a year, has a shop's rhythms."""

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bchooks import EventStore, analysis, parse_envelope
from bchooks.clock import parse_iso
from bchooks.wire import money_text
from bchooks.simulator import catalog
from bchooks.simulator.history import DROP_DAYS_AGO, DROP_NAME, trading_history

END = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def year():
    return trading_history(7, 1500, END)


def payloads(bodies, kind):
    return [json.loads(b)["payload"] for b in bodies if json.loads(b)["type"] == kind]


def test_the_same_seed_and_end_give_the_same_bytes_and_another_end_other_ids(year):
    bodies, _ = year
    assert trading_history(7, 1500, END)[0] == bodies
    other, _ = trading_history(7, 50, END + timedelta(days=1))
    assert not {o["id"] for o in payloads(other, "order.created")} & {o["id"] for o in payloads(bodies, "order.created")}


def test_it_reaches_back_a_year_and_ends_before_the_end(year):
    bodies, counts = year
    created = sorted(parse_iso(o["created_at"]) for o in payloads(bodies, "order.created"))
    assert counts["order.created"] == 1500 and len(created) == 1500
    assert END - timedelta(days=366) <= created[0] < END - timedelta(days=350)
    assert END - timedelta(days=3) < created[-1] < END
    updated = [parse_iso(o["updated_at"]) for o in payloads(bodies, "order.updated")]
    assert max(updated) < END


def test_weekdays_the_holidays_and_the_drop_are_busier(year):
    bodies, _ = year
    created = [parse_iso(o["created_at"]) for o in payloads(bodies, "order.created")]
    by_weekday = Counter(moment.weekday() for moment in created)
    assert min(by_weekday[d] for d in range(5)) > max(by_weekday[5], by_weekday[6])
    december_before_christmas = sum(1 for m in created if m.month == 12 and m.day <= 21 or m.month == 11 and m.day >= 20)
    february = sum(1 for m in created if m.month == 2)
    assert december_before_christmas > 1.5 * february  # (about 32 days against 28)
    drop_day = (END - timedelta(days=DROP_DAYS_AGO)).date()
    per_day = Counter(moment.date() for moment in created)
    assert per_day[drop_day] > 3 * (len(created) / 365)
    drops = [o for o in payloads(bodies, "order.created") if any(i["product_name"] == DROP_NAME for i in o["items"])]
    assert len(drops) > 20 and all(parse_iso(o["created_at"]).date() >= drop_day for o in drops)


def test_a_year_of_weekly_revenue_and_only_recent_orders_open(tmp_path, year):
    bodies, _ = year
    with EventStore(tmp_path / "events.db") as store:
        for body in bodies:
            store.append(body, parse_envelope(body))
        orders = analysis.frames(store).orders
    weekly = analysis.revenue(orders, "W")
    assert weekly["period"].nunique() >= 52
    open_orders = analysis.open_orders(orders, now=END)
    assert 0 < len(open_orders) < 40 and open_orders["age"].max() < timedelta(days=13)
    shipped = orders[orders["shipping_status"] == "shipped"]
    assert len(shipped) > 0.9 * len(orders)


def test_the_demo_year_is_added_to_simulated_orders_once_and_never_to_a_real_shop(local_receiver):
    from bchooks import Config
    from bchooks.simulator.runs import fill_demo_data, send_simulated
    from conftest import SECRET
    url, store = local_receiver
    config = Config.load(env={}, secrets=SECRET, receiver_url=url, demo_end="2026-12-01T12:00:00Z")
    send_simulated(config, "order.created", 5, seed=2, concurrency=1)  # what notebook 2 sends first
    said = fill_demo_data(config, store, orders=80)
    assert said.startswith("The store had only 5 simulated orders: sent a year") and store.count() > 85
    assert fill_demo_data(config, store, orders=80) == "The store already holds the demo year; nothing was added."


def test_a_real_shops_orders_never_get_demo_orders(tmp_path):
    from bchooks import Config
    from bchooks.simulator.runs import fill_demo_data
    from conftest import SECRET, envelope
    with EventStore(tmp_path / "events.db") as store:
        body = envelope(payload={"id": "NGRP-090092"})
        store.append(body, parse_envelope(body))
        config = Config.load(env={}, secrets=SECRET, receiver_url="http://127.0.0.1:9/webhook")
        assert fill_demo_data(config, store) == "The store holds a shop's own orders; no demo orders were added."
        assert store.count() == 1


def test_the_demo_shop_sells_in_one_currency_as_a_store_does(year):
    bodies, _ = year
    assert {o["currency"]["id"] for o in payloads(bodies, "order.created")} == {"USD"}
    pounds, _ = trading_history(7, 40, END, currency="GBP")
    orders = payloads(pounds, "order.created")
    assert {o["currency"]["id"] for o in orders} == {"GBP"}
    countries = {o["shipping_country_id"] for o in orders}
    assert len(countries) > 2  # customers from abroad pay in the store's currency: shipping too
    for order in orders:
        usd_shipping = catalog.COUNTRIES[order["shipping_country_id"]][2]
        assert order["shipping_total"] == money_text(Decimal(usd_shipping) * catalog.FX["GBP"])


def test_the_catalogue_is_listed_first_and_each_order_moves_its_products_stock(year):
    bodies, counts = year
    events = [json.loads(b) for b in bodies]
    first_order = next(n for n, e in enumerate(events) if e["type"] == "order.created")
    listed = [e["payload"] for e in events[:first_order] if e["type"] == "product.created"]
    assert len(listed) == counts["product.created"] - 1  # the drop is listed on its day
    latest, sold, restocked = {}, {}, 0
    for n, event in enumerate(events):
        payload = event["payload"]
        if event["type"].startswith("product."):
            options = {o["id"]: o for o in payload["options"]}
            before = latest.get(payload["id"])
            if before and any(options[o]["quantity"] > before[o]["quantity"] for o in before):
                restocked += 1
            latest[payload["id"]] = {k: dict(v) for k, v in options.items()}
        elif event["type"] == "order.created":
            after = [json.loads(b)["payload"] for b in bodies[n + 1:n + 1 + len(payload["items"])]]
            products = {i["product_id"] for i in payload["items"]}
            assert {p["id"] for p in after[:len(products)]} == products  # announced right after the order
            for item in payload["items"]:
                sold[item["product_option_id"]] = sold.get(item["product_option_id"], 0) + item["quantity"]
    options = {o_id: o for p in latest.values() for o_id, o in p.items()}
    assert all(options[o]["sold"] == units for o, units in sold.items())  # the stock events agree with the orders
    assert all(o["quantity"] >= 0 for o in options.values())
    assert restocked > 10 and 0 < sum(o["quantity"] == 0 for o in options.values()) < len(options) // 4
