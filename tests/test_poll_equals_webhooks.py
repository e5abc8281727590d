"""A store filled by polling is indistinguishable from one filled by the same shop's webhooks: the same event types,
the same latest state of every order and product, the same reports. The sandbox (a real HTTP server on loopback)
delivers its webhooks to a receiver and is polled into a second store, in both payload shapes."""

import json

import pandas as pd
import pytest

from bchooks import EventStore, analysis
from bchooks.shops.poller import poll_shop
from bchooks.shops import ShopBook, connect_basic
from bchooks.simulator.sandbox import Sandbox, SandboxServer
from bchooks.wire import EVENT_TYPES
from conftest import SECRET, wait_until

EVENT_COLUMNS = ["event_id", "received_at", "source"]


def order_state(store):
    orders, items = analysis.frames(store)
    orders = orders.drop(columns=[c for c in EVENT_COLUMNS if c in orders]).sort_values(["account_id", "order_id"])
    items = items.drop(columns=[c for c in EVENT_COLUMNS if c in items])
    key = [c for c in ("account_id", "order_id", "product_name", "option_name") if c in items]
    items = items.sort_values(key)
    return orders.reset_index(drop=True), items.reset_index(drop=True)


def product_state(store, ids):
    """{product id: (type, its attributes and options)} of the newest event of each of `ids`."""
    found = {}
    for event in store.iter_events(type=("product.created", "product.updated", "product.deleted")):
        if event.resource_id in ids:
            payload = json.loads(event.body)["payload"]
            data = payload.get("data", payload)  # (a JSON:API document, or a flattened resource)
            attributes = data.get("attributes", data)
            found[event.resource_id] = (event.type == "product.deleted", attributes.get("status"),
                                        attributes.get("name"))
    return found


@pytest.mark.parametrize("shape", ["jsonapi", "flat"])
def test_a_polled_store_equals_the_webhook_store(local_receiver, tmp_path, shape):
    url, hooked = local_receiver
    sandbox = Sandbox(SECRET, shape=shape, schedule=(0.2,))
    server = SandboxServer(sandbox)
    try:
        sandbox.register(url, list(EVENT_TYPES))
        shop = connect_basic(server.url, "sandbox-shop", "sandbox-password", ShopBook(tmp_path / "shops.json"))
        hooked.cursors.remember_shop(shop.account_id, shop.store_name)  # (a connected shop's name, known to both)
        with EventStore(tmp_path / "polled.db") as polled:
            poll_shop(polled, shop)  # the catalogue as it was before the webhook existed
            before = polled.last_event()[0]
            rounds = [("order.created", 12), ("order.updated", 5), ("product.updated", 3), ("order.created", 4),
                      ("product.deleted", 1), ("order.updated", 6)]
            for event_type, count in rounds:
                sandbox.trigger(event_type, count)
                wait_until(lambda: sandbox.dispatcher.counts()["pending"] == 0)
                poll_shop(polled, shop)
            hooked_orders = {e.type for e in hooked.iter_events(type=("order.created", "order.updated"))}
            polled_orders = {e.type for e in polled.iter_events(type=("order.created", "order.updated"))}
            assert hooked_orders == polled_orders == {"order.created", "order.updated"}
            # one order.created per order in each store
            for store in (hooked, polled):
                created = [e.resource_id for e in store.iter_events(type="order.created")]
                assert len(created) == len(set(created)) == 16
            hooked_state, polled_state = order_state(hooked), order_state(polled)
            pd.testing.assert_frame_equal(hooked_state[0], polled_state[0], check_categorical=False)
            pd.testing.assert_frame_equal(hooked_state[1], polled_state[1], check_categorical=False)
            for report in (lambda o, i: analysis.revenue(o, "D"), lambda o, i: analysis.top_products(i),
                           lambda o, i: analysis.customers(o), lambda o, i: analysis.sales_by_country(o),
                           lambda o, i: analysis.summary(o, i)):
                pd.testing.assert_frame_equal(report(*analysis.frames(hooked)), report(*analysis.frames(polled)),
                                              check_categorical=False)
            changed = {e.resource_id for e in hooked.iter_events(type=("product.updated", "product.deleted"))}
            assert changed and product_state(hooked, changed) == product_state(polled, changed)
            # no product was created after the first poll: stock and other changes are updates, as webhooks say
            later = [e.type for e in polled.iter_events(after_id=before) if e.type.startswith("product.")]
            assert "product.updated" in later and "product.created" not in later
    finally:
        server.stop()
