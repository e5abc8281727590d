"""Demo shops that look like shops: one currency each, a year of history their API serves, state that survives a
restart of the sandbox process on the same port."""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bchooks import EventStore, analysis
from bchooks.clock import parse_iso
from bchooks.simulator.sandbox import Sandbox
from bchooks.simulator.shop import Shop
from conftest import SECRET, SandboxProcess, free_port, wait_http

PASSWORD = "sandbox-password"
ACCEPT = {"Accept": "application/vnd.api+json", "User-Agent": "bchooks-tests (tests@example.com)"}
TOKEN = {**ACCEPT, "Authorization": "Bearer sandbox-token"}


def read_all(url, path, **request):
    """Every item of a paged list (following links.next), and the `included` resources seen."""
    items, included, next_url = [], [], f"{url}{path}?page[limit]=100"
    while next_url:
        reply = requests.get(next_url, timeout=30, **request)
        assert reply.status_code == 200, reply.text
        document = reply.json()
        items += document["data"]
        included += document.get("included", [])
        next_url = document["links"].get("next")
    return items, included


def test_n_shops_each_with_its_own_id_subdomain_name_currency_and_a_year(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--shops", "5", "--history", "40")
    try:
        seen = []
        for n in range(5):
            subdomain = f"sandbox-shop-{n + 1}" if n else "sandbox-shop"
            basic = {"headers": ACCEPT, "auth": (subdomain, PASSWORD)}
            account = requests.get(sandbox.url + "/v1/accounts", timeout=10, **basic).json()["data"][0]
            currency = account["relationships"]["currency"]["data"]["id"]
            seen.append((account["id"], account["attributes"]["subdomain"], account["attributes"]["store_name"],
                         currency))
            orders, _ = read_all(sandbox.url, f"/v1/accounts/{account['id']}/orders", **basic)
            assert len(orders) == 40 and {o["relationships"]["currency"]["data"]["id"] for o in orders} == {currency}
            created = sorted(parse_iso(o["attributes"]["created_at"]) for o in orders)
            assert created[-1] - created[0] > timedelta(days=300)  # a year, not today
            products, options = read_all(sandbox.url, f"/v1/accounts/{account['id']}/products", **basic)
            price = {o["id"]: o["attributes"]["price"] for o in options if o["type"] == "product_options"}
            for order in orders[:5]:  # the shop's own prices, in its currency (the year changes no price)
                document = requests.get(f"{sandbox.url}/v1/accounts/{account['id']}/orders/{order['id']}",
                                        timeout=10, **basic).json()
                for item in (i for i in document["included"] if i["type"] == "order_line_items"):
                    option = item["relationships"]["product_option"]["data"]["id"]
                    assert item["attributes"]["price"] == price[option]
            other = "1234567" if n else "1234568"
            assert requests.get(f"{sandbox.url}/v1/accounts/{other}/orders", timeout=10,
                                **basic).status_code == 404  # its password opens its own shop only
        assert [s[0] for s in seen] == [str(1234567 + n) for n in range(5)]
        assert sorted(s[3] for s in seen) == ["AUD", "CAD", "EUR", "GBP", "USD"]
        assert len({s[1] for s in seen}) == len({s[2] for s in seen}) == 5
    finally:
        sandbox.stop()


def bchooks(folder, *args, env):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.integration
def test_connect_then_poll_brings_the_year_into_the_analysis(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--shops", "2", "--history", "60")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")},
           "BCHOOKS_API_URL": sandbox.url, "BCHOOKS_SHOPS": str(tmp_path / "shops.json"),
           "BCHOOKS_DB": str(tmp_path / "events.db"), "BCHOOKS_SHOP_PASSWORD": PASSWORD}
    try:
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop-2", env=env)
        assert result.returncode == 0 and "connected shop 1234568" in result.stdout, result.stderr
        result = bchooks(tmp_path, "poll", "--once", env=env)
        assert result.returncode == 0, result.stderr
        with EventStore(tmp_path / "events.db") as store:
            orders = analysis.frames(store).orders
        assert len(orders) == 60 and set(orders["currency"].astype(str)) == {"GBP"}
        weekly = analysis.revenue(orders, "W")
        assert weekly["period"].nunique() > 26 and set(weekly["currency"].astype(str)) == {"GBP"}
    finally:
        sandbox.stop()


