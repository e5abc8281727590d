"""Order state and reports: hand-built event sequences, exact money, incremental == rebuild."""

import json
import random
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bchooks import EventStore, analysis, parse_envelope
from bchooks.analysis import cache
from bchooks.analysis.cache import Projection
from bchooks.simulator.shop import Shop


def put(store, *bodies):
    for body in bodies:
        store.append(body, parse_envelope(body))


def order(oid="NGRP-1", updated="2026-01-02T00:00:00.000Z", shipping="unshipped", payment="completed",
          total="10.0", currency="USD", items=None, fmt="docs", shape="flat", extra=None):
    items = items if items is not None else [{"id": "1", "product_id": "p1", "product_name": "Tee",
                                              "product_option_name": "M", "quantity": 2, "price": "5.0",
                                              "total": "10.0"}]
    flat = {"id": oid, "created_at": "2026-01-01T00:00:00.000Z", "updated_at": updated, "completed_at":
            "2026-01-01T00:00:00.000Z", "total": total, "item_total": total, "discount_total": "0.0",
            "shipping_total": "0.0", "tax_total": "0.0", "item_count": 2, "customer_email": "A@Example.com",
            "customer_first_name": "Ada", "customer_last_name": "Lovelace", "shipping_country_id": "GB",
            "shipping_country_name": "United Kingdom", "shipping_status": shipping, "payment_status": payment,
            "currency": {"id": currency}, "items": items, **(extra or {})}
    if shape == "jsonapi":
        attributes = {k: v for k, v in flat.items() if k not in ("id", "currency", "items")}
        payload = {"data": {"id": oid, "type": "orders", "attributes": attributes, "relationships": {
            "currency": {"data": {"id": currency, "type": "currencies"}},
            "items": {"data": [{"id": i["id"], "type": "order_line_items"} for i in items]}}},
            "included": [{"id": i["id"], "type": "order_line_items",
                          "attributes": {k: v for k, v in i.items() if k not in ("id", "product_id")},
                          "relationships": {"product": {"data": {"id": i["product_id"], "type": "products"}}}}
                         for i in items]}
    else:
        payload = flat
    document = {"account_id": "1", "type": "order.updated", "payload": payload} if fmt == "docs" else \
        {"type": "order.updated", "data": payload}
    return json.dumps(document).encode()


@pytest.fixture
def fresh(tmp_path):
    with EventStore(tmp_path / "events.db") as store:
        yield store


def test_newest_update_wins_whatever_the_arrival_order(fresh):
    put(fresh, order(updated="2026-01-03T00:00:00.000Z", shipping="shipped"),
        order(updated="2026-01-02T00:00:00.000Z", shipping="unshipped"))  # an older update arrives later
    orders = analysis.frames(fresh).orders
    assert len(orders) == 1 and orders.loc[0, "shipping_status"] == "shipped"
    assert orders.loc[0, "shipped_at"] == pd.Timestamp("2026-01-03", tz="UTC")


def test_duplicates_count_once_and_formats_and_shapes_agree(fresh):
    put(fresh, order(), order(fmt="guide"), order(shape="jsonapi", updated="2026-01-02T00:00:00Z"))
    orders = analysis.frames(fresh).orders
    items = analysis.frames(fresh).items
    assert len(orders) == 1 and len(items) == 1
    assert items.loc[0, "product_name"] == "Tee" and items.loc[0, "total_cents"] == 1000
    assert orders.loc[0, "customer_email"] == "a@example.com" and orders.loc[0, "customer_name"] == "Ada Lovelace"


def test_update_before_create_and_ties_are_deterministic(tmp_path):
    first = order(total="10.0")
    second = order(total="12.0")  # same updated_at: the body's hash decides
    results = []
    for name, sequence in (("a", (first, second)), ("b", (second, first))):
        with EventStore(tmp_path / f"{name}.db") as store:
            put(store, *sequence)
            results.append(analysis.frames(store).orders.loc[0, "total_cents"])
    assert results[0] == results[1]


