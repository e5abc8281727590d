"""Real shops without webhooks: connect with the store password, poll orders and products into the store, several
shops with the same order numbers kept apart. Real sandbox servers on loopback, a real store."""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import requests

from bchooks import EventStore, analysis
from bchooks.store import open_store
from bchooks.errors import ApiError
from bchooks.shops.poller import poll_shop
from bchooks.shops import ShopBook, connect_basic
from bchooks.simulator.sandbox import Sandbox, SandboxServer
from conftest import SECRET, SandboxProcess, wait_until

PASSWORD = "sandbox-password"
AUTH = {"Authorization": "Bearer sandbox-token", "Accept": "application/vnd.api+json"}


@pytest.fixture
def two_shops():
    server = SandboxServer(Sandbox(SECRET, shops=2))
    yield server
    server.stop()


@pytest.fixture
def book(tmp_path):
    return ShopBook(tmp_path / "private" / "shops.json")


def test_connecting_checks_the_password_and_keeps_it_privately(two_shops, book, tmp_path):
    shop = connect_basic(two_shops.url, "sandbox-shop-2", PASSWORD, book)
    assert (shop.account_id, shop.store_name, shop.kind) == ("1234568", "Sandbox Shop 2", "basic")
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600 and stat.S_IMODE(book.path.parent.stat().st_mode) == 0o700
    assert PASSWORD not in repr(shop) and PASSWORD not in json.dumps(shop.public())
    with pytest.raises(ApiError, match="rejected the subdomain or store password"):
        connect_basic(two_shops.url, "sandbox-shop", "not-the-store-password", book)
    assert [s.account_id for s in book.shops()] == ["1234568"]  # nothing kept for the failure
    book.remove("1234568")
    assert book.shops() == []


def test_basic_credentials_open_only_their_own_shop(two_shops):
    auth = ("sandbox-shop", PASSWORD)
    headers = {"Accept": "application/vnd.api+json", "User-Agent": "test"}
    assert requests.get(f"{two_shops.url}/v1/accounts/1234567/orders", auth=auth, headers=headers).status_code == 200
    assert requests.get(f"{two_shops.url}/v1/accounts/1234568/orders", auth=auth, headers=headers).status_code == 404
    assert requests.get(f"{two_shops.url}/v1/accounts/1234567/orders", auth=("sandbox-shop", "no"),
                        headers=headers).status_code == 401


def test_first_sync_then_nothing_then_only_the_changes(two_shops, book, engine_db):
    sandbox = two_shops.sandbox
    sandbox.trigger("order.created", 35)
    shop = connect_basic(two_shops.url, "sandbox-shop", PASSWORD, book)
    with open_store(engine_db) as store:
        first = poll_shop(store, shop, page_size=10)
        assert (first.orders_stored, first.products_stored) == (35, 20)
        again = poll_shop(store, shop, page_size=10)
        assert (again.orders_stored, again.products_stored, again.products_deleted) == (0, 0, 0)
        count = store.count()
        sandbox.trigger("order.updated", 4)
        sandbox.trigger("product.updated", 1)
        sandbox.trigger("product.deleted", 1)
        changed = poll_shop(store, shop, page_size=10)
        assert changed.orders_stored == 4 and changed.products_stored == 1 and changed.products_deleted == 1
        assert store.count() == count + 6
        orders = analysis.frames(store).orders
        expected = {oid: o["updated_at"] for oid, o in sandbox.shop.orders.items()}
        assert len(orders) == 35 and {
            oid: at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            for oid, at in zip(orders["order_id"], orders["updated_at"])} == expected
        assert {e.type for e in store.iter_events()} >= {"order.created", "order.updated", "product.created",
                                                         "product.updated", "product.deleted"}
        assert all(json.loads(e.body)["source"] == "poll" for e in store.iter_events())


def test_an_order_updated_during_the_walk_is_not_skipped(two_shops, book, engine_db):
    """Offset paging sorted by updated_at skips an order updated mid-walk (it moves behind the offset); time-keyed
    pages read it at the end."""
    sandbox = two_shops.sandbox
    sandbox.trigger("order.created", 30)
    shop = connect_basic(two_shops.url, "sandbox-shop", PASSWORD, book)
    client = shop.client()
    pages = []
    original = client._json

    def json_then_update(method, path, **kwargs):
        document = original(method, path, **kwargs)
        if path.endswith("/orders"):
            pages.append(len(document["data"]))
            if len(pages) == 1:  # after the first page: ship one order the walk has already passed
                first_id = document["data"][0]["id"]
                with sandbox.lock:
                    sandbox.shop.ship_order(first_id)
        return document
    client._json = json_then_update
    with open_store(engine_db) as store:
        poll_shop(store, shop, page_size=10, client=client)
        orders = analysis.frames(store).orders
    shipped = set(orders["order_id"][orders["shipping_status"] == "shipped"])
    assert len(orders) == 30 and len(shipped) == 1 and len(pages) >= 3


