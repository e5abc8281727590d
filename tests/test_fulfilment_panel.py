"""The fulfilment panel driven by code, against the sandbox as a real process: the queue, a preview that changes
nothing, Ship shipping exactly the ticked orders, a 4xx shown as a sentence, and the packing list."""

import json
import re

import pytest

from bchooks import Config, analysis, open_store
from bchooks.fulfilment.packing import packing_list_html
from bchooks.fulfilment.panel import FulfilmentPanel, lateness, parse_pasted
from bchooks.shops.client import BigCartelClient
from bchooks.shops.book import Shop
from bchooks.shops.poller import poll_shop
from bchooks.errors import InputError
from bchooks.wire import parse_envelope
from conftest import SECRET, SandboxProcess

ACCOUNT = "1234567"  # the sandbox's shop


@pytest.fixture
def sandbox(tmp_path):
    started = SandboxProcess(tmp_path)
    yield started
    started.stop()


def stocked(db, sandbox, orders=3):
    """A store holding the sandbox shop's `orders` new orders (polled), and the config pointing at both."""
    config = Config.load(env={}, secrets=SECRET, db=str(db), api_url=sandbox.url, token="sandbox-token",
                         shops=str(db) + ".shops.json")
    with BigCartelClient(sandbox.url, "sandbox-token") as client:
        client.sandbox_trigger("order.created", orders)
    store = open_store(config)
    poll_shop(store, Shop(ACCOUNT, "token", sandbox.url, secret="sandbox-token"))
    return config, store


def sandbox_status(sandbox, order_ids):
    """{order id: its shipping status as the sandbox's API says now}."""
    with BigCartelClient(sandbox.url, "sandbox-token") as client:
        return {order_id: client.get_order(order_id)["data"]["attributes"]["shipping_status"]
                for order_id in order_ids}


def test_preview_changes_nothing_and_ship_ships_exactly_the_ticked_orders(engine_db, sandbox, tmp_path):
    config, store = stocked(engine_db, sandbox, 3)
    try:
        panel = FulfilmentPanel(config, store)
        assert len(panel.rows) == 3 and "3 order(s) to ship" in panel.summary.value
        ids = [row.order_id for row in panel.rows]
        first, second, third = panel.rows
        first.tick.value, first.carrier.value, first.tracking.value = True, "UPS", "1Z999AA10123456784"
        panel.paste.value = f"{third.order_id},USPS,9400111899223197428490\n"
        panel.preview_button.click()
        assert "Preview: 2 ship" in panel.status.value, panel.status.value
        assert "1Z999AA10123456784" in panel.result.value and "9400111899223197428490" in panel.result.value
        assert third.tick.value and third.tracking.value == "9400111899223197428490"  # (the paste fills its row)
        assert sandbox_status(sandbox, ids) == dict.fromkeys(ids, "unshipped")  # a preview changes nothing
        panel.ship_button.click()
        assert "Shipped 2, skipped 0, failed 0." in panel.status.value, panel.status.value
        assert f"Order {first.order_id} (shop {ACCOUNT}): shipped" in panel.result.value
        assert sandbox_status(sandbox, ids) == {ids[0]: "shipped", ids[1]: "unshipped", ids[2]: "shipped"}
        first.tick.value = True  # a second click never ships twice
        panel.ship_button.click()
        assert "Shipped 0, skipped 1, failed 0." in panel.status.value, panel.status.value
        assert "Traceback" not in panel.result.value + panel.status.value
    finally:
        store.close()


def test_a_4xx_for_one_order_is_a_sentence_and_the_others_ship(tmp_path, sandbox):
    config, store = stocked(tmp_path / "events.db", sandbox, 1)
    try:
        body = json.dumps({"account_id": ACCOUNT, "type": "order.created", "payload": {
            "id": "NOSUCH-1", "created_at": "2026-11-01T10:00:00.000Z", "updated_at": "2026-11-01T10:00:00.000Z",
            "shipping_status": "unshipped", "payment_status": "completed", "customer_first_name": "Lost",
            "customer_last_name": "Order", "currency": "USD", "total": "10.0"}}).encode()
        store.append(body, parse_envelope(body))  # an order the store has and the API does not
        panel = FulfilmentPanel(config, store)
        assert [row.order_id for row in panel.rows][0] == "NOSUCH-1"  # the oldest first (and late)
        assert re.search(r"\d+ days late", panel.rows[0].label.value)
        for row in panel.rows:
            row.tick.value, row.tracking.value = True, "TRACK-1"
        panel.ship_button.click()
        assert "Shipped 1, skipped 0, failed 1." in panel.status.value, panel.status.value
        [failed] = [o for o in panel.outcomes if o.status == "failed"]
        assert failed.shipment.order_id == "NOSUCH-1"
        assert "Order NOSUCH-1 (shop 1234567): failed" in panel.result.value, panel.result.value
        assert "Traceback" not in panel.result.value and "sandbox-token" not in panel.result.value
    finally:
        store.close()


