"""The sandbox's HTTP contract and its delivery of signed events."""

import json
import re

import pytest
import requests

from bchooks.simulator.sandbox import Sandbox, SandboxServer
from bchooks.receiving.signing import sign
from conftest import SECRET, wait_until

AUTH = {"Authorization": "Bearer sandbox-token", "Accept": "application/vnd.api+json"}


@pytest.mark.parametrize("document,pointer,needle", [
    ({"url": "not a url", "events": ["order.created"]}, "/url", "absolute"),
    ({"url": "ftp://x.test/h", "events": ["order.created"]}, "/url", "absolute"),
    ({"url": "http://x.test/h", "events": []}, "/events", "non-empty"),
    ({"url": "http://x.test/h", "events": ["order.created", "order.teleported"]}, "/events", "order.teleported"),
    ({"url": "http://x.test/h"}, "/events", "non-empty"),
])
def test_registration_validation_is_422_naming_the_field(sandbox_server, document, pointer, needle):
    reply = requests.post(sandbox_server.url + "/v1/webhooks", json=document, headers=AUTH)
    assert reply.status_code == 422
    error = reply.json()["errors"][0]
    assert error["source"]["pointer"] == pointer and needle in error["detail"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}])
def test_token_required(sandbox_server, headers):
    for method, path in (("GET", "/v1/webhooks"), ("POST", "/v1/webhooks"), ("DELETE", "/v1/webhooks/1")):
        reply = requests.request(method, sandbox_server.url + path, headers={"Accept": AUTH["Accept"], **headers})
        assert reply.status_code == 401 and reply.json()["errors"][0]["title"] == "Unauthorized"


def test_header_rules_on_reads(sandbox_server):
    url = sandbox_server.url + "/v1/accounts"
    assert requests.get(url, headers={"Authorization": AUTH["Authorization"]}).status_code == 406
    assert requests.get(url, headers={**AUTH, "User-Agent": ""}).status_code == 400
    assert requests.get(url, headers=AUTH).status_code == 200


def test_order_list_contract(sandbox_server):
    sandbox_server.sandbox.trigger("order.created", 25)
    base = sandbox_server.url + "/v1/accounts/1234567/orders"
    first = requests.get(base, headers=AUTH).json()
    assert first["meta"]["count"] == "25" and len(first["data"]) == 20 and "next" in first["links"]
    second = requests.get(first["links"]["next"], headers=AUTH).json()
    assert len(second["data"]) == 5 and "next" not in second["links"]
    ids = [o["id"] for o in first["data"] + second["data"]]
    assert ids == sorted(ids, reverse=True)  # default: newest first
    asc = requests.get(base, params={"sort": "created_at", "sort_direction": "asc", "page[limit]": 3},
                       headers=AUTH).json()
    assert [o["id"] for o in asc["data"]] == sorted(ids)[:3]
    assert requests.get(base, params={"page[limit]": "0"}, headers=AUTH).status_code == 400
    assert requests.get(base, params={"filter[updated_at_from]": "yesterday"}, headers=AUTH).status_code == 400
    assert requests.get(sandbox_server.url + "/v1/accounts/999/orders", headers=AUTH).status_code == 404


def test_products_list(sandbox_server):
    reply = requests.get(sandbox_server.url + "/v1/accounts/1234567/products", params={"page[limit]": 100},
                         headers=AUTH).json()
    assert reply["meta"]["count"] == "20" and reply["data"][0]["type"] == "products"
    assert all("default_price" in p["attributes"] for p in reply["data"])
    first = reply["data"][0]
    one = requests.get(f"{sandbox_server.url}/v1/accounts/1234567/products/{first['id']}", headers=AUTH).json()
    assert one["data"] == first and one["included"]  # one product alone, with its options
    assert requests.get(f"{sandbox_server.url}/v1/accounts/1234567/products/404404", headers=AUTH).status_code == 404


def test_trigger_validation(sandbox_server):
    url = sandbox_server.url + "/sandbox/events"
    assert requests.post(url, json={"type": "order.teleported"}, headers=AUTH).status_code == 422
    assert requests.post(url, json={"type": "order.created", "count": 0}, headers=AUTH).status_code == 422
    assert requests.post(url, data=b"{", headers=AUTH).status_code == 400
    reply = requests.post(url, json={"type": "product.created", "count": 2}, headers=AUTH)
    assert reply.status_code == 202 and len(reply.json()["events"]) == 2


@pytest.mark.parametrize("method,path", [("POST", "/sandbox/events"), ("POST", "/sandbox/reset"),
                                         ("GET", "/sandbox/deliveries")])