def test_429_with_retry_after_is_waited_out(two_shops, book, tmp_path):
    two_shops.sandbox.trigger("order.created", 3)
    shop = connect_basic(two_shops.url, "sandbox-shop", PASSWORD, book)
    requests.post(f"{two_shops.url}/sandbox/faults", json={"status": 429, "count": 2, "retry_after": 1}, headers=AUTH)
    started = time.monotonic()
    with EventStore(tmp_path / "events.db") as store:
        result = poll_shop(store, shop)
    assert result.orders_stored == 3 and time.monotonic() - started >= 1.5  # (two waits of about a second)
    assert two_shops.sandbox.faults == []


def test_two_shops_with_the_same_order_numbers_stay_apart(two_shops, book, engine_db):
    sandbox = two_shops.sandbox
    sandbox.trigger("order.created", 12)
    sandbox.trigger("order.created", 8, account_id="1234568")
    first = set(sandbox.shops["1234567"].orders) & set(sandbox.shops["1234568"].orders)
    assert len(first) == 8  # the same numbers in both shops
    with open_store(engine_db) as store:
        for subdomain in ("sandbox-shop", "sandbox-shop-2"):
            poll_shop(store, connect_basic(two_shops.url, subdomain, PASSWORD, book))
        orders, items = analysis.frames(store)
    assert orders.groupby("account_id").size().to_dict() == {"1234567": 12, "1234568": 8}
    assert dict(zip(orders["account_id"], orders["store_name"])) == {"1234567": "Sandbox Shop",
                                                                     "1234568": "Sandbox Shop 2"}
    totals = {(a, o): t for a, o, t in zip(orders["account_id"], orders["order_id"], orders["total_cents"])}
    for account, shop in sandbox.shops.items():
        for oid, order in shop.orders.items():
            assert totals[(account, oid)] == round(float(order["total"]) * 100)
    second = analysis.for_shop((orders, items), "1234568")
    assert len(second.orders) == 8 and set(second.items["event_id"]) == set(second.orders["event_id"])
    split = analysis.by_shop((orders, items))
    assert sorted(split) == ["1234567", "1234568"]
    revenue = {a: analysis.revenue(f.orders)["orders"].sum() for a, f in split.items()}
    assert revenue == {"1234567": 12, "1234568": 8}  # any report, shop by shop