def test_unknown_currency_zero_totals_refunds_and_deletions(fresh):
    put(fresh, order("A", currency="XTS", total="0.0", items=[]),
        order("B", payment="refunded", total="20.0"),
        json.dumps({"account_id": "1", "type": "product.deleted", "payload": {"id": "9"}}).encode(),
        json.dumps({"account_id": "1", "type": "order.created", "payload": {"total": "5.0"}}).encode())  # no id
    orders = analysis.frames(fresh).orders
    assert sorted(orders["order_id"]) == ["A", "B"]
    assert set(orders["currency"].astype(str)) == {"XTS", "USD"}
    summary = analysis.summary(*analysis.frames(fresh))["value"]
    assert summary["revenue XTS"] == Decimal("0.00") and "revenue USD" not in summary
    assert summary["refunded orders"] == 1


def test_money_sums_equal_exact_decimal_sums(fresh):
    bodies = Shop(5).events("order.created", 300) + Shop(5).events("order.updated", 50)
    put(fresh, *bodies)
    exact = {}
    latest = {}
    for body in bodies:
        payload = json.loads(body)["payload"]
        if payload["id"] not in latest or payload["updated_at"] > latest[payload["id"]]["updated_at"]:
            latest[payload["id"]] = payload
    for payload in latest.values():
        if payload["payment_status"] != "refunded":
            currency = payload["currency"]["id"]
            exact[currency] = exact.get(currency, Decimal(0)) + Decimal(payload["total"])
    summary = analysis.summary(*analysis.frames(fresh))["value"]
    for currency, total in exact.items():
        assert summary[f"revenue {currency}"] == total
    weekly = analysis.revenue(analysis.frames(fresh).orders, "W")
    for currency, total in exact.items():
        assert sum(weekly[weekly["currency"] == currency]["revenue"]) == total


def test_reports_are_sorted_as_documented(fresh):
    put(fresh, *Shop(8).events("order.created", 200), *Shop(8).events("order.updated", 60))
    orders, items = analysis.frames(fresh).orders, analysis.frames(fresh).items
    revenue = analysis.revenue(orders, "M")
    assert list(revenue.columns) == ["period", "currency", "orders", "revenue"]
    assert revenue[["period", "currency"]].apply(tuple, axis=1).is_monotonic_increasing
    top = analysis.top_products(items, by="units", n=5)
    assert top["units"].is_monotonic_decreasing and len(top) == 5
    countries = analysis.sales_by_country(orders)
    assert countries["orders"].is_monotonic_decreasing
    assert analysis.open_orders(orders)["created_at"].is_monotonic_increasing
    assert analysis.shipping_times(orders)["time_to_ship"].is_monotonic_decreasing
    assert 0 < analysis.repeat_rate(orders) < 1
    customers = analysis.customers(orders)
    values = customers.groupby("currency")["lifetime_value_cents"]
    assert values.apply(lambda s: list(s) == sorted(s, reverse=True)).all()
    with pytest.raises(ValueError):
        analysis.revenue(orders, "Y")


def frames_equal(left, right):
    """Equal as a user compares them: values, dtypes, and categories in the same order."""
    for a, b in zip(left, right):
        pd.testing.assert_frame_equal(a, b, check_categorical=True)
        assert a.equals(b)
        for name in a.columns:
            if isinstance(a[name].dtype, pd.CategoricalDtype):
                assert list(a[name].cat.categories) == list(b[name].cat.categories), name


@pytest.fixture(params=["pandas", "arrow"])
def labels_by(request, monkeypatch):
    """Categoricals united and matched by pandas (few labels) or by Arrow (many: forced here)."""
    if request.param == "arrow":
        import bchooks.analysis.latest
        monkeypatch.setattr(bchooks.analysis.latest, "MANY_LABELS", 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10 ** 6), cuts=st.lists(st.integers(1, 60), min_size=1, max_size=5))