def test_control_endpoints_need_the_token(sandbox_server, method, path):
    """What a page in the developer's browser could send: a cross-origin "simple" request, without the token."""
    sandbox_server.sandbox.register("http://127.0.0.1:9/hook", ["order.created"])
    reply = requests.request(method, sandbox_server.url + path, data='{"type": "order.created", "count": 10000}',
                             headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert reply.status_code == 401 and reply.json()["errors"][0]["status"] == "401"
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert sandbox_server.sandbox.events == [] and len(sandbox_server.sandbox.webhooks) == 1


def test_delivers_signed_docs_envelopes_to_subscribers_only(sandbox_server, local_receiver):
    url, store = local_receiver
    sandbox = sandbox_server.sandbox
    sandbox.register(url, ["order.created"])
    sandbox.register("http://127.0.0.1:9/never", ["product.updated"])
    events = sandbox.trigger("order.created", 5) + sandbox.trigger("account.updated", 1)
    wait_until(lambda: sandbox.dispatcher.counts()["delivered"] == 5)
    assert [len(e["deliveries"]) for e in events] == [1] * 5 + [0]
    stored = list(store.iter_events())
    assert [e.type for e in stored] == ["order.created"] * 5
    assert all(e.account_id == "1234567" and e.signature_header == sign(e.body, SECRET) for e in stored)
    attempts = sandbox.dispatcher.deliveries()[0]["attempts"]
    assert attempts[0]["status"] == 200 and attempts[0]["latency_ms"] > 0 and attempts[0]["error"] == ""


def test_guide_format_and_jsonapi_shape(local_receiver):
    url, store = local_receiver
    sandbox = Sandbox(SECRET, format="guide", shape="jsonapi")
    server = SandboxServer(sandbox)
    try:
        sandbox.register(url, ["order.created"])
        sandbox.trigger("order.created", 2)
        wait_until(lambda: store.count() == 2)
    finally:
        server.stop()
    body = json.loads(store.get(1).body)
    assert set(body) == {"type", "data"} and body["data"]["data"]["type"] == "orders"
    ids = sorted(e.resource_id for e in store.iter_events())
    assert len(ids) == 2 and all(re.fullmatch(r"BCSB-[0-9A-Z]+-00000[12]", i) for i in ids), ids
    assert store.get(1).account_id is None


def test_failed_deliveries_are_retried_on_schedule_then_fail(sandbox_server):
    sandbox = sandbox_server.sandbox  # schedule 0.2, 0.5, 1.0
    sandbox.register("http://127.0.0.1:9/closed", ["order.created"])
    sandbox.trigger("order.created", 1)
    wait_until(lambda: sandbox.dispatcher.counts()["failed"] == 1, deadline=10)
    attempts = sandbox.dispatcher.deliveries()[0]["attempts"]
    assert len(attempts) == 4 and all(a["status"] is None and a["error"] for a in attempts)


def test_drop_fraction_is_deterministic(local_receiver):
    url, store = local_receiver
    counts = []
    for _ in range(2):
        sandbox = Sandbox(SECRET, drop=0.3, seed=4)
        server = SandboxServer(sandbox)
        sandbox.register(url, ["order.created"])
        sandbox.trigger("order.created", 40)
        wait_until(lambda: sandbox.dispatcher.counts()["pending"] == 0)
        counts.append(sandbox.dispatcher.counts())
        server.stop()
    assert counts[0] == counts[1] and 0 < counts[0]["dropped"] < 40
    assert counts[0]["delivered"] + counts[0]["dropped"] == 40


def test_stop_reports_pending_deliveries():
    sandbox = Sandbox(SECRET, schedule=(60,))
    server = SandboxServer(sandbox)
    sandbox.register("http://127.0.0.1:9/closed", ["order.created"])
    sandbox.trigger("order.created", 3)
    wait_until(lambda: all(d["attempts"] for d in sandbox.dispatcher.deliveries()))
    assert len(server.stop()) == 3


def test_reset_clears_state(sandbox_server):
    sandbox_server.sandbox.register("http://x.test/h", ["order.created"])
    sandbox_server.sandbox.trigger("order.created", 3)
    assert requests.post(sandbox_server.url + "/sandbox/reset", headers=AUTH).status_code == 200
    health = requests.get(sandbox_server.url + "/sandbox/healthz").json()
    assert (health["webhooks"], health["orders"], health["events"]) == (0, 0, 0)


def test_a_new_sandbox_never_reuses_an_order_id_and_stamps_the_real_time():
    from bchooks.clock import parse_iso
    from datetime import datetime, timezone
    first, second = Sandbox(SECRET, seed=3), Sandbox(SECRET, seed=3)
    try:
        ids = [e["resource_id"] for e in first.trigger("order.created", 3) + second.trigger("order.created", 3)]
        first.reset()
        ids += [e["resource_id"] for e in first.trigger("order.created", 3)]
        assert len(set(ids)) == 9, ids
        created = parse_iso(first.shop.orders[ids[-1]]["created_at"])
        assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    finally:
        first.stop()
        second.stop()


def test_each_shop_sells_in_its_own_one_currency():
    sandbox = Sandbox(SECRET, shops=3)
    try:
        for account_id in sandbox.shops:
            sandbox.trigger("order.created", 30, account_id=account_id)
        currencies = {a: {o["currency"] for o in shop.orders.values()} for a, shop in sandbox.shops.items()}
        assert currencies == {"1234567": {"USD"}, "1234568": {"GBP"}, "1234569": {"EUR"}}
        assert [s.account["currency"] for s in sandbox.shops.values()] == ["USD", "GBP", "EUR"]
        assert len(sandbox.shops["1234567"].orders) == 30  # no history unless asked for
    finally:
        sandbox.stop()
