"""The catalogue: products(store) from hand-written product events, the catalogue report on a hand-built frame, and
the plan's product cap read from the account (the sandbox's answer, stored account events)."""

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bchooks import analysis
from bchooks.analysis.catalogue import PRODUCT_COLUMNS, product_rows, products_frame
from bchooks.shops.plans import plan_of, plan_of_account, product_cap, stored_caps
from bchooks.store import StoredEvent, open_store
from bchooks.wire import parse_envelope

T1, T2, T3 = "2026-03-01T10:00:00.000Z", "2026-03-02T10:00:00.000Z", "2026-03-03T10:00:00.000Z"


def body(event_type, payload, account_id="1", format="docs"):
    document = {"account_id": account_id, "type": event_type, "payload": payload} if format == "docs" else \
        {"type": event_type, "data": payload}
    return json.dumps(document, separators=(",", ":")).encode()


def flat(product_id, name, updated, options, status="active"):
    return {"id": product_id, "name": name, "status": status, "created_at": T1, "updated_at": updated,
            "options": [{"id": oid, "name": oname, "price": price, "quantity": qty, "sold": sold}
                        for oid, oname, price, qty, sold in options]}


def jsonapi(product_id, name, updated, options, status="active"):
    return {"data": {"id": product_id, "type": "products",
                     "attributes": {"name": name, "status": status, "created_at": T1, "updated_at": updated},
                     "relationships": {"options": {"data": [{"id": o[0], "type": "product_options"}
                                                            for o in options]}}},
            "included": [{"id": oid, "type": "product_options",
                          "attributes": {"name": oname, "price": price, "quantity": qty, "sold": sold}}
                         for oid, oname, price, qty, sold in reversed(options)]}  # (order: the relationship's)


def stream():
    """Hand-written product events of two shops using the same product ids, in arrival order."""
    return [
        body("product.created", flat("10", "Tee", T1, [("o1", "S", "10.0", 5, 1), ("o2", "M", "10.5", 0, 3)])),
        # out of order: the newest state (T3) arrives before an older update (T2)
        body("product.updated", flat("10", "Tee", T3, [("o1", "S", "12.0", 2, 4), ("o2", "M", "10.5", 0, 3)])),
        body("product.updated", flat("10", "Tee old", T2, [("o1", "S", "11.0", 4, 2), ("o2", "M", "10.5", 0, 3)])),
        # malformed: would win (newest) were it read; skipped instead
        body("product.updated", {**flat("10", "Broken", "2026-03-09T00:00:00.000Z", []), "options": "oops"}),
        b'{"account_id":"1","type":"product.updated","payload":[1,2]}',
        body("product.updated", {"data": {"id": "10", "type": "products"}}),  # JSON:API without attributes
        body("product.deleted", {"note": "no id"}),
        body("product.created", jsonapi("11", "Cap", T1, [("c1", "", "8", 7, 0)], status="hidden")),
        body("product.created", flat("12", "Zine", T1, [("z1", "", "5.5", 9, 0)])),
        body("product.deleted", {"id": "12"}),
        body("product.created", flat("13", "Pin", T1, [("p1", "", "3.0", 1, 0)])),
        body("product.deleted", {"id": "13"}),
        body("product.updated", flat("13", "Pin", T2, [("p1", "", "3.0", 20, 0)])),  # back after its deletion
        body("product.deleted", {"id": "14"}),  # known only from its deletion
        # shop 2: the same product id 10, a JSON:API document in the guide's envelope (no account: None)
        body("product.created", jsonapi("10", "Mug", T2, [("m1", "Blue", "20.0", 0, 7)], status="sold_out"),
             account_id="2"),
        body("product.created", jsonapi("10", "Guide mug", T1, [("g1", "", "1", 1, 1)]), format="guide"),
    ]