@example(seed=68, cuts=[2, 4])  # (a segment whose line items have no account: its categories had lost their dtype)
def test_incremental_refreshes_equal_a_rebuild(tmp_path_factory, labels_by, seed, cuts):
    rng = random.Random(seed)
    shop = Shop(seed)
    bodies = []
    for _ in range(sum(cuts)):
        kind = rng.choice(["order.created", "order.created", "order.updated", "product.updated"])
        body = shop.events(kind, 1, shape=rng.choice(["flat", "jsonapi"]), format=rng.choice(["docs", "guide"]))[0]
        bodies.append(body)
        if rng.random() < 0.1:
            bodies.append(body)  # a redelivery
    rng.shuffle(bodies)  # out of order
    with EventStore(tmp_path_factory.mktemp("p") / "events.db") as store:
        projection = Projection(store)
        position = 0
        for cut in cuts:
            put(store, *bodies[position:position + cut])
            position += cut
            projection.refresh()
        before = projection._manifest()
        incremental = projection.frames()
        assert projection._manifest() == before  # a read merges in memory and never rewrites the cache
        cache._REMEMBERED.clear()  # as a new process reads it: the base and each delta, folded
        frames_equal(incremental, Projection(store).frames())
        with projection._locked():  # what refresh does once the deltas grow: the merged state becomes the base
            manifest = projection._manifest()
            projection._compact(manifest, projection._load(manifest))
            projection._save(manifest)
        assert len(projection._manifest()["segments"]) == 1
        cache._REMEMBERED.clear()
        frames_equal(incremental, Projection(store).frames())  # read back from that base
        projection.rebuild()
        frames_equal(incremental, projection.frames())
        frames_equal(incremental, Projection(store, store.path + "-other").frames())


def test_cache_notices_a_replaced_database(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        put(store, order("A"))
        assert list(analysis.frames(store).orders["order_id"]) == ["A"]
    path.unlink()
    with EventStore(path) as store:
        put(store, order("B"))
        assert list(analysis.frames(store).orders["order_id"]) == ["B"]


def test_parallel_build_equals_in_process_build(tmp_path, monkeypatch):
    import bchooks.analysis.cache as projection_module
    with EventStore(tmp_path / "events.db") as store:
        shop = Shop(3)
        put(store, *shop.events("order.created", 120), *shop.events("order.updated", 40))
        single = Projection(store, tmp_path / "single", workers=1).frames()
        monkeypatch.setattr(projection_module, "PARALLEL_FROM", 10)
        monkeypatch.setattr(projection_module, "CHUNK", 37)
        frames_equal(single, Projection(store, tmp_path / "parallel", workers=2).frames())


def test_a_cache_folder_that_cannot_be_written_means_analysis_in_memory(tmp_path, caplog):
    with EventStore(tmp_path / "events.db") as store:
        shop = Shop(5)
        put(store, *shop.events("order.created", 30), *shop.events("order.updated", 10))
        expected = Projection(store, tmp_path / "good").frames()
        (tmp_path / "a-file").write_text("not a folder")
        projection = Projection(store, tmp_path / "a-file" / "cache")
        with caplog.at_level("WARNING", logger="bchooks.analysis.cache"):
            frames_equal(projection.frames(), expected)
            put(store, *shop.events("order.updated", 5))
            frames_equal(projection.frames(), Projection(store, tmp_path / "good").frames())
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "analysing in memory" in warnings[0] and "a-file" in warnings[0]


def test_frames_with_a_missing_key_keep_those_rows_in_a_group_of_their_own(fresh):
    """Frames built by hand may lack a currency: those orders are not dropped from revenue and customers, and
    sort after every currency, as pandas would sort a missing value."""
    put(fresh, order("A", currency="USD"), order("B", currency="EUR", total="7.0"), order("C", total="3.0"))
    orders, items = analysis.Projection(fresh).frames()
    orders = orders.assign(currency=orders["currency"].where(orders["order_id"] != "C"))
    daily = analysis.revenue(orders)
    assert daily["currency"].tolist()[:2] == ["EUR", "USD"] and pd.isna(daily["currency"].iloc[2])
    assert daily["revenue"].tolist() == [Decimal("7.00"), Decimal("10.00"), Decimal("3.00")]
    by_customer = analysis.customers(orders)
    assert by_customer["lifetime_value_cents"].tolist() == [700, 1000, 300]
    assert pd.isna(by_customer["currency"].iloc[-1])


def test_typed_columns_match_pandas_also_for_values_that_are_not_text():
    from bchooks.analysis.cache import _column
    for values in (["b", None, "a", "b"], ["a", 5, None]):
        for dtype in ("str", "category"):
            built, expected = _column(values, dtype), pd.Series(values, dtype=dtype)
            assert built.dtype == expected.dtype and built.equals(expected)
            if dtype == "category":
                assert list(built.cat.categories) == list(expected.cat.categories)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), size=st.integers(0, 80))