def start_sandbox(folder, port, *args):
    log = open(Path(folder) / f"sandbox-{port}.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "bchooks", "sandbox", "--port", str(port), *args],
                               env={**os.environ, "BCHOOKS_SECRET": SECRET}, stdout=log, stderr=log, cwd=folder)
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/sandbox/healthz", process=process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def app_token(url, account_id):
    """What `bchooks connect --app` gets: approve in the page, exchange the code."""
    callback = "http://127.0.0.1:9/callback"
    answer = requests.post(url + "/oauth/authorize", allow_redirects=False, timeout=10, data={
        "client_id": "sandbox-client", "redirect_uri": callback, "state": "s", "decision": "approve",
        "account_id": account_id})
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    reply = requests.post(url + "/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "client_id": "sandbox-client", "client_secret": SECRET, "code": code,
        "redirect_uri": callback})
    return reply.json()["access_token"]


def test_state_survives_a_kill_and_a_restart_on_the_same_port(tmp_path):
    port, state = free_port(), tmp_path / "state" / "sandbox.json"
    url = f"http://127.0.0.1:{port}"
    args = ("--shops", "2", "--history", "15", "--state", str(state))
    process = start_sandbox(tmp_path, port, *args)
    try:
        token = app_token(url, "1234568")
        requests.post(url + "/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["order.created"]},
                      headers=TOKEN, timeout=10)
        requests.post(url + "/sandbox/events", json={"type": "order.created", "count": 3, "account_id": "1234568"},
                      headers=TOKEN, timeout=10)
        requests.post(url + "/sandbox/events", json={"type": "product.updated", "count": 2}, headers=TOKEN,
                      timeout=10)
        before = {a: read_all(url, f"/v1/accounts/{a}/orders", headers=TOKEN) for a in ("1234567", "1234568")}
        products = read_all(url, "/v1/accounts/1234567/products", headers=TOKEN)
        assert len(before["1234568"][0]) == 18
        assert oct(state.stat().st_mode & 0o777) == "0o600"
        assert token not in (tmp_path / f"sandbox-{port}.log").read_text()
        process.send_signal(signal.SIGKILL)  # no goodbye: what was answered was already saved
        process.wait()
        process = start_sandbox(tmp_path, port, *args)  # the same port, its old connections in TIME-WAIT
        after = {a: read_all(url, f"/v1/accounts/{a}/orders", headers=TOKEN) for a in ("1234567", "1234568")}
        assert after == before and read_all(url, "/v1/accounts/1234567/products", headers=TOKEN) == products
        mine = read_all(url, "/v1/accounts/1234568/orders", headers={**ACCEPT, "Authorization": f"Bearer {token}"})
        assert mine == before["1234568"]  # the app's token still opens its shop
        hooks = requests.get(url + "/v1/webhooks", headers=TOKEN, timeout=10).json()["data"]
        assert [h["url"] for h in hooks] == ["http://127.0.0.1:9/h"]
        new = requests.post(url + "/sandbox/events", json={"type": "order.created", "account_id": "1234568"},
                            headers=TOKEN, timeout=10).json()["events"][0]
        assert new["resource_id"] not in {o["id"] for o in before["1234568"][0]} and new["id"] == 6
    finally:
        process.kill()
        process.wait()


def test_a_state_file_it_did_not_write_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text('{"shops": "nope"}')
    result = subprocess.run([sys.executable, "-m", "bchooks", "sandbox", "--port", str(free_port()), "--state",
                             str(bad)], env={**os.environ, "BCHOOKS_SECRET": SECRET}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "is not one this sandbox wrote" in result.stderr
    assert "Traceback" not in result.stderr and bad.read_text() == '{"shops": "nope"}'  # left as it was


def test_a_restored_shop_goes_on_as_the_original_would():
    original = Shop(4, currency="EUR")
    original.events("order.created", 5)
    restored = Shop.restore(json.loads(json.dumps(original.state())))
    assert restored.events("order.created", 3) == original.events("order.created", 3)
    assert restored.events("product.updated", 2) == original.events("product.updated", 2)


def test_a_sandbox_with_more_shops_than_its_state_keeps_the_saved_ones(tmp_path):
    first = Sandbox(SECRET, shops=1, history=5, state=tmp_path / "state.json")
    saved = dict(first.shop.orders)
    first.stop()
    second = Sandbox(SECRET, shops=3, history=5, state=tmp_path / "state.json")
    try:
        assert second.shop.orders == saved and list(second.shops) == ["1234567", "1234568", "1234569"]
        assert [s.account["currency"] for s in second.shops.values()] == ["USD", "GBP", "EUR"]
        assert all(len(s.orders) == 5 for s in second.shops.values())
    finally:
        second.stop()


@pytest.mark.parametrize("history", [-1, 20001, 2.5, True])
def test_a_history_out_of_bounds_is_refused_before_anything_is_made(tmp_path, history):
    from bchooks.errors import ConfigError
    with pytest.raises(ConfigError, match="--history must be a whole number of orders from 0 to 20000"):
        Sandbox(SECRET, history=history, state=tmp_path / "state.json")
    assert not (tmp_path / "state.json").exists()
