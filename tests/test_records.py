"""Order rows from event bodies: the fast path for usual bodies gives exactly the general path's rows."""

import hashlib
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bchooks.analysis import rows as records
from bchooks.analysis.cache import typed
from bchooks.simulator.shop import Shop

# values a field may hold in a body written by someone else: the documented type most of the time, anything else
# sometimes (the fast path must refuse what it does not read exactly like the general path)
odd = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=False),
                st.sampled_from(["", " ", "0", "1.005", "12.5", "-3.10", "abc", "É", "USD"]),
                st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from(["id", "x"]), st.integers()))
# a lone surrogate (valid JSON, stored by the receiver: json.dumps writes it as the escape "\ud83d")
LONE = ["Zo\ud83d", "\udc00", "2026-01-02T03:04:05\ud83d"]
text = st.one_of(st.sampled_from(["", "x", "  Ada@Example.COM ", "2026-01-02T03:04:05.678Z", "shipped", *LONE]),
                 st.text(max_size=5))
money = st.one_of(st.sampled_from(["0.0", "45.0", "45.55", "-1.5", "1.005", "1e3", ""]), st.integers(-999, 999))
ident = st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 10 ** 12), st.sampled_from(LONE))


def field(usual):
    return st.one_of(usual, usual, usual, odd)


def maybe(strategies):
    """A dict with some of these keys (absent keys are tested too)."""
    return st.fixed_dictionaries({}, optional=strategies)


item = maybe({
    "product_id": field(ident), "product": field(st.fixed_dictionaries({"id": field(ident)})),
    "product_name": field(text), "product_option_name": field(text), "quantity": field(st.integers(0, 9)),
    "price": field(money), "total": field(money), "other": odd,
})
label = st.one_of(st.sampled_from(["[SUMMER15] 15% off", "[FREESHIPPING] Free shipping discount", "[] x", " [A]",
                                   "Standard shipping", "[X"]), text)
adjustment = maybe({
    "type": field(st.one_of(st.sampled_from(["discount", "shipping", "tax", "Discount"]), text)),
    "kind": field(st.sampled_from(["discount", "tax", ""])), "label": field(label), "amount": field(money),
})
order = maybe({
    "id": field(ident), "created_at": field(text), "updated_at": field(text), "completed_at": field(text),
    "currency": st.one_of(field(st.fixed_dictionaries({"id": field(ident)})), text), "shipping_country_id": field(ident),
    "shipping_country": field(st.fixed_dictionaries({"id": field(ident)}, optional={"name": field(text)})),
    "shipping_country_name": field(text),
    "customer_email": field(text), "customer_first_name": field(text), "customer_last_name": field(text),
    "item_count": field(st.integers(0, 9)), "item_total": field(money), "discount_total": field(money),
    "shipping_total": field(money), "tax_total": field(money), "total": field(money),
    "shipping_status": field(text), "payment_status": field(text),
    "items": st.one_of(st.lists(st.one_of(item, item, item, odd), max_size=3), odd), "note": odd,
    "adjustments": st.one_of(st.lists(st.one_of(adjustment, adjustment, odd), max_size=3), odd),
})


@st.composite
def bodies(draw):
    payload = draw(order)
    if draw(st.booleans()) and draw(st.booleans()):
        payload = {"data": {"id": payload.get("id"), "type": "orders", "attributes": payload}}  # JSON:API
    key = draw(st.sampled_from(["payload", "data", "payload", "both", "none"]))
    envelope = {"type": "order.created", "account_id": "1"}
    if key == "both":
        envelope.update(payload=payload, data=draw(st.one_of(odd, order)))
    elif key != "none":
        envelope[key] = payload
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return draw(st.sampled_from([body, body, body, body.replace(b'"items"', b'"items":null,"items"', 1),
                                 body[:-1], b"[1]", b"NaN"]))


def rows_of(bodies):
    return [(n, "1", body, hashlib.sha256(body + bytes([n % 256])).hexdigest(), f"2026-01-01T00:00:{n % 60:02d}.000Z")
            for n, body in enumerate(bodies, start=1)]


def general(rows):
    batch = records.Batch()
    added = sum(batch.add(*row) for row in rows)
    return added, batch


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([json.dumps({"type": "order.created", "payload": {
    "id": "A\ud83d", "customer_first_name": "Zo\ud83d", "updated_at": "2026-01-02T03:04:05\ud83d",
    "items": [{"product_name": "\udc00", "product_option_name": "M\ud83d", "product_id": "p\ud83d",
               "total": "1\ud83d"}],
}}).encode()])
@given(st.lists(bodies(), max_size=12))
def test_the_fast_path_gives_the_general_paths_rows_for_any_body(drawn):
    """Also for text that cannot be written as UTF-8 (lone surrogates): typed columns hold it as its escape."""
    rows = rows_of(drawn)
    added, expected = general(rows)
    batch = records.Batch()
    assert batch.extend(rows) == added
    assert batch.orders == expected.orders
    assert batch.items == expected.items
    orders, items = typed(batch)  # and whatever the values, they make typed columns
    assert len(orders) == added and len(items) == len(batch.items["order_row"])