def test_settle_is_present_after_resolve(seed, size):
    from bchooks.analysis.cache import typed
    from bchooks.analysis.rows import Batch
    from bchooks.analysis.latest import present, resolve, settle
    rng = random.Random(seed)
    shop = Shop(seed)
    bodies = [shop.events(rng.choice(["order.created", "order.updated"]), 1, shape=rng.choice(["flat", "jsonapi"]))[0]
              for _ in range(size)]
    bodies += [order(f"T{n % 3}", shipping=rng.choice(["shipped", "unshipped"]), total=f"{n}.0")
               for n in range(rng.randint(0, 6))]  # equal times: ties broken by order id and the body's hash
    rng.shuffle(bodies)
    batch = Batch()
    for n, body in enumerate(bodies, start=1):
        batch.add(n, "1", body, f"{rng.getrandbits(256):064x}", "2026-01-01T00:00:00.000Z")
    raw = typed(batch)
    settled, expected = settle(*raw), present(*resolve(*raw))
    for got, want in zip(settled, expected):
        pd.testing.assert_frame_equal(got, want)


def test_cached_categoricals_read_the_same_by_either_way(tmp_path, monkeypatch):
    import bchooks.analysis.cache as projection_module
    with EventStore(tmp_path / "events.db") as store:
        shop = Shop(4)
        put(store, *shop.events("order.created", 60), *shop.events("order.updated", 20),
            order("X", extra={"customer_email": None}))
        Projection(store).refresh()
        plain = Projection(store).frames()
        monkeypatch.setattr(projection_module, "MANY_LABELS", 0)  # every categorical the fast way
        fast = Projection(store).frames()
    assert fast[0]["customer_email"].isna().sum() == 1
    for got, want in zip(fast, plain):
        pd.testing.assert_frame_equal(got, want)


def test_a_read_after_new_events_equals_a_rebuild_categories_included(tmp_path):
    """US and GB orders, a read, an FR order: the categories are ['FR', 'GB', 'US'] as a fresh build makes them."""
    with EventStore(tmp_path / "events.db") as store:
        put(store, order("A", extra={"shipping_country_id": "US"}), order("B", extra={"shipping_country_id": "GB"}))
        analysis.frames(store).orders
        put(store, order("C", extra={"shipping_country_id": "FR"}, payment="refunded"))
        incremental = Projection(store).frames()
        assert list(incremental[0]["country"].cat.categories) == ["FR", "GB", "US"]
        rebuilt = Projection(store, tmp_path / "fresh-cache").frames()
        frames_equal(incremental, rebuilt)
        assert incremental[0].sort_values("country").equals(rebuilt[0].sort_values("country"))