EXPECTED = [  # account, product, name, status, option id, option name, price, stock, sold, deleted
    ("1", "10", "Tee", "active", "o1", "S", 1200, 2, 4, False),
    ("1", "10", "Tee", "active", "o2", "M", 1050, 0, 3, False),
    ("1", "11", "Cap", "hidden", "c1", "", 800, 7, 0, False),
    ("1", "12", "Zine", "active", "z1", "", 550, 9, 0, True),
    ("1", "13", "Pin", "active", "p1", "", 300, 20, 0, False),
    ("1", "14", None, None, None, None, None, None, None, True),
    ("2", "10", "Mug", "sold_out", "m1", "Blue", 2000, 0, 7, False),
    (None, "10", "Guide mug", "active", "g1", "", 100, 1, 1, False),
]


def rows_of(frame):
    columns = ["account_id", "product_id", "product_name", "status", "option_id", "option_name", "price_cents",
               "quantity", "sold", "deleted"]
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame[columns].itertuples(index=False)]


@pytest.fixture
def engine_store(engine_db):
    """An empty store of each engine (SQLite, PostgreSQL): products are read through the store's interface."""
    with open_store(engine_db) as opened:
        yield opened


def test_products_from_a_store(engine_store):
    store = engine_store
    for event in stream():
        store.append(event, parse_envelope(event))
    store.cursors.remember_shop("1", "Alpha")
    frame = analysis.products(store)
    assert tuple(frame.columns) == PRODUCT_COLUMNS
    assert rows_of(frame) == EXPECTED
    assert frame["store_name"].tolist()[:6] == ["Alpha"] * 6 and frame["store_name"].iloc[6:].isna().all()
    assert frame.loc[0, "updated_at"] == pd.Timestamp(T3) and frame.loc[0, "created_at"] == pd.Timestamp(T1)
    assert str(frame["quantity"].dtype) == "Int64" and frame["deleted"].dtype == bool


def test_products_of_an_empty_store(store):
    frame = analysis.products(store)
    assert tuple(frame.columns) == PRODUCT_COLUMNS and len(frame) == 0
    assert str(frame["sold"].dtype) == "Int64"


def _stored(bodies):
    return [StoredEvent(n + 1, T1, parse_envelope(b).type, parse_envelope(b).account_id, None, b, "", None, None)
            for n, b in enumerate(bodies)]


STATES = [  # state events only (no deletions): the result cannot depend on their arrival order
    body("product.created", flat("10", "Tee", T1, [("o1", "S", "10.0", 5, 1)])),
    body("product.updated", flat("10", "Tee", T3, [("o1", "S", "10.0", 2, 4)])),
    body("product.updated", flat("10", "Tee tie", T3, [("o1", "S", "10.0", 3, 4)])),  # same time: digest decides
    body("product.updated", flat("10", "Tee undated", None, [("o1", "S", "10.0", 9, 9)])),
    body("product.created", jsonapi("10", "Mug", T2, [("m1", "", "20.0", 1, 7)]), account_id="2"),
    body("product.updated", jsonapi("10", "Mug", T1, [("m1", "", "20.0", 4, 4)]), account_id="2"),
]


@settings(max_examples=40, deadline=None)
@given(st.permutations(STATES))
def test_state_does_not_depend_on_arrival_order(bodies):
    frame = products_frame(product_rows(_stored(bodies)))
    reference = products_frame(product_rows(_stored(STATES)))
    pd.testing.assert_frame_equal(frame, reference)
    assert frame["product_name"].tolist()[0] in ("Tee", "Tee tie") and frame["quantity"].tolist()[1] == 1


def test_deletion_is_decided_by_arrival():
    created = body("product.created", flat("12", "Zine", T1, [("z1", "", "5.5", 9, 0)]))
    deleted = body("product.deleted", {"id": "12"})
    assert products_frame(product_rows(_stored([created, deleted])))["deleted"].tolist() == [True]
    assert products_frame(product_rows(_stored([deleted, created])))["deleted"].tolist() == [False]


