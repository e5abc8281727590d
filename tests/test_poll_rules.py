"""The poller's rules (bchooks/shops/poller.py's docstring, docs/shops.md's "What a poll does"), each against a real
API emulation process that answers badly on purpose (tests/fakeapi.py): polling stores what webhooks would have."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from bchooks import EventStore
from bchooks.clock import iso
from bchooks.errors import ApiError
from bchooks.shops.poller import poll_shop
from bchooks.shops import Shop

HERE = Path(__file__).resolve().parent
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


class FakeApi:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(HERE / "fakeapi.py")], stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def load(self, orders=(), products=(), **options):
        requests.post(f"{self.url}/_control", json={"orders": list(orders), "products": list(products),
                                                    "options": options}, timeout=5).raise_for_status()

    def log(self):
        return requests.get(f"{self.url}/_control/log", timeout=5).json()["log"]

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def api():
    fake = FakeApi()
    yield fake
    fake.stop()


@pytest.fixture
def shop(api):
    return Shop("1", "basic", api.url, "Fake", "fake", "pw")


@pytest.fixture
def store(tmp_path):
    with EventStore(tmp_path / "events.db") as opened:
        yield opened


def at(minutes=0, seconds=0.0):
    return iso(BASE + timedelta(minutes=minutes, seconds=seconds))


def order(number, updated, created=None, **attributes):
    oid = f"NGRP-{number:06d}"
    item = {"id": f"{oid}-1", "type": "order_line_items",
            "attributes": {"product_name": "Tee", "quantity": 1, "price": "10.0", "total": "10.0"}}
    return {"id": oid, "type": "orders",
            "attributes": {"created_at": created or updated, "updated_at": updated, "total": "10.0", **attributes},
            "relationships": {"items": {"data": [{"type": "order_line_items", "id": item["id"]}]}},
            "_included": [item]}


def product(number, stock=5):
    pid = str(1000 + number)
    option = {"id": f"{pid}-o", "type": "product_options", "attributes": {"name": "", "quantity": stock}}
    return {"id": pid, "type": "products",
            "attributes": {"name": f"Product {number}", "created_at": at(), "updated_at": at(), "status": "active"},
            "relationships": {"options": {"data": [{"type": "product_options", "id": option["id"]}]}},
            "_included": [option]}


def events(store, account="1"):
    return [(e.type, e.resource_id) for e in store.iter_events()]


def latest(store, noun):
    """{resource id: (type, payload)} of the newest event of each resource."""
    found = {}
    for event in store.iter_events():
        if event.type.startswith(noun + "."):
            found[event.resource_id] = (event.type, json.loads(event.body)["payload"])
    return found


def test_a_new_order_is_created_once_then_updated_and_never_stored_twice(api, shop, store):
    # a real order's updated_at moves seconds after it is placed (payment completed)
    api.load([order(1, at(0, 4), created=at(0)), order(2, at(1))], [product(1)])
    first = poll_shop(store, shop)
    assert (first.orders_stored, first.products_stored) == (2, 1)
    assert sorted(events(store)) == [("order.created", "NGRP-000001"), ("order.created", "NGRP-000002"),
                                     ("product.created", "1001")]
    assert poll_shop(store, shop).orders_stored == 0 and store.count() == 3
    api.load([order(1, at(5), created=at(0), shipping_status="shipped"), order(2, at(1))], [product(1, stock=4)])
    changed = poll_shop(store, shop)
    assert (changed.orders_stored, changed.products_stored) == (1, 1)
    assert events(store)[-2:] == [("order.updated", "NGRP-000001"), ("product.updated", "1001")]
    # stock changed without updated_at moving: an update, never a second product.created
    assert [t for t, _ in events(store)].count("product.created") == 1


def test_a_product_sliding_between_pages_during_a_deletion_is_not_deleted(api, shop, store):
    catalogue = [product(n) for n in range(25)]
    api.load([], catalogue)
    poll_shop(store, shop, page_size=10)
    # product 0 is deleted while the walk reads the second page: product 10 slides back onto the first page
    api.load([], catalogue, hooks=[{"resource": "products", "offset": 10, "do": {"delete": "1000"}}])
    result = poll_shop(store, shop, page_size=10)
    assert (result.products_read, result.products_deleted) == (24, 0)  # product 10 was never listed
    assert all(kind == "product.created" for kind, _ in latest(store, "product").values())
    # the next walk misses product 0, whose own URL answers 404: deleted, and only it
    api.load([], catalogue[1:])
    again = poll_shop(store, shop, page_size=10)
    assert (again.products_stored, again.products_deleted) == (0, 1)
    state = latest(store, "product")
    assert [pid for pid, (kind, _) in state.items() if kind == "product.deleted"] == ["1000"]
    # a product back after a deletion is stored again as it is now
    api.load([], catalogue)
    back = poll_shop(store, shop, page_size=10)
    assert back.products_stored == 1 and latest(store, "product")["1000"][0] == "product.updated"


def test_a_product_missing_from_one_walk_is_deleted_only_when_confirmed(api, shop, store):
    catalogue = [product(n) for n in range(5)]
    api.load([], catalogue)
    poll_shop(store, shop)
    # a capped, link-less answer that hides the last product from the list while its own URL still answers
    api.load([], catalogue, cap=4, links=False)
    result = poll_shop(store, shop)
    assert result.products_deleted == 0 and result.products_read == 4  # (the API said nothing of a fifth)
    assert all(kind == "product.created" for kind, _ in latest(store, "product").values())


def test_an_empty_or_data_less_catalogue_deletes_nothing(api, shop, store):
    api.load([], [product(n) for n in range(3)])
    poll_shop(store, shop)
    api.load([], [product(n) for n in range(3)], products_answer=json.dumps({"errors": [{"title": "oops"}]}))
    with pytest.raises(ApiError, match="no list of products"):
        poll_shop(store, shop)
    api.load([], [])
    assert poll_shop(store, shop).products_deleted == 0
    assert all(kind == "product.created" for kind, _ in latest(store, "product").values())


def test_a_capped_page_size_loses_no_order_and_no_product(api, shop, store):
    orders = [order(n, at(n)) for n in range(30)]
    api.load(orders, [product(n) for n in range(12)], cap=7)
    result = poll_shop(store, shop, page_size=100)
    assert (result.orders_stored, result.products_stored, result.products_deleted) == (30, 12, 0)
    api.load(orders, [product(n) for n in range(12)], cap=7, links=False)
    assert poll_shop(store, shop, page_size=100).products_deleted == 0


def test_orders_listed_without_their_items_are_read_alone(api, shop, store):
    api.load([order(n, at(n)) for n in range(3)], [product(1)], included=False)
    poll_shop(store, shop)
    for _, payload in latest(store, "order").values():
        assert [i["type"] for i in payload["included"]] == ["order_line_items"]
    reads = [p for p in api.log() if "/orders/NGRP" in p]
    assert len(reads) == 3
    poll_shop(store, shop)  # unchanged orders are not read alone again
    assert len([p for p in api.log() if "/orders/NGRP" in p]) == 3


@pytest.mark.parametrize("exclusive", [False, True], ids=["inclusive", "exclusive"])
def test_a_bulk_update_at_one_time_changing_during_the_walk_skips_no_order(api, shop, store, exclusive):
    before = [order(n, at(n)) for n in range(5)]
    block = [order(100 + n, at(30)) for n in range(25)]  # a bulk "mark shipped": 25 orders at one updated_at
    after = [order(200 + n, at(40 + n)) for n in range(5)]
    # while the walk reads the block by offset, its first order is updated again (it moves out from under)
    hook = {"resource": "orders", "offset": 10, "do": {"update": "NGRP-000100", "at": at(50)}}
    api.load(before + block + after, [product(1)], exclusive_from=exclusive, hooks=[hook])
    poll_shop(store, shop, page_size=10)
    state = latest(store, "order")
    assert len(state) == 35
    assert state["NGRP-000100"][1]["data"]["attributes"]["updated_at"] == at(50)
    # a second poll finds nothing new (the cursor is right) and a new order after it
    api.load(before + block + after + [order(300, at(60))], [product(1)], exclusive_from=exclusive)
    assert poll_shop(store, shop, page_size=10).orders_stored == 2 - 1


@pytest.mark.parametrize("exclusive", [False, True], ids=["inclusive", "exclusive"])
def test_either_reading_of_updated_at_from_stores_every_order(api, shop, store, exclusive):
    orders = [order(n, at(n // 3)) for n in range(40)]  # three orders a minute
    api.load(orders, [], exclusive_from=exclusive)
    assert poll_shop(store, shop, page_size=10).orders_stored == 40
    orders += [order(100 + n, at(20)) for n in range(3)]  # at the cursor's own time
    api.load(orders, [], exclusive_from=exclusive)
    assert poll_shop(store, shop, page_size=10).orders_stored == 3


MALFORMED = [
    '["a", "list"]',
    '{"id": {"an": "object"}, "type": "orders", "attributes": {"updated_at": "2026-11-01T12:00:00.000Z"}}',
    '{"id": "NGRP-NUM", "type": "orders", "attributes": {"updated_at": 1730000000}}',
    '{"id": "NGRP-LIST", "type": "orders", "attributes": ["updated_at"]}',
    '{"id": "NGRP-BAD", "type": "orders", "attributes": {"updated_at": "not-a-date"}}',
    '{"type": "orders", "attributes": {"updated_at": "2026-11-01T12:00:00.000Z"}}',
]


def test_malformed_orders_are_rejections_and_the_rest_is_stored(api, shop, store):
    surrogate = order(7, at(7), customer_first_name="Ada \ud83d")  # a JavaScript string cut inside an emoji
    api.load([order(n, at(n)) for n in range(5)] + [surrogate], [product(1)], raw_orders=MALFORMED)
    result = poll_shop(store, shop)
    assert (result.orders_stored, result.skipped, result.products_stored) == (6, len(MALFORMED), 1)
    assert store.rejection_counts() == {"malformed_order": len(MALFORMED)}
    stored = latest(store, "order")["NGRP-000007"][1]["data"]["attributes"]["customer_first_name"]
    assert stored == "Ada \ud83d"
    assert store.cursors.get("1", "orders") == at(7)


def test_a_future_or_unreadable_timestamp_never_becomes_the_cursor(api, shop, store):
    api.load([order(1, at(1)), order(2, "9999-12-31T00:00:00.000Z")], [])
    assert poll_shop(store, shop).orders_stored == 2
    assert store.cursors.get("1", "orders") == at(1)
    api.load([order(1, at(1)), order(2, "9999-12-31T00:00:00.000Z"), order(3, at(2))], [])
    assert poll_shop(store, shop).orders_stored == 1  # a new order after it is still found
    # a cursor an older version stored from a raw string: set aside with one line, every order read again
    store.cursors.set("1", "orders", "not-a-date")
    again = poll_shop(store, shop)
    assert (again.orders_read, again.orders_stored) == (3, 0)
    assert store.cursors.get("1", "orders") == at(2)


def test_a_server_repeating_its_page_ends_the_walk_with_one_error(api, shop, store):
    api.load([order(n, at(0)) for n in range(10)], [], repeat=True)
    with pytest.raises(ApiError, match="stopped"):
        poll_shop(store, shop, page_size=10)
    assert len(api.log()) < 50


def test_requests_end_by_their_deadline_and_long_retry_afters_are_not_waited(api, shop, store):
    api.load([order(1, at(1))], [], trickle=0.5)  # every body a byte each half second: each read "on time"
    started = time.monotonic()
    with shop.client(timeout=1, deadline=2, retries=0) as client, pytest.raises(ApiError, match="within 2 s"):
        poll_shop(store, shop, client=client)
    assert time.monotonic() - started < 5
    api.load([order(1, at(1))], [], retry_after=999999)
    started = time.monotonic()
    with shop.client(max_retry_after=30) as client, pytest.raises(ApiError, match="999,999 s"):
        poll_shop(store, shop, client=client)
    assert time.monotonic() - started < 3


def _poll(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "bchooks", "poll", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _shops_file(tmp_path, *shops):
    path = tmp_path / "shops.json"
    path.write_text(json.dumps({"shops": [s.__dict__ for s in shops]}))
    path.chmod(0o600)
    return path


def test_poll_once_polls_every_shop_and_names_the_failures(api, tmp_path):
    other = FakeApi()
    try:
        other.load([], [], retry_after=999999)
        api.load([order(1, at(1))], [product(1)])
        first = Shop("2", "basic", other.url, "Broken", "broken", "pw")
        second = Shop("1", "basic", api.url, "Fake", "fake", "pw")
        env = {**os.environ, "BCHOOKS_SHOPS": str(_shops_file(tmp_path, first, second)),
               "BCHOOKS_DB": str(tmp_path / "poll.db")}
        env.pop("BCHOOKS_TOKEN", None)
        process = _poll(env, "--once", cwd=tmp_path)
        try:
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()  # (a poller that hangs is stopped, whatever the outcome)
            process.wait()
        assert process.returncode == 1
        lines = err.strip().splitlines()
        assert [line for line in lines if "shop 2" in line] == [next(line for line in lines if "shop 2:" in line)]
        assert "shop 1: 1 of 1 orders" in err and lines[-1] == "bchooks: 1 of 2 shops failed: 2"
        assert "Traceback" not in err and "Retrying" not in err and "pw" not in err.replace("poll", "")
    finally:
        other.stop()


def test_sigterm_stops_a_poller_stuck_in_a_slow_read_within_a_second_or_two(api, tmp_path):
    api.load([order(1, at(1))], [], trickle=1.0)
    env = {**os.environ, "BCHOOKS_SHOPS": str(_shops_file(tmp_path, Shop("1", "basic", api.url, "F", "fake", "pw"))),
           "BCHOOKS_DB": str(tmp_path / "poll.db")}
    env.pop("BCHOOKS_TOKEN", None)
    process = _poll(env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not any("/orders" in p for p in api.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()  # (a poller that ignores SIGTERM is stopped all the same)
        process.wait()
    assert time.monotonic() - started < 2.5
    assert process.returncode == 0 and "Traceback" not in err


def test_a_handler_on_order_created_runs_once_per_polled_order(api, shop, store):
    from bchooks.processing.handlers import Registry
    from bchooks.processing.worker import Worker
    created, updated = [], []
    registry = Registry()  # the README's handler, on orders polled instead of delivered
    registry.on("order.created", retries=5, retry_delay=10, retry_backoff=2)(
        lambda event: created.append(event.json()["payload"]["data"]["id"]))
    registry.on("order.updated", name="updates")(lambda event: updated.append(event.resource_id))
    # placed, then paid seconds later: updated_at is never created_at, as with real orders
    api.load([order(n, at(n, 3), created=at(n)) for n in range(4)], [])
    poll_shop(store, shop)
    api.load([order(n, at(10 + n), created=at(n), shipping_status="shipped") for n in range(4)], [])
    poll_shop(store, shop)
    Worker(store, registry).run(once=True)
    assert sorted(created) == [f"NGRP-{n:06d}" for n in range(4)]
    assert sorted(updated) == [f"NGRP-{n:06d}" for n in range(4)]


def test_a_redirect_to_another_host_is_never_followed(api, shop, store):
    other = FakeApi()
    try:
        other.load([order(1, at(1))], [product(1)])  # answers anyone, without credentials
        api.load([], [], redirect=other.url.replace("127.0.0.1", "localhost"))
        with pytest.raises(ApiError, match="redirects are not followed"):
            poll_shop(store, shop)
        assert store.count() == 0 and other.log() == []
    finally:
        other.stop()


def test_an_order_nested_too_deeply_to_read_is_skipped_alone(api, shop, store):
    deep = '{"id": "NGRP-DEEP", "type": "orders", "attributes": {"updated_at": "2026-11-01T12:00:00.000Z", ' \
           '"note": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    api.load([order(n, at(n)) for n in range(5)], [product(1)], raw_orders=[deep])
    result = poll_shop(store, shop, page_size=3)
    assert (result.orders_stored, result.skipped, result.products_stored) == (5, 1, 1)
    assert store.rejection_counts() == {"malformed_order": 1}