def test_country_names_come_from_every_documented_shape(fresh):
    """A flat order's `shipping_country: {id, name}`, and a JSON:API order whose country is only a relationship
    with the name in `included` (the recorded real shape)."""
    flat = json.loads(order("A"))
    del flat["payload"]["shipping_country_name"], flat["payload"]["shipping_country_id"]
    flat["payload"]["shipping_country"] = {"id": "US", "name": "United States"}
    jsonapi = json.loads(order("B", shape="jsonapi"))
    attributes = jsonapi["payload"]["data"]["attributes"]
    del attributes["shipping_country_name"], attributes["shipping_country_id"]
    jsonapi["payload"]["data"]["relationships"]["shipping_country"] = {"data": {"id": "FR", "type": "countries"}}
    jsonapi["payload"]["included"].append({"id": "FR", "type": "countries", "attributes": {"name": "France"}})
    put(fresh, json.dumps(flat).encode(), json.dumps(jsonapi).encode())
    orders = analysis.frames(fresh).orders
    assert dict(zip(orders["country"], orders["country_name"])) == {"US": "United States", "FR": "France"}
    countries = analysis.sales_by_country(orders)
    assert dict(zip(countries["country"], countries["country_name"])) == {"US": "United States", "FR": "France"}


def test_orders_without_an_email_are_counted_where_a_seller_sees_them(fresh):
    put(fresh, order("A"), order("B", extra={"customer_email": None}, total="4.0"),
        order("C", extra={"customer_email": ""}, total="6.0"))
    orders = analysis.frames(fresh).orders
    by_customer = analysis.customers(orders)
    assert by_customer["lifetime_value_cents"].tolist() == [1000, 1000]  # Ada, then the orders without an e-mail
    assert pd.isna(by_customer["customer_email"].iloc[-1]) and pd.isna(by_customer["customer_name"].iloc[-1])
    assert by_customer["orders"].tolist() == [1, 2]
    summary = analysis.summary(*analysis.frames(fresh))["value"]
    assert summary["customers"] == 1 and summary["orders without customer e-mail"] == 2
    assert analysis.repeat_rate(orders) == 0.0


def test_the_headline_numbers_read_as_a_person_writes_them(fresh):
    put(fresh, order("A", shipping="shipped", updated="2026-01-01T18:35:11.187Z"), order("A2"),
        order("B", extra={"customer_email": "b@example.com"}))  # Ada came back, b did not
    summary = analysis.summary(*analysis.frames(fresh))["value"]
    assert summary["median time to ship"] == "18 h 35 min"
    assert summary["repeat customer rate"] == "50.0%"
    assert summary["first order"] == "2026-01-01 00:00 UTC"


def test_older_calls_keep_working_for_a_release_with_a_deprecation_warning(fresh):
    put(fresh, order("A"), order("B", total="7.0"))
    orders, items = analysis.frames(fresh)
    with pytest.warns(DeprecationWarning, match="analysis.frames"):
        assert analysis.orders_frame(fresh).equals(orders)
    with pytest.warns(DeprecationWarning, match="analysis.frames"):
        assert analysis.line_items_frame(fresh).equals(items)
    with pytest.warns(DeprecationWarning):
        assert analysis.summary((orders, items)).equals(analysis.summary(orders, items))
    with pytest.warns(DeprecationWarning):
        assert analysis.summary(fresh).equals(analysis.summary(orders, items))
    with pytest.warns(DeprecationWarning, match="drop the second argument"):
        assert analysis.top_products(items, orders).equals(analysis.top_products(items))
    with pytest.warns(DeprecationWarning):
        assert analysis.revenue(fresh).equals(analysis.revenue(orders))


LONE = "\ud83d"  # a lone surrogate: json.dumps writes it as the escape "\ud83d", valid JSON the receiver stores


def odd_orders(mark):
    """Orders with `mark` in every text field the analysis reads, in both payload shapes and envelope formats."""
    item = {"id": "1", "product_id": f"p{mark}", "product_name": f"Tee {mark}", "product_option_name": f"M{mark}",
            "quantity": 3, "price": "5.0", "total": "15.0"}
    extra = {"customer_email": f"Z{mark}@example.com", "customer_first_name": f"Zoë{mark}",
             "customer_last_name": mark, "shipping_country_id": f"G{mark}", "shipping_country_name": f"Land {mark}"}
    bodies = [order(f"S{mark}", items=[item], extra=extra, currency=f"U{mark}"),
              order(f"J{mark}", items=[item], extra=extra, shape="jsonapi", fmt="guide"),
              order(f"T{mark}", items=[item], extra={**extra, "shipping_status": f"shipped{mark}",
                                                     "payment_status": f"paid{mark}", "total": f"1{mark}"})]
    account = json.loads(order(f"K{mark}", items=[item]))
    account["account_id"] = f"2{mark}"
    return [*bodies, json.dumps(account).encode(), order("A"), order("B", total="7.0")]


