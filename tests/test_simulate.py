import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bchooks.wire import EVENT_TYPES, parse_envelope
from bchooks.simulator.shop import Shop
from bchooks.wire import money_text as money


def totals_add_up(order):
    items = order["items"]
    assert Decimal(order["item_total"]) == sum(Decimal(i["total"]) for i in items)
    for item in items:
        assert Decimal(item["total"]) == Decimal(item["price"]) * item["quantity"]
    assert Decimal(order["tax_total"]) == sum(Decimal(i["tax_total"]) for i in items)
    assert Decimal(order["total"]) == (Decimal(order["item_total"]) - Decimal(order["discount_total"])
                                       + Decimal(order["shipping_total"]) + Decimal(order["tax_total"]))
    assert order["item_count"] == sum(i["quantity"] for i in items)
    assert 1 <= len(items) <= 5


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32))
def test_totals_add_up_for_any_seed(seed):
    shop = Shop(seed)
    for body in shop.events("order.created", 5) + shop.events("order.updated", 3):
        totals_add_up(json.loads(body)["payload"])


def test_same_seed_same_bytes_and_other_seed_differs():
    def run(seed):
        shop = Shop(seed)
        return [b for t in EVENT_TYPES for b in shop.events(t, 3, shape="jsonapi")]
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_every_type_in_both_shapes_and_formats_parses():
    shop = Shop(3)
    for event_type in EVENT_TYPES:
        for shape in ("flat", "jsonapi"):
            for fmt in ("docs", "guide"):
                body = shop.events(event_type, 1, shape=shape, format=fmt)[0]
                envelope = parse_envelope(body)
                assert envelope.type == event_type and envelope.resource_id
                assert envelope.format == fmt
                assert (envelope.account_id == "1234567") == (fmt == "docs")


def test_jsonapi_order_matches_flat_order():
    flat = json.loads(Shop(5).events("order.created", 1, shape="flat")[0])["payload"]
    doc = json.loads(Shop(5).events("order.created", 1, shape="jsonapi")[0])["payload"]
    attributes = doc["data"]["attributes"]
    assert doc["data"]["id"] == flat["id"] and attributes["total"] == flat["total"]
    lines = [i for i in doc["included"] if i["type"] == "order_line_items"]
    assert [i["attributes"]["total"] for i in lines] == [i["total"] for i in flat["items"]]
    assert {i["type"] for i in doc["included"]} <= {"currencies", "countries", "order_line_items", "order_adjustments"}
    discounts = [i["attributes"] for i in doc["included"] if i["type"] == "order_adjustments"]
    assert [(a["kind"], a["amount"], a["label"]) for a in discounts] == [
        (a["type"], a["amount"], a["label"]) for a in flat["adjustments"]]


def test_discounted_orders_carry_their_code_in_a_discount_adjustment():
    orders = [json.loads(b)["payload"] for b in Shop(4).events("order.created", 60)]
    discounted = [o for o in orders if o["discount_total"] != "0.0"]
    assert discounted and len(discounted) < len(orders)
    for o in orders:
        labels = [a["label"] for a in o["adjustments"] if a["type"] == "discount"]
        assert bool(labels) == (o in discounted)
        assert all(label.startswith(("[WELCOME10] ", "[SUMMER15] ")) for label in labels)
        assert all(a["amount"] == "-" + o["discount_total"] for a in o["adjustments"])


def test_orders_look_real():
    shop = Shop(11)
    orders = [json.loads(b)["payload"] for b in shop.events("order.created", 200)]
    assert {o["currency"]["id"] for o in orders} == {"USD"}  # one store, one currency, whoever buys
    assert len({o["shipping_country_id"] for o in orders}) >= 5
    assert all(o["created_at"].endswith("Z") and o["id"].startswith("BCSB-") for o in orders)
    assert [o["created_at"] for o in orders] == sorted(o["created_at"] for o in orders)


def test_updates_ship_or_refund_and_move_updated_at():
    shop = Shop(2)
    created = json.loads(shop.events("order.created", 1)[0])["payload"]
    updated = json.loads(shop.events("order.updated", 1)[0])["payload"]
    assert updated["id"] == created["id"] and updated["updated_at"] > created["updated_at"]
    assert (updated["shipping_status"], updated["payment_status"]) != ("unshipped", "completed")


def test_money_format():
    assert [money(x) for x in ("45", "45.5", "45.55", "0", "9.999")] == ["45.0", "45.5", "45.55", "0.0", "10.0"]


def test_bodies_survive_a_javascript_round_trip():
    whole_floats = []
    for body in Shop(1).events("order.created", 20):
        assert json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode() == body
        json.loads(body, parse_float=lambda text: whole_floats.append(text) if float(text).is_integer() else 0)
    assert whole_floats == []  # JSON.stringify would write 12.0 as 12