def test_nothing_chosen_and_bad_paste_are_sentences(tmp_path, sandbox):
    config, store = stocked(tmp_path / "events.db", sandbox, 1)
    try:
        panel = FulfilmentPanel(config, store)
        panel.preview_button.click()
        assert "Tick an order" in panel.status.value
        panel.paste.value = "1,2,3,4,5"
        panel.ship_button.click()
        assert "Line 1 of the pasted text" in panel.status.value and "color:#cf222e" in panel.status.value
        assert sandbox_status(sandbox, [panel.rows[0].order_id]) == {panel.rows[0].order_id: "unshipped"}
    finally:
        store.close()


def test_packing_list_has_the_orders_items_and_escapes_buyer_text(tmp_path, sandbox):
    config, store = stocked(tmp_path / "events.db", sandbox, 2)
    try:
        body = json.dumps({"account_id": ACCOUNT, "type": "order.created", "payload": {
            "id": "EVIL-1", "created_at": "2026-11-01T10:00:00.000Z", "updated_at": "2026-11-01T10:00:00.000Z",
            "shipping_status": "unshipped", "payment_status": "completed",
            "customer_first_name": "<script>alert(1)</script>", "customer_last_name": "Smith",
            "shipping_address_1": "1 <b>Bold</b> Street", "shipping_city": "Springfield", "currency": "USD",
            "total": "10.0", "items": [{"id": "1", "product_name": "Tee <i>", "product_option_name": "M",
                                        "quantity": 2, "price": "5.0", "total": "10.0"}]}}).encode()
        store.append(body, parse_envelope(body))
        orders, items = analysis.frames(store)
        page = packing_list_html(orders, items, [(ACCOUNT, "EVIL-1"), orders["order_id"].iloc[-1]], store=store)
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; Smith" in page
        assert "1 &lt;b&gt;Bold&lt;/b&gt; Street" in page and "Springfield" in page
        assert "Tee &lt;i&gt;" in page and "<td class='qty'>2</td>" in page
        assert page.count("<section class='order'>") == 2 and "page-break-after: always" in page
        for name in items[items["order_id"] == orders["order_id"].iloc[-1]]["product_name"].astype(str):
            assert name.replace("&", "&amp;") in page
        panel = FulfilmentPanel(config, store, exports=str(tmp_path / "exports"))
        panel.rows[1].tick.value = True
        panel.packing_button.click()
        [written] = list((tmp_path / "exports").glob("packing-*.html"))
        assert "download" in panel.link.value and written.name in panel.link.value
        assert written.read_text().count("<section class='order'>") == 1
    finally:
        store.close()


def test_pasted_lines_and_lateness_read_as_people_write_them():
    assert parse_pasted("order,carrier,tracking\n1001, UPS ,1Z9\n\n1002\tUSPS\t94001\n") == [
        (2, "1001", "UPS", "1Z9", None), (4, "1002", "USPS", "94001", None)]
    assert parse_pasted("#1001,DHL,JD01,https://track.example/JD01") == [
        (1, "1001", "DHL", "JD01", "https://track.example/JD01")]
    with pytest.raises(InputError, match="line 2"):
        parse_pasted("1001,UPS,1Z\n1,2,3,4,5")
    import pandas as pd
    now = pd.Timestamp("2026-12-03T12:00:00Z")
    assert lateness({"created_at": now, "late": True, "days_late": 3}, now) == "3 days late"
    assert lateness({"created_at": now, "late": True, "days_late": 1}, now) == "1 day late"
    assert lateness({"created_at": now, "late": False, "due_at": now + pd.Timedelta(days=2, hours=1)},
                    now) == "due in 2 days"
    assert lateness({"created_at": now, "late": False, "due_at": now + pd.Timedelta(hours=5)}, now) == "due today"