def test_text_that_cannot_be_encoded_is_read_as_its_escape_and_the_rest_is_exact(tmp_path):
    """A lone surrogate escape in any field (accepted by the receiver) never stops the analysis: it reads as the
    six characters `\\ud83d`, as the store's own text columns keep it, and every other value is exact."""
    results = []
    for name, mark in (("odd", LONE), ("escaped", "\\ud83d")):  # the second: the six characters, sent as such
        with EventStore(tmp_path / f"{name}.db") as store:
            put(store, *odd_orders(mark))
            assert store.get(1).resource_id == f"S\\ud83d"  # (the store's column: the escape)
            frames = analysis.frames(store)
            assert Projection(store).rebuild() and analysis.frames(store).orders.equals(frames.orders)  # cached
            results.append((frames, [analysis.summary(*frames), analysis.revenue(frames.orders, "W"),
                                     analysis.top_products(frames.items, options=True),
                                     analysis.top_products(frames.items, by="units", options=True),
                                     analysis.customers(frames.orders), analysis.sales_by_country(frames.orders),
                                     analysis.open_orders(frames.orders, now="2026-02-01T00:00Z"),
                                     analysis.shipping_times(frames.orders), analysis.repeat_rate(frames.orders)]))
    (odd, odd_reports), (escaped, escaped_reports) = results
    frames_equal((odd.orders.drop(columns="event_id"), odd.items.drop(columns="event_id")),
                 (escaped.orders.drop(columns="event_id"), escaped.items.drop(columns="event_id")))
    for a, b in zip(odd_reports, escaped_reports):
        assert a.equals(b) if isinstance(a, pd.DataFrame) else a == b
    orders = odd.orders.set_index("order_id")
    assert orders.loc["S\\ud83d", "customer_name"] == "Zoë\\ud83d \\ud83d"
    assert orders.loc["S\\ud83d", "customer_email"] == "z\\ud83d@example.com"
    assert (orders.loc["S\\ud83d", "country"], orders.loc["S\\ud83d", "currency"]) == ("G\\ud83d", "U\\ud83d")
    assert orders.loc["T\\ud83d", "total_cents"] is pd.NA and orders.loc["A", "total_cents"] == 1000
    assert orders.loc["K\\ud83d", "account_id"] == "2\\ud83d"
    assert set(odd.items["product_name"]) == {"Tee \\ud83d", "Tee"}
    assert set(odd.items["option_name"]) == {"M\\ud83d", "M"} and "p\\ud83d" in set(odd.items["product_id"])
    assert odd.items["quantity"].sum() == 3 * 4 + 2 * 2


def test_the_readmes_postgresql_query_reads_every_body_the_receiver_stores(pg_url, tmp_path, monkeypatch):
    """The query as docs/postgresql.md writes it, on a real PostgreSQL: bodies holding `\\u0000` and lone surrogate
    escapes (valid JSON, stored) are read like any other; so does the analysis."""
    import psycopg
    from bchooks import open_store
    section = Path(__file__).resolve().parent.parent.joinpath("docs", "postgresql.md").read_text()
    query = section.split("```sql\n", 1)[1].split("```", 1)[0]
    bodies = [order("A"), order(f"B{LONE}", extra={"customer_first_name": f"Zoë{LONE}"}),
              order("C", extra={"customer_last_name": "nul\u0000"}), order("D", total="3.0")]
    monkeypatch.setenv("HOME", str(tmp_path))  # (the analysis cache of a PostgreSQL store lives under ~/.cache)
    with open_store(pg_url) as store:
        put(store, *bodies)
        orders = analysis.frames(store).orders.set_index("order_id")
        assert orders.loc["B\\ud83d", "customer_name"] == "Zoë\\ud83d Lovelace"
        assert orders.loc["C", "customer_name"] == "Ada nul\u0000" and orders["total_cents"].sum() == 3300
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(query).fetchall()
    assert [(r[0], r[2], r[4]) for r in rows] == [(4, "order.updated", "D"), (3, "order.updated", "C"),
                                                  (2, "order.updated", "B\\ud83d"), (1, "order.updated", "A")]
    assert [json.loads(r[5]) for r in rows] == [json.loads(b) for b in reversed(bodies)]


