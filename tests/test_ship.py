"""Marking orders shipped with tracking (`bchooks ship`, `bchooks.fulfilment`) against the sandbox as a real
process: one order, a carrier's CSV (dry run, --yes, rerun, one 4xx), killed mid-batch and resumed, the echo
`order.updated` never re-triggering a handler, the sandbox's write errors, the store part on both engines."""

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
import requests

from bchooks import Config
from bchooks.errors import InputError
from bchooks.fulfilment import Shipment, clients_from, is_own_change, plan, read_tracking_csv, ship
from bchooks.processing.handlers import Registry
from bchooks.processing.worker import Worker
from bchooks.shops import ShopBook, connect_basic
from bchooks.shops.poller import poll_shop
from bchooks.simulator.sandbox import Sandbox, SandboxServer
from bchooks.store import open_store
from conftest import SECRET, SandboxProcess, wait_until

PASSWORD = "sandbox-password"
AUTH = {"Authorization": "Bearer sandbox-token", "Accept": "application/vnd.api+json", "User-Agent": "test"}


def bchooks(folder, *args, env):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                          timeout=60, env=env)


def shipments_per_order(url):
    reply = requests.get(f"{url}/sandbox/shipments", headers=AUTH, timeout=10)
    return Counter(s["order_id"] for s in reply.json()["shipments"])


def order(url, order_id):
    return requests.get(f"{url}/v1/accounts/1234567/orders/{order_id}", headers=AUTH, timeout=10).json()


@pytest.fixture
def shop(tmp_path):
    """A sandbox process with 6 orders, its shop connected (shops file) and polled into a SQLite store: (sandbox,
    env for the CLI, order ids oldest first)."""
    sandbox = SandboxProcess(tmp_path)
    requests.post(f"{sandbox.url}/sandbox/events", json={"type": "order.created", "count": 6}, headers=AUTH)
    book = ShopBook(tmp_path / "shops.json")
    connected = connect_basic(sandbox.url, "sandbox-shop", PASSWORD, book)
    with open_store(str(tmp_path / "events.db")) as store:
        poll_shop(store, connected)
        ids = sorted(store.resource_ids(type="order.created"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}, "BCHOOKS_API_URL": sandbox.url,
           "BCHOOKS_SHOPS": str(tmp_path / "shops.json"), "BCHOOKS_DB": str(tmp_path / "events.db")}
    yield sandbox, env, ids
    sandbox.stop()