# -- the report
def options_frame():
    rows = [  # account, name, product, product name, status, option, stock, sold, deleted
        ("1", "Alpha", "10", "Tee", "active", "S", 0, 4, False),
        ("1", "Alpha", "10", "Tee", "active", "M", 0, 2, False),
        ("1", "Alpha", "11", "Cap", "active", "A", 3, 1, False),
        ("1", "Alpha", "11", "Cap", "active", "B", 10, 0, False),
        ("1", "Alpha", "12", "Zine", "active", "", 8, 0, False),
        ("1", "Alpha", "13", "Pin", "active", "", 5, 0, False),
        ("1", "Alpha", "14", "Print", "hidden", "", 0, 0, False),
        ("1", "Alpha", "15", "Mug", "sold_out", "", 2, 9, False),
        ("1", "Alpha", "16", "Bag", "active", "", 0, 0, True),
        ("1", "Alpha", "17", "Poster", "coming_soon", "", 0, 0, False),
        ("1", "Alpha", "18", "Card", "active", "", None, None, False),
        ("2", None, "10", "Tee", "active", "", 1, 0, False),
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "store_name", "product_id", "product_name", "status",
                                        "option_name", "quantity", "sold", "deleted"])
    frame.insert(5, "option_id", [f"{a}-{p}-{o}" for a, _, p, _, _, o, *_ in rows])
    for name in ("quantity", "sold"):
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    return frame


ITEMS = pd.DataFrame({"account_id": ["1", "1"], "order_id": ["A-1", "A-2"], "product_id": ["11", "13"],
                      "quantity": [1, 1]})
ITEMS_OTHER_SHOP = pd.DataFrame({"account_id": ["1"], "order_id": ["A-1"], "product_id": ["10"], "quantity": [1]})


def test_catalogue_problems():
    report = analysis.catalogue(options_frame(), pd.concat([ITEMS, ITEMS_OTHER_SHOP]), low_stock=5,
                                plan_cap={"1": 5})
    problems = [(r.account_id, r.problem, r.product_id, None if pd.isna(r.option_name) else r.option_name,
                 r.quantity, r.sold) for r in report.problems.itertuples()]
    assert problems == [
        ("1", "sold_out_listed", "15", None, 2, 9),  # status sold_out (Mug before Tee: by name)
        ("1", "sold_out_listed", "10", None, 0, 6),  # active, every option at 0
        ("1", "low_stock", "11", "A", 3, 1),
        ("1", "low_stock", "13", "", 5, 0),  # 5 <= 5; sold in an order, so not never sold
        ("1", "never_sold", "12", None, 8, 0),
        ("2", "low_stock", "10", "", 1, 0),
        ("2", "never_sold", "10", None, 1, 0),  # shop 1's product 10 sold, not shop 2's
    ]
    assert report.problems["store_name"].tolist()[:5] == ["Alpha"] * 5


def test_catalogue_shops_and_cap():
    report = analysis.catalogue(options_frame(), ITEMS, plan_cap={"1": 5})
    shops = report.shops
    assert shops["account_id"].tolist() == ["1", "2"]
    first = shops.iloc[0]
    assert (first["products"], first["listed"], first["plan_cap"], first["cap_left"], first["over_cap"]) == \
        (8, 7, 5, -2, True)
    assert (first["sold_out_listed"], first["low_stock"], first["never_sold"]) == (2, 2, 1)
    assert first["sell_through"] == pytest.approx(16 / 44)
    second = shops.iloc[1]
    assert pd.isna(second["plan_cap"]) and pd.isna(second["cap_left"]) and pd.isna(second["over_cap"])
    assert (second["products"], second["listed"], second["never_sold"], second["sell_through"]) == (1, 1, 1, 0.0)
    assert analysis.catalogue(options_frame(), plan_cap=100).shops["plan_cap"].tolist() == [100, 100]
    assert analysis.catalogue(options_frame()).shops["plan_cap"].isna().all()  # no cap given: unknown