def test_a_cache_written_before_items_carried_the_account_is_rebuilt(tmp_path):
    """A cache of format 3 (line items without account_id) is read again from the events, not trusted."""
    from pyarrow import feather
    with EventStore(tmp_path / "events.db") as store:
        put(store, order("A"), order("B", total="7.0"))
        analysis.frames(store)
        folder = Projection(store).cache_dir
        manifest = json.loads((folder / "manifest.json").read_text())
        for path in folder.glob("items-*.arrow"):  # as the previous release wrote them
            feather.write_feather(feather.read_table(path).drop_columns(["account_id"]), path)
        (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 3}))
        frames = analysis.frames(store)
    with EventStore(tmp_path / "fresh.db") as store:
        put(store, order("A"), order("B", total="7.0"))
        frames_equal(frames, analysis.frames(store))
    assert frames.items["account_id"].tolist() == ["1", "1"]


def test_an_order_a_real_receiver_accepted_with_a_lone_surrogate_keeps_every_report_up(receiver):
    """Through a real `bchooks serve`: the body is accepted (200, stored byte for byte), and the analysis of the
    store reads it and every other order exactly."""
    import requests

    from conftest import signed
    odd = order("Z", extra={"customer_first_name": f"Zoë{LONE}", "customer_email": f"z{LONE}@example.com"},
                items=[{"id": "1", "product_id": "p9", "product_name": f"Pin {LONE}", "product_option_name": LONE,
                        "quantity": 4, "price": "2.5", "total": "10.0"}])
    assert b"\\ud83d" in odd
    for body in (order("A"), odd, order("B", total="7.0")):
        answer = requests.post(receiver.url + "/webhook", data=body, headers=signed(body), timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "stored", answer.text
    with EventStore(receiver.db) as store:
        assert store.get(2).body == odd
        orders, items = analysis.frames(store)
        summary = analysis.summary(orders, items)["value"]
        assert [r.empty for r in (analysis.customers(orders), analysis.top_products(items, options=True),
                                  analysis.revenue(orders), analysis.sales_by_country(orders))] == [False] * 4
    assert orders.set_index("order_id")["customer_name"].to_dict() == {
        "A": "Ada Lovelace", "Z": "Zoë\\ud83d Lovelace", "B": "Ada Lovelace"}
    assert set(orders["customer_email"]) == {"a@example.com", "z\\ud83d@example.com"}
    assert list(zip(items["order_id"], items["product_name"], items["option_name"], items["quantity"])) == [
        ("A", "Tee", "M", 2), ("B", "Tee", "M", 2), ("Z", "Pin \\ud83d", "\\ud83d", 4)]
    assert (summary["orders"], summary["units sold"], summary["revenue USD"]) == (3, 8, Decimal("27.00"))


def every_report(orders, items):
    return [analysis.summary(orders, items), analysis.revenue(orders, "W"), analysis.top_products(items),
            analysis.top_products(items, by="units", options=True), analysis.customers(orders),
            analysis.sales_by_country(orders), analysis.open_orders(orders), analysis.shipping_times(orders),
            analysis.repeat_rate(orders), *(analysis.summary(*shop) for shop in analysis.by_shop((orders, items))
                                             .values())]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@example([(order("Y", extra={"created_at": "-3.10"}), "1"), (order(f"Z{LONE}"), LONE)])  # a year before 1
@given(st.lists(st.tuples(st.one_of(st.just(order()), st.deferred(lambda: records_bodies())),
                          st.sampled_from(["1", "2", None, 7, LONE, "drop"])), max_size=10))
def test_every_report_reads_any_body_the_receiver_accepts(drawn):
    """Whatever order bodies the receiver accepted (odd types, odd text, odd dates, several shops or none), every
    report answers."""
    from bchooks.errors import BchooksError
    with EventStore(":memory:") as store:
        for body, account in drawn:
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict):
                document.pop("account_id", None)
                if account != "drop":
                    document["account_id"] = account
                body = json.dumps(document).encode()
            try:
                store.append(body, parse_envelope(body))
            except BchooksError:  # (refused by the receiver too)
                continue
        every_report(*analysis.frames(store))