def test_one_order_dry_run_then_shipped_once_with_tracking(shop, tmp_path):
    sandbox, env, ids = shop
    args = ("ship", ids[0], "--carrier", "UPS", "--tracking", "1Z999", "--url", "https://t.example/1Z999")
    dry = bchooks(tmp_path, *args, env=env)
    assert dry.returncode == 0 and "would ship: UPS 1Z999" in dry.stdout and "nothing was sent" in dry.stdout
    assert shipments_per_order(sandbox.url) == {}
    done = bchooks(tmp_path, *args, "--notify", "--yes", env=env)
    assert done.returncode == 0 and "shipped: UPS 1Z999 (shipment " in done.stdout and "1 shipped, 0 skipped, 0 failed" in \
        done.stdout, done.stderr
    attributes = order(sandbox.url, ids[0])["data"]["attributes"]
    assert attributes["shipping_status"] == "shipped" and shipments_per_order(sandbox.url) == {ids[0]: 1}
    again = bchooks(tmp_path, *args, "--yes", env=env)
    assert again.returncode == 0 and "already shipped: shipped by" in again.stdout
    assert shipments_per_order(sandbox.url) == {ids[0]: 1}
    unknown = bchooks(tmp_path, "ship", "NOPE-1", "--yes", env=env)
    assert unknown.returncode == 0 and "unknown order" in unknown.stdout
    with open_store(env["BCHOOKS_DB"]) as store:
        [row] = store.shipments.of_orders("1234567", [ids[0]])[ids[0]]
    assert (row["state"], row["status"], row["carrier"], row["tracking_number"], row["notify"]) == \
        ("shipped", 201, "UPS", "1Z999", True)
    assert row["order_updated_at"] == attributes["updated_at"] and row["who"].endswith("(bchooks ship)")
    for result in (dry, done, again, unknown):
        assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_bulk_csv_dry_run_yes_rerun_and_one_4xx(shop, tmp_path):
    sandbox, env, ids = shop
    csv = tmp_path / "tracking.csv"
    rows = [f"{oid},USPS,9400{n},https://t.example/{n}," for n, oid in enumerate(ids[:4])]
    rows.append(f"#{ids[4]},USPS,94009,,NOT-A-LINE:1")  # (a leading # is accepted)
    csv.write_text("Order Number,Carrier,Tracking #,Tracking URL,Items\n" + "\n".join(rows) + "\n")
    dry = bchooks(tmp_path, "ship", "--from", str(csv), env=env)
    assert dry.returncode == 0 and dry.stdout.count(" would ship: USPS") == 5 and "dry run: 5 would ship" in dry.stdout
    assert shipments_per_order(sandbox.url) == {}
    done = bchooks(tmp_path, "ship", "--from", str(csv), "--yes", env=env)
    assert done.returncode == 1 and "4 shipped, 0 skipped, 1 failed" in done.stdout, done.stdout + done.stderr
    [failed] = [line for line in done.stdout.splitlines() if "failed:" in line]
    assert ids[4] in failed and "no line item NOT-A-LINE" in failed and "400" in failed
    assert done.stderr.strip() == f"bchooks: 1 of 5 failed: {ids[4]}"
    assert shipments_per_order(sandbox.url) == {oid: 1 for oid in ids[:4]}
    rerun = bchooks(tmp_path, "ship", "--from", str(csv), "--yes", env=env)
    assert "0 shipped, 4 skipped, 1 failed" in rerun.stdout
    assert shipments_per_order(sandbox.url) == {oid: 1 for oid in ids[:4]}
    csv.write_text("Order Number,Carrier,Tracking #,Tracking URL\nX-1,USPS,1,\n,USPS,2,\n")
    bad = bchooks(tmp_path, "ship", "--from", str(csv), env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == f"bchooks: {csv}, line 3: no order number"
    for result in (dry, done, rerun, bad):
        assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_killed_mid_batch_then_rerun_ships_the_rest_and_none_twice(shop, tmp_path):
    sandbox, env, ids = shop
    csv = tmp_path / "tracking.csv"
    csv.write_text("order;carrier;tracking number\n" + "\n".join(f"{oid};DHL;JD{n}" for n, oid in enumerate(ids)))
    requests.post(f"{sandbox.url}/sandbox/faults", json={"delay": 3, "count": 2}, headers=AUTH)  # (made, answered late)
    process = subprocess.Popen([sys.executable, "-m", "bchooks", "ship", "--from", str(csv), "--yes"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: sum(shipments_per_order(sandbox.url).values()) >= 2, deadline=20)
        process.send_signal(signal.SIGKILL)  # (its second shipment made, its answer not yet read)
    finally:
        process.kill()
        process.wait()
    with open_store(env["BCHOOKS_DB"]) as store:
        steps = plan(store, read_tracking_csv(csv, "1234567"))
    assert [s.action for s in steps][:2] == ["already shipped", "in progress"] and \
        {s.action for s in steps[2:]} == {"ship"}
    rerun = bchooks(tmp_path, "ship", "--from", str(csv), "--yes", env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "found shipped on the API" in rerun.stdout and "5 shipped, 1 skipped, 0 failed" in rerun.stdout
    assert shipments_per_order(sandbox.url) == {oid: 1 for oid in ids}
    again = bchooks(tmp_path, "ship", "--from", str(csv), "--yes", env=env)
    assert "0 shipped, 6 skipped, 0 failed" in again.stdout and shipments_per_order(sandbox.url) == {oid: 1 for oid in ids}


def test_the_echo_does_not_retrigger_a_handler_that_ships(local_receiver, tmp_path):
    """A handler ships each new order through `clients_from` + `ship`; the API's order.updated for it (by webhook
    and by poll) is recognised as ours and not given to handlers, unless they opt in; another change is."""
    url, store = local_receiver
    server = SandboxServer(Sandbox(SECRET, schedule=(0.2, 0.5)))
    try:
        requests.post(f"{server.url}/v1/webhooks", json={"url": url, "events": ["order.created", "order.updated"]},
                      headers=AUTH)
        book = ShopBook(tmp_path / "shops.json")
        connected = connect_basic(server.url, "sandbox-shop", PASSWORD, book)
        config = Config.load(env={}, shops=str(book.path), api_url=server.url)
        registry, seen, echoes = Registry(), [], []

        @registry.on("order.created", name="ship-it")
        def ship_it(event):
            shipment = Shipment(event.account_id, event.resource_id, "UPS", f"1Z{event.id}")
            assert [o.status for o in ship(store, clients_from(config), [shipment], who="handler:ship-it")] == ["shipped"]

        @registry.on("order.updated", name="watch")
        def watch(event):
            seen.append(event.id)

        @registry.on("order.updated", name="echoes", own_changes=True)
        def all_updates(event):
            echoes.append(is_own_change(store, event))
        worker = Worker(store, registry, lease=10)
        server.sandbox.trigger("order.created", 2)
        wait_until(lambda: store.count(type="order.created") == 2)
        worker.run(once=True)
        assert sum(len(s) for s in server.sandbox.shop.shipments.values()) == 2
        wait_until(lambda: store.count(type="order.updated") == 2)  # (the echoes, by webhook)
        poll_shop(store, connected)  # (and by poll: each order's state after our change)
        worker.run(once=True)
        assert seen == [] and echoes and all(echoes)
        server.sandbox.trigger("order.updated", 1)  # (a change the kit did not make: a refund or a shipment)
        wait_until(lambda: store.count(type="order.updated") > len(echoes))
        worker.run(once=True)
        assert len(seen) == 1 and echoes[-1] is False
        assert sum(len(s) for s in server.sandbox.shop.shipments.values()) == 2  # (nothing shipped twice)
    finally:
        server.stop()


def test_sandbox_writes_answer_400_404_401_and_emit_order_updated(local_receiver):
    url, store = local_receiver
    server = SandboxServer(Sandbox(SECRET, schedule=(0.2, 0.5)))
    try:
        sandbox = server.sandbox
        requests.post(f"{server.url}/v1/webhooks", json={"url": url, "events": ["order.updated"]}, headers=AUTH)
        sandbox.trigger("order.created", 1)
        [(oid, placed)] = sandbox.shop.orders.items()
        base = f"{server.url}/v1/accounts/1234567/orders"
        headers = {**AUTH, "Content-Type": "application/vnd.api+json"}

        def patch(body, order_id=oid, auth=headers):
            return requests.patch(f"{base}/{order_id}", json=body, headers=auth, timeout=10)

        def post(attributes, order_id=oid, auth=headers):
            return requests.post(f"{base}/{order_id}/shipments", json={"data": {"type": "shipments",
                                 "attributes": attributes}}, headers=auth, timeout=10)
        before = placed["updated_at"]
        for reply, pointer in ((patch({"data": {"type": "orders", "attributes": {"total": "0.0"}}}),
                                "/data/attributes/total"),
                               (patch({"data": {"type": "orders", "attributes": {"customer_email": "no"}}}),
                                "/data/attributes/customer_email"),
                               (patch({"nothing": 1}), "/data"),
                               (requests.patch(f"{base}/{oid}", data=b"{not json", headers=headers), "/data"),
                               (post({"items": [{"order_line_item_id": "nope", "quantity": 1}]}),
                                "/data/attributes/items/0/order_line_item_id"),
                               (post({"items": [{"order_line_item_id": placed["items"][0]["id"], "quantity": 99}]}),
                                "/data/attributes/items/0/quantity")):
            error = reply.json()["errors"][0]
            assert reply.status_code == 400 and error["status"] == "400" and error["source"]["pointer"] == pointer
        assert placed["updated_at"] == before and sandbox.shop.shipments.get(oid, []) == []  # (nothing changed)
        assert patch({"data": {"type": "orders", "attributes": {"customer_first_name": "Ann"}}},
                     order_id="NOPE").status_code == 404
        assert post({"items": []}, order_id="NOPE").status_code == 404
        assert patch({"data": {"type": "orders", "attributes": {"customer_first_name": "Ann"}}},
                     auth={"Content-Type": "application/json"}).status_code == 401
        assert post({"items": []}, auth={**headers, "Authorization": "Bearer wrong"}).status_code == 401
        changed = patch({"data": {"id": oid, "type": "orders", "attributes": {"customer_first_name": "Ann",
                                                                             "shipping_city": "Leeds"}}})
        assert changed.status_code == 200 and changed.json()["data"]["attributes"]["customer_first_name"] == "Ann"
        first = placed["items"][0]
        shipped = post({"items": [{"order_line_item_id": first["id"], "quantity": first["quantity"]}],
                        "carrier": "UPS", "tracking_number": "1Z", "notify_customer": True})
        assert shipped.status_code == 201 and shipped.json()["data"]["attributes"]["tracking_number"] == "1Z"
        assert placed["shipping_status"] == ("shipped" if len(placed["items"]) == 1 else "unshipped")
        assert placed["updated_at"] > before
        wait_until(lambda: store.count(type="order.updated") == 2)  # (each change delivered as order.updated)
    finally:
        server.stop()


def test_tracking_csv_headers_of_label_tools_and_bad_rows(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("\ufeffShip Date\tOrder #\tCarrier Code\tTracking No.\tAccount\tNotify Customer\n"
                    "2026-01-02\tNGRP-1\tusps\t9400 1\t1234567\tyes\n2026-01-02\tNGRP-2\tups\t1Z2\t\tno\n\n")
    assert read_tracking_csv(path, "7654321") == [Shipment("1234567", "NGRP-1", "usps", "9400 1", None, (), True),
                                                  Shipment("7654321", "NGRP-2", "ups", "1Z2", None, (), False)]
    for text, shop, message in (("Name,Carrier\nx,y\n", "1", "line 1: no order number column"),
                                ("Order ID,Tracking URL\nA,ftp://x\n", "1", "line 2: the tracking URL must start"),
                                ("Order ID,Items\nA,1:2\nB,1:zero\n", "1", "line 3: '1:zero' is not LINE:QTY"),
                                ("Order ID\nA\n", None, "line 2: which shop?")):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            read_tracking_csv(path, shop)


def test_store_part_records_attempts_on_both_engines(engine_db):
    with open_store(engine_db) as store:
        assert store.shipments.start("1", "A", who="me", carrier="UPS", items=(("11", 2),), notify=True) == 1
        assert store.shipments.start("1", "A", who="me") == 2 and store.shipments.start("2", "A", who="you") == 1
        store.shipments.finish("1", "A", 1, state="failed", status=400, error="no line item 11")
        store.shipments.finish("1", "A", 2, state="shipped", status=201, shipment_id="S1",
                               order_updated_at="2026-01-01T00:00:00.000Z", order_status="shipped")
        rows = store.shipments.of_orders("1", ["A", "B"])["A"]
        assert [(r["attempt"], r["state"], r["items"], r["notify"]) for r in rows] == \
            [(1, "failed", (("11", 2),), True), (2, "shipped", (), False)]
        assert sorted(r["account_id"] for r in store.shipments.recent(10)) == ["1", "1", "2"]
        steps = plan(store, [Shipment("1", "A"), Shipment("2", "A"), Shipment("1", "A")])
        assert [s.action for s in steps] == ["already shipped", "in progress", "already shipped"]


def test_an_order_updated_the_kit_cannot_read_still_runs_its_handlers(engine_db):
    """An `order.updated` whose id holds a lone surrogate (the receiver stores it as received) is never an own
    change, on both engines; and when telling fails (the shipments table gone), the worker runs the handler
    instead of stopping."""
    from bchooks.wire import parse_envelope
    body = b'{"type":"order.updated","account_id":"1","payload":{"id":"A\\ud800","updated_at":"2026-01-01T00:00:00Z",' \
           b'"shipping_status":"shipped"}}'
    ran = []
    registry = Registry()
    registry.on("order.updated")(lambda event: ran.append(event.id))
    with open_store(engine_db) as store:
        event_id = store.append(body, parse_envelope(body)).id
        assert is_own_change(store, store.get(event_id)) is False
        assert Worker(store, registry).run_once().done == 1 and ran == [event_id]
        store.write_one("DROP TABLE shipments")
        other = body.replace(b"A\\ud800", b"B")
        second = store.append(other, parse_envelope(other)).id
        assert Worker(store, registry).run_once().done == 1 and ran == [event_id, second]


def test_an_unanswered_attempt_is_sent_again_only_once_it_has_settled(shop, tmp_path):
    """An attempt recorded with no answer (killed before the API answered) while the API still shows the order
    unshipped: a run at once leaves it pending and says to run again (the request may still be on its way); once the
    attempt is older than `settle`, the order is sent, once."""
    sandbox, env, ids = shop
    connected = ShopBook(tmp_path / "shops.json").shops()[0]
    with open_store(env["BCHOOKS_DB"]) as store:
        store.shipments.start("1234567", ids[0], who="killed run", carrier="UPS", tracking_number="1Z1")
        wanted = [Shipment("1234567", ids[0], "UPS", "1Z1", None)]
        early = ship(store, lambda account: connected.client(), wanted, who="test")
        assert [o.status for o in early] == ["failed"] and "run again in a minute" in early[0].message
        assert shipments_per_order(sandbox.url) == {} and plan(store, wanted)[0].action == "in progress"
        later = ship(store, lambda account: connected.client(), wanted, who="test", settle=0)
        assert [o.status for o in later] == ["shipped"] and shipments_per_order(sandbox.url) == {ids[0]: 1}
        assert plan(store, wanted)[0].action == "already shipped"
