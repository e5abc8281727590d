"""The whole loop with real processes: sandbox + receiver, registration, delivery, retries after an outage."""

import json
import sqlite3
import subprocess
import sys
import os

import pytest
import requests

from bchooks.shops.client import BigCartelClient
from bchooks.receiving.signing import sign
from bchooks.simulator.shop import Shop
from conftest import SECRET, Receiver, SandboxProcess, wait_until

pytestmark = pytest.mark.integration


def stored(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT body, signature_header FROM events ORDER BY id").fetchall()
    finally:
        conn.close()


def content(body):
    """An order event without what depends on when it was made (its id's run tag and its times): the seed decides
    the rest. (Byte identity is checked by the signatures: the sandbox signs the bytes it sends.)"""
    payload = json.loads(body)["payload"]
    return json.dumps({k: v for k, v in payload.items() if k not in ("id", "created_at", "updated_at", "completed_at")},
                      sort_keys=True), payload["id"].rsplit("-", 1)[1]


def delivered(client, states=("delivered",)):
    return [d for d in client.sandbox_deliveries() if d["state"] in states]


def test_fifty_orders_arrive_byte_identical_and_an_outage_loses_nothing(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--seed", "3", "--retry-schedule", "0.3,0.6,1,2,4,8")
    receiver = Receiver(tmp_path / "events.db")
    try:
        with BigCartelClient(sandbox.url, "sandbox-token", backoff=0.01) as client:
            client.register_webhook(receiver.url + "/webhook", ["order.created"])
            client.sandbox_trigger("order.created", 50)
            wait_until(lambda: len(delivered(client)) == 50)
            expected = [content(body) for body in Shop(3).events("order.created", 60)]  # same seed, same shop
            rows = stored(receiver.db)
            assert sorted(content(body) for body, _ in rows) == sorted(expected[:50])
            assert all(signature == sign(body, SECRET) for body, signature in rows)

            port = receiver.port
            receiver.stop()
            client.sandbox_trigger("order.created", 10)
            wait_until(lambda: all(d["attempts"] for d in client.sandbox_deliveries()))
            assert len(delivered(client)) == 50  # the ten are waiting for a retry
            receiver = Receiver(tmp_path / "events.db", port=port)
            wait_until(lambda: len(delivered(client)) == 60, deadline=30)
            rows = stored(receiver.db)
            assert len(rows) == 60 and sorted(content(body) for body, _ in rows) == sorted(expected)
            assert not delivered(client, states=("failed", "pending", "dropped"))
    finally:
        receiver.stop()
        sandbox.stop()


def test_cli_register_webhooks_simulate_unregister(tmp_path):
    sandbox = SandboxProcess(tmp_path)
    receiver = Receiver(tmp_path / "events.db")
    env = {**os.environ, "BCHOOKS_API_URL": sandbox.url, "BCHOOKS_TOKEN": "sandbox-token",
           "BCHOOKS_SECRET": SECRET, "BCHOOKS_RECEIVER_URL": receiver.url + "/webhook"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bchooks", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    try:
        result = cli("register", "--events", "order.created,order.updated")
        assert result.returncode == 0 and "registered webhook 1" in result.stdout, result.stderr
        listing = cli("webhooks").stdout
        assert receiver.url + "/webhook" in listing and "order.created,order.updated" in listing
        result = cli("simulate", "order.created", "-n", "5", "--via-sandbox")
        assert result.returncode == 0 and "5 deliveries: sent 5, 2xx 5" in result.stdout, result.stdout
        result = cli("simulate", "order.updated", "-n", "60", "--concurrency", "4", "--seed", "9")
        assert result.returncode == 0 and "sent 60, 2xx 60, failures: none" in result.stdout, result.stderr
        assert requests.get(receiver.url + "/healthz").json()["events"] == 65
        result = cli("register", "--events", "order.shipped")
        assert result.returncode == 2 and "valid: account.updated" in result.stderr
        result = cli("unregister", "--all")
        assert result.returncode == 0 and "unregistered 1 webhook" in result.stdout
        result = subprocess.run([sys.executable, "-m", "bchooks", "webhooks"], cwd=tmp_path, capture_output=True,
                                text=True, env={**env, "BCHOOKS_TOKEN": "wrong"}, timeout=60)
        assert result.returncode == 1 and result.stderr.strip().endswith("check BCHOOKS_TOKEN")
        assert "wrong" not in result.stderr and result.stderr.count("\n") == 1
    finally:
        receiver.stop()
        log = sandbox.stop()
    assert "token: sandbox-token" in log