def records_bodies():
    from test_records import bodies
    return bodies()


def test_refunded_at_is_when_the_order_was_first_seen_refunded_whatever_the_arrival_order(fresh):
    t = "2026-01-0{}T00:00:00.000Z".format
    bodies = [order(updated=t(2)), order(updated=t(4), payment="refunded"),
              order(updated=t(6), payment="refunded", shipping="shipped"), order(updated=t(3), payment="refunded")]
    kept = order(oid="NGRP-2", updated=t(5), shipping="shipped")
    put(fresh, bodies[2], kept, bodies[0])
    half = analysis.frames(fresh).orders.set_index("order_id")  # read between arrivals: the cache merges deltas
    assert half.loc["NGRP-1", "refunded_at"] == pd.Timestamp(t(6))
    put(fresh, bodies[3], bodies[1])
    orders = analysis.frames(fresh).orders.set_index("order_id")
    assert orders.loc["NGRP-1", "refunded_at"] == pd.Timestamp(t(3))  # the earliest refunded state, arrived last
    assert orders.loc["NGRP-1", "shipped_at"] == pd.Timestamp(t(6))
    assert pd.isna(orders.loc["NGRP-2", "refunded_at"]) and orders.loc["NGRP-2", "shipped_at"] == pd.Timestamp(t(5))
    assert str(orders["refunded_at"].dtype) == "datetime64[us, UTC]"
    merged = analysis.frames(fresh)
    with Projection(fresh) as projection:
        projection.rebuild()
    frames_equal(merged, analysis.frames(fresh))


def test_an_orders_discount_code_is_a_column_of_the_orders_frame(fresh):
    put(fresh, order(extra={"adjustments": [{"type": "discount", "label": "[SUMMER15] 15% off"}]}),
        order(oid="NGRP-2", shape="jsonapi"))
    orders = analysis.frames(fresh).orders.set_index("order_id")
    assert orders.loc["NGRP-1", "discount_code"] == "SUMMER15" and pd.isna(orders.loc["NGRP-2", "discount_code"])
    assert list(orders["discount_code"].cat.categories) == ["SUMMER15"]


def test_a_process_reads_only_the_new_segments_and_callers_cannot_change_what_it_remembers(fresh, monkeypatch):
    put(fresh, order("A"))
    first = analysis.frames(fresh)
    first.orders["total_cents"] = 0  # what a caller may do to its frames
    first.orders.loc[0, "order_id"] = "Z"
    first.items.insert(0, "x", 1)
    put(fresh, order("B", total="12.5"))
    read = []
    original = Projection._read
    monkeypatch.setattr(Projection, "_read", lambda self, name: read.append(name) or original(self, name))
    second = analysis.frames(fresh)
    assert len(read) == 1  # the segment written since: the rest was remembered
    assert list(second.orders["order_id"]) == ["A", "B"] and list(second.orders["total_cents"]) == [1000, 1250]
    assert "x" not in second.items and len(second.items) == 2
    cache._REMEMBERED.clear()
    frames_equal(second, analysis.frames(fresh))
    assert len(read) == 3  # a new process: the base and the delta
