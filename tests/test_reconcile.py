"""Reconciliation against the sandbox with a share of deliveries dropped on purpose."""

import os
import subprocess
import sys
from decimal import Decimal

from bchooks import analysis
from bchooks.shops.client import BigCartelClient
from bchooks.shops.reconcile import last_reconciliation, reconcile
from bchooks.simulator.sandbox import Sandbox, SandboxServer
from conftest import SECRET, wait_until


def sandbox_state(client):
    return {doc["data"]["id"]: (doc["data"]["attributes"]["updated_at"], doc["data"]["attributes"]["shipping_status"],
                                doc["data"]["attributes"]["payment_status"],
                                Decimal(doc["data"]["attributes"]["total"]).quantize(Decimal("0.01")))
            for doc in client.iter_orders()}


def store_state(store):
    orders = analysis.frames(store).orders
    return {row.order_id: (row.updated_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{row.updated_at.microsecond // 1000:03d}Z",
                           row.shipping_status, row.payment_status, analysis.money(row.total_cents))
            for row in orders.itertuples()}


def test_dropped_deliveries_are_reconciled_and_a_second_run_adds_nothing(engine_receiver, tmp_path):
    url, store = engine_receiver
    sandbox = Sandbox(SECRET, drop=0.3, seed=5, schedule=(0.2,))
    server = SandboxServer(sandbox)
    try:
        sandbox.register(url, ["order.created", "order.updated"])
        sandbox.trigger("order.created", 60)
        sandbox.trigger("order.updated", 25)
        wait_until(lambda: sandbox.dispatcher.counts()["pending"] == 0)
        dropped = sandbox.dispatcher.counts()["dropped"]
        assert dropped > 0
        with BigCartelClient(server.url, "sandbox-token") as client:
            expected = sandbox_state(client)
            assert store_state(store) != expected
            first = reconcile(store, client)
            assert first.checked == 60 and first.missing + first.stale > 0
            assert store_state(store) == expected
            events = store.count()
            second = reconcile(store, client)
            assert (second.missing, second.stale) == (0, 0) and store.count() == events
        assert last_reconciliation(store)["checked"] == 60
        print(f"\ndropped {dropped} deliveries; first run: {first}; second run: {second}")
    finally:
        server.stop()


def test_reconcile_cli_against_an_unreachable_api_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bchooks", "reconcile", "--db", str(tmp_path / "x.db"),
                             "--api-url", "http://127.0.0.1:9", "--account-id", "1"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "BCHOOKS_TOKEN": "t"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "cannot connect" in result.stderr


def test_reconcile_checks_each_account_once_when_the_token_opens_a_connected_shop(tmp_path):
    import json
    server = SandboxServer(Sandbox(SECRET))
    try:
        server.sandbox.trigger("order.created", 3)
        shops = tmp_path / "shops.json"
        shops.write_text(json.dumps({"shops": [{"account_id": "1234567", "kind": "basic", "api_url": server.url,
                                                "subdomain": "sandbox-shop", "secret": "sandbox-password"}]}))
        shops.chmod(0o600)
        result = subprocess.run([sys.executable, "-m", "bchooks", "reconcile", "--db", str(tmp_path / "x.db"),
                                 "--api-url", server.url], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "BCHOOKS_TOKEN": "sandbox-token", "BCHOOKS_SHOPS": str(shops)})
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("checked 3 orders") == 1, result.stdout
    finally:
        server.stop()