def test_catalogue_without_items_checks_sold_only():
    report = analysis.catalogue(options_frame())
    never = report.problems[report.problems["problem"] == "never_sold"]["product_id"].tolist()
    assert never == ["13", "12", "10"]  # Pin, Zine (by name), then shop 2's Tee


def test_sell_through():
    table = analysis.catalogue(options_frame(), ITEMS).sell_through
    first = table[table["account_id"] == "1"]
    assert first["product_id"].tolist() == ["10", "15", "11", "13", "12", "18", "17", "14"]
    assert first["sell_through"].tolist()[:5] == [1.0, 9 / 11, 1 / 14, 0.0, 0.0]
    assert first["sell_through"].iloc[5:].isna().all()
    assert "16" not in table["product_id"].tolist()  # deleted


def test_catalogue_of_a_store(store):
    for event in stream():
        store.append(event, parse_envelope(event))
    report = analysis.catalogue(analysis.products(store), low_stock=2)
    assert report.shops["account_id"].isna().tolist() == [False, False, True]
    assert report.shops["products"].tolist() == [3, 1, 1]  # shop 1: Tee, Cap, Pin (Zine and 14 deleted)
    assert [(r.problem, r.product_id, None if pd.isna(r.option_name) else r.option_name)
            for r in report.problems.itertuples()] == [
        ("low_stock", "10", "S"), ("low_stock", "10", "M"), ("never_sold", "13", None),
        ("sold_out_listed", "10", None), ("low_stock", "10", "")]


# -- the plan's cap
def test_the_sandbox_answers_the_plan(sandbox_server, client):
    assert product_cap(client) == 50  # the sandbox's shops start on Platinum
    plan = plan_of(client)
    assert (plan.id, plan.name, plan.max_images_per_product, str(plan.monthly_rate)) == ("platinum", "Platinum", 5,
                                                                                          "15.0")
    bare = client.get_json("/v1/accounts")  # without include=plan: the relationship only, no cap
    assert "included" not in bare and plan_of_account(bare).max_products is None
    sandbox_server.sandbox.trigger("account.plan.upgraded", 1)
    assert product_cap(client) == 500


@pytest.mark.parametrize("payload,cap", [
    ({"data": [{"id": "1", "type": "accounts", "relationships": {"plan": {"data": {"id": "gold"}}}}]}, None),
    ({"data": [{"id": "1", "type": "accounts", "relationships": {"plan": {"data": {"id": "gold"}}}}],
      "included": [{"id": "gold", "type": "plans", "attributes": {"max_products": "5"}}]}, 5),
    ({"data": [{"id": "1", "type": "accounts"}], "included": [{"id": "gold", "type": "plans"}]}, "no plan"),
    ({"id": "1", "plan": {"name": "Gold", "max_products": 5}}, 5),
    ({"id": "1", "plan": "Gold"}, None),
    ({"id": "1", "plan": {"max_products": True}}, None),
    ({"id": "1"}, "no plan"),
    ([1, 2], "no plan"),
])
def test_plan_of_account_is_tolerant(payload, cap):
    plan = plan_of_account(payload)
    assert (plan is None and cap == "no plan") or (plan is not None and plan.max_products == cap)


def test_stored_plan_caps(store):
    events = [
        body("account.updated", {"id": "1", "plan": {"name": "Diamond", "max_products": 500}}),
        body("account.plan.downgraded", {"id": "1", "plan": "Gold"}),  # named without its cap: unknown
        body("account.updated", {"data": {"id": "2", "type": "accounts", "attributes": {},
                                          "relationships": {"plan": {"data": {"id": "platinum", "type": "plans"}}}},
                                 "included": [{"id": "platinum", "type": "plans", "attributes": {"max_products": 50}}]},
             account_id="2"),
        body("account.updated", {"id": "3", "description": "no plan said"}, account_id="3"),
        body("account.updated", {"id": "2", "description": "no plan said"}, account_id="2"),
    ]
    for event in events:
        store.append(event, parse_envelope(event))
    assert stored_caps(store) == {"1": None, "2": 50}