def bchooks(folder, *args, env):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.integration
def test_the_cli_connects_lists_polls_and_survives_kill_9(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--shops", "2")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")},
           "BCHOOKS_API_URL": sandbox.url, "BCHOOKS_SHOPS": str(tmp_path / "shops.json"),
           "BCHOOKS_DB": str(tmp_path / "events.db"),
           "BCHOOKS_POLL_LEASE": "1"}  # (the shop the killed poller held is free a second after: see test_pollers)
    try:
        requests.post(f"{sandbox.url}/sandbox/events", json={"type": "order.created", "count": 300}, headers=AUTH)
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", env={**env, "BCHOOKS_SHOP_PASSWORD": PASSWORD})
        assert result.returncode == 0 and "connected shop 1234567 (Sandbox Shop)" in result.stdout, result.stderr
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", env=env)  # no password, no terminal
        assert result.returncode == 2 and "BCHOOKS_SHOP_PASSWORD" in result.stderr
        listing = bchooks(tmp_path, "shops", env=env).stdout
        assert "1234567" in listing and "never" in listing and PASSWORD not in listing
        poller = subprocess.Popen([sys.executable, "-m", "bchooks", "poll", "--every", "1"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: (tmp_path / "events.db").exists() and _count(tmp_path / "events.db") > 0, deadline=30)
        poller.send_signal(signal.SIGKILL)  # mid-sync, perhaps mid-page
        poller.wait()
        result = bchooks(tmp_path, "poll", "--once", env=env)
        assert result.returncode == 0, result.stderr
        with EventStore(tmp_path / "events.db") as store:
            orders = analysis.frames(store).orders
            bodies = [e.body for e in store.iter_events()]
        assert len(orders) == 300 and len(bodies) == len(set(bodies))  # nothing lost, nothing twice
        assert "1234567" in bchooks(tmp_path, "shops", env=env).stdout.split("never")[0]
        poller = subprocess.Popen([sys.executable, "-m", "bchooks", "poll", "--every", "60"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)
        poller.send_signal(signal.SIGTERM)
        assert poller.wait(timeout=20) == 0  # stops between pages, or while it waits
        result = bchooks(tmp_path, "disconnect", "1234567", env=env)
        assert result.returncode == 0 and "disconnected shop 1234567" in result.stdout
        result = bchooks(tmp_path, "poll", "--once", env=env)
        assert result.returncode == 2 and "no shop to poll" in result.stderr
    finally:
        sandbox.stop()


def _count(db):
    import sqlite3
    try:
        return sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0


def approve_in_a_browser(decision="approve", account_id="1234568", state=None):
    """What the shop's owner does: open the approval page, pick a shop, press Approve (or Deny)."""
    def open_url(url):
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "Approve" in page.text
        query = dict(item.split("=", 1) for item in url.split("?", 1)[1].split("&"))
        from urllib.parse import unquote
        form = {k: unquote(v) for k, v in query.items() if k in ("client_id", "redirect_uri", "state")}
        if state is not None:
            form["state"] = state
        requests.post(url.split("?", 1)[0], data={**form, "decision": decision, "account_id": account_id},
                      timeout=10)  # (follows the redirect to the callback, as a browser does)
    return open_url


def test_an_app_connects_a_shop_through_oauth(two_shops, book):
    from bchooks.shops.oauth import connect_app
    shown = []
    shop = connect_app(two_shops.url, f"{two_shops.url}/oauth/authorize", "sandbox-client", SECRET, book,
                       show=shown.append, open_url=approve_in_a_browser(), timeout=20)
    assert (shop.account_id, shop.kind, shop.store_name) == ("1234568", "token", "Sandbox Shop 2")
    assert shown and "state=" in shown[0] and SECRET not in shown[0]
    two_shops.sandbox.trigger("order.created", 2, account_id="1234568")
    with shop.client() as client:
        assert len(list(client.iter_orders())) == 2  # the token reads its shop...
        with pytest.raises(ApiError):
            client._json("GET", "/v1/accounts/1234567/orders")  # ...and no other
    assert requests.post(f"{two_shops.url}/oauth/deauthorize/1234568", auth=("sandbox-client", SECRET)).status_code == 204
    with shop.client() as client, pytest.raises(ApiError, match="401"):
        client.account()


@pytest.mark.parametrize("decision,state,message,wait", [("deny", None, "did not approve", 20),
                                                          ("approve", "forged-state", "another state", 3)])
def test_a_denied_or_forged_approval_connects_nothing(two_shops, book, decision, state, message, wait):
    from bchooks.shops.oauth import OAuthError, connect_app
    with pytest.raises(OAuthError, match=message):  # (a forged state is ignored: the login waits, then says so)
        connect_app(two_shops.url, f"{two_shops.url}/oauth/authorize", "sandbox-client", SECRET, book,
                    show=lambda url: None, open_url=approve_in_a_browser(decision, state=state), timeout=wait)
    assert book.shops() == []


def test_a_used_expired_or_wrong_secret_code_is_refused(two_shops):
    from bchooks.shops.oauth import OAuthError, exchange
    app = two_shops.sandbox.oauth
    code = app.grant("1234567", "http://127.0.0.1:9/callback")
    token_url = f"{two_shops.url}/oauth/token"
    with pytest.raises(OAuthError, match="invalid_client|wrong"):
        exchange(token_url, "sandbox-client", "not-the-secret", code, "http://127.0.0.1:9/callback")
    assert exchange(token_url, "sandbox-client", SECRET, code, "http://127.0.0.1:9/callback")["account_id"] == "1234567"
    with pytest.raises(OAuthError, match="used, expired"):
        exchange(token_url, "sandbox-client", SECRET, code, "http://127.0.0.1:9/callback")  # once only
    app.code_ttl = 0.0
    late = app.grant("1234567", "http://127.0.0.1:9/callback")
    time.sleep(0.01)
    with pytest.raises(OAuthError, match="expired"):
        exchange(token_url, "sandbox-client", SECRET, late, "http://127.0.0.1:9/callback")


@pytest.mark.integration
def test_connect_app_from_the_cli_prints_the_url_and_keeps_the_token(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--shops", "2")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")},
           "BCHOOKS_API_URL": sandbox.url, "BCHOOKS_SHOPS": str(tmp_path / "shops.json"), "BCHOOKS_SECRET": SECRET,
           "BCHOOKS_CLIENT_ID": "sandbox-client", "BCHOOKS_AUTHORIZE_URL": f"{sandbox.url}/oauth/authorize"}
    try:
        connect = subprocess.Popen([sys.executable, "-m", "bchooks", "connect", "--app", "--no-browser", "--wait", "30"],
                                   cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        connect.stderr.readline()
        url = connect.stderr.readline().strip()
        assert url.startswith(f"{sandbox.url}/oauth/authorize?client_id=sandbox-client&response_type=code")
        approve_in_a_browser(account_id="1234567")(url)
        out, err = connect.communicate(timeout=30)
        assert connect.returncode == 0 and "connected shop 1234567 (Sandbox Shop) to the app" in out, err
        stored = (tmp_path / "shops.json").read_text()
        token = json.loads(stored)["shops"][0]["secret"]
        assert token not in out + err and SECRET not in out + err + stored
        listing = bchooks(tmp_path, "shops", env=env).stdout
        assert "1234567" in listing and "token" in listing and token not in listing
    finally:
        sandbox.stop()