def test_usual_bodies_take_the_fast_path_and_others_do_not():
    shop = Shop(3)
    usual = shop.events("order.created", 20) + shop.events("order.updated", 5, format="guide")
    assert all(records._usual(body) is not None for body in usual)
    others = shop.events("order.created", 3, shape="jsonapi") + [b'{"payload":{"id":"1","total":true}}', b"NaN"]
    assert all(records._usual(body) is None for body in others)
    rows = rows_of([*usual[:10], *others, *usual[10:]])  # runs broken by other bodies keep their order
    added, expected = general(rows)
    batch = records.Batch()
    assert batch.extend(rows) == added == 29  # (all but "NaN")
    assert batch.orders == expected.orders and batch.items == expected.items
    assert batch.orders["event_id"] == sorted(batch.orders["event_id"])


stamps = st.builds(
    lambda date, sep, clock, fraction, zone: f"{date}{sep}{clock}{fraction}{zone}",
    st.sampled_from(["2026-01-02", "2024-02-29", "2026-13-01", "1999-12-31", "2026-1-2"]),
    st.sampled_from(["T", " ", "t"]), st.sampled_from(["03:04:05", "23:59:60", "03:04", "03", "24:00:00"]),
    st.sampled_from(["", ".1", ".123", ".123456", ".1234567"]),
    st.sampled_from(["Z", "", "+02:00", "-0130", "+14:00", "z"]))


@settings(max_examples=200, deadline=None)
@example(["2026-01-02T03:04:05.123456+02:00", None, "2024-02-29 23:59:59Z", "2026-01-02T03:04-0130"])
@given(st.lists(st.one_of(stamps, stamps, st.none(), st.text(max_size=4)), max_size=6))
def test_timestamps_typed_as_pandas_reads_them(values):
    import pandas as pd

    from bchooks.analysis.cache import _column
    from bchooks.analysis.latest import TIME
    expected = pd.to_datetime(pd.Series(values, dtype="str"), utc=True, format="ISO8601", errors="coerce")
    built = _column(values, TIME)
    assert built.dtype == TIME
    assert built.equals(expected.astype(TIME))


def _with_adjustments(adjustments, shape="flat"):
    if shape == "flat":
        return json.dumps({"account_id": "1", "type": "order.created",
                           "payload": {"id": "A-1", "adjustments": adjustments}}).encode()
    return json.dumps({"account_id": "1", "type": "order.created", "payload": {
        "data": {"id": "A-1", "type": "orders", "attributes": {}},
        "included": adjustments}}).encode()


@pytest.mark.parametrize("adjustments, code", [
    ([{"type": "discount", "amount": "-1.5", "label": "[SUMMER15] 15% off"}], "SUMMER15"),
    ([{"kind": "discount", "label": "[FREESHIPPING] Free shipping discount"}], "FREESHIPPING"),
    ([{"label": " [WELCOME10] 10% off"}], "WELCOME10"),  # no type said: a bracketed label is a code
    ([{"type": "shipping", "label": "[Express] 2 days"}], None),  # a shipping rate's label is not a code
    ([{"kind": "shipping", "label": "[Express] 2 days"}], None),
    ([{"adjustment_type": "shipping", "label": "[Express] 2 days"}], None),
    ([{"type": "tax", "kind": "discount", "label": "[VAT] 20%"}], None),  # the type is said first
    ([{"type": "discount", "label": "10% off, no code"}, {"type": "Discount", "label": "[LATE] x"}], "LATE"),
    ([{"type": "discount", "label": "[] empty"}], None),
    ([{"type": "discount", "label": 5}], None),
    ([], None),
])
def test_the_discount_code_comes_from_the_discount_adjustments_label_on_either_path(adjustments, code):
    rows = rows_of([_with_adjustments(adjustments)])
    added, expected = general(rows)
    fast = records.Batch()
    assert fast.extend(rows) == added == 1
    assert expected.orders["discount_code"] == fast.orders["discount_code"] == [code]


@pytest.mark.parametrize("included, code", [
    ([{"id": "9", "type": "order_adjustments", "attributes": {"kind": "discount", "label": "[SUMMER15] x"}}],
     "SUMMER15"),
    ([{"id": "9", "type": "order_adjustments", "attributes": {"label": "[SUMMER15] x"}}], "SUMMER15"),
    ([{"id": "9", "type": "discounts", "attributes": {"kind": "percentage", "label": "[PCT] x"}}], "PCT"),
    ([{"id": "9", "type": "order_adjustments/discount", "attributes": {"label": "[SLASH] x"}}], "SLASH"),
    ([{"id": "9", "type": "order_adjustments", "attributes": {"kind": "shipping", "label": "[Express] x"}}], None),
    ([{"id": "9", "type": "order_line_items", "attributes": {"label": "[NOPE] x"}}], None),
])
def test_the_discount_code_of_a_jsonapi_order_comes_from_its_included_adjustments(included, code):
    batch = records.Batch()
    assert batch.extend(rows_of([_with_adjustments(included, "jsonapi")])) == 1
    assert batch.orders["discount_code"] == [code]
