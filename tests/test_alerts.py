"""Alerts: each rule fires once, repeats on schedule and recovers, on both engines, sent to real sinks (a JSON
webhook server for apprise's `json://`, an aiosmtpd SMTP server for `mailto://`); a channel that is down delays
nothing and gets the alert later; the store refusing writes is sent without it; the heartbeat is fetched only while
all is well; `bchooks watch --once`, `bchooks alerts` and `bchooks worker` as real processes; no secret printed.
Time is driven by an injected clock, never by sleeping."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bchooks import Config, parse_envelope
from bchooks.alerts import Evaluator, delivery
from bchooks.clock import iso
from bchooks.processing.handlers import Registry
from bchooks.processing.worker import Worker, replay
from bchooks.store import EventStore, open_store
from conftest import SECRET, envelope, free_port, wait_until
from test_digest import PASSWORD, Sink

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hb-token-7f3e9a"  # the heartbeat URL's secret part
HOUR = 3600.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # (a hanging request never holds up the test's end)


class HttpSink:
    """A real HTTP server on 127.0.0.1: keeps the JSON apprise posts (`json://`) and the paths fetched (the
    heartbeat); `hang=True` accepts connections and never answers (a channel that is down but not refusing)."""

    def __init__(self, port=None, hang=False):
        self.posts, self.gets = [], []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hang:
                    time.sleep(30)
                sink.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def do_GET(self):
                sink.gets.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", port or 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"json://127.0.0.1:{self.port}/alerts"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_sink():
    sink = HttpSink()
    yield sink
    sink.stop()


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def settings(db, sink, **extra):
    given = dict(db=db, notify_urls=sink.url if sink else "", alert_repeat=HOUR, alert_quiet=3 * HOUR,
                 alert_poll_failures=3, alert_rejections=2, alert_store_percent=1, max_db_mb=1)
    return Config.load(env={}, **{**given, **extra})


def put(store, account="1", at=None):
    """A verified event of this shop, received now (or at `at`, unix seconds)."""
    body = envelope(account_id=account, payload={"id": f"NGRP-{time.time_ns()}", "updated_at": "2026-01-01T00:00:00Z"})
    store.append(body, parse_envelope(body), received_at=at and stamp(at))


def stamp(seconds):
    return iso(datetime.fromtimestamp(seconds, timezone.utc))


def keys(messages):
    return sorted({line.split()[1] for message in messages for line in message["message"].split("\n\n")
                   if line.startswith(("ALERT ", "RECOVERED "))})


def test_poll_outcomes_count_failures_in_a_row_and_keep_the_missing_orders(engine_db):
    with open_store(engine_db) as store:
        for error in ("401 one", "401 two"):
            store.polls.record("7", ok=False, error=error)
        store.polls.record("8", ok=True, missing=4)
        store.polls.record("8", ok=True)  # (a poll: the reconcile's count stays)
        rows = {row["account_id"]: row for row in store.polls.status()}
        assert (rows["7"]["failures"], rows["7"]["last_error"], rows["7"]["last_success_at"]) == (2, "401 two", None)
        assert (rows["8"]["failures"], rows["8"]["missing"]) == (0, 4) and rows["8"]["last_success_at"]
        store.polls.record("7", ok=True)
        store.polls.record("8", ok=True, missing=0)
        rows = {row["account_id"]: row for row in store.polls.status()}
        assert (rows["7"]["failures"], rows["7"]["last_error"], rows["8"]["missing"]) == (0, None, 0)
        assert store.alerts.open("k", "rule", None, "one", "2026-01-01T00:00:00.000Z")
        assert not store.alerts.open("k", "rule", None, "two", "2026-01-01T00:01:00.000Z")  # one incident a key
        [alert] = store.alerts.active()
        assert alert["message"] == "two" and store.alerts.claim_send(alert["id"], "t1", "t0")
        assert not store.alerts.claim_send(alert["id"], "t1", "t0")  # another evaluator: not twice
        assert store.alerts.size_bytes() > 0


def test_each_rule_fires_once_repeats_on_schedule_and_recovers(engine_db, http_sink):
    clock = Clock()
    with open_store(engine_db) as store:
        put(store, "1")
        for _ in range(3):
            store.polls.record("2", ok=False, error="the API rejected the store password (401)")
        store.polls.record("3", ok=True, missing=2)
        registry = Registry()
        registry.on("*", name="broken", retries=0)(lambda event: 1 / 0)
        Worker(store, registry).run(once=True)
        for _ in range(3):
            store.record_rejection("invalid_signature")
        store.rejection_log.flush()
        config = settings(engine_db, http_sink, alert_repeat=HOUR / 2)
        evaluator = Evaluator(store, config, clock=clock)
        expected = ["dead_runs", "missing_orders:3", "poll_failing:2", "rejections:invalid_signature", "store_size"]

        first = evaluator.evaluate()
        assert sorted(first.active) == expected and first.sent == 5 and first.send_error is None
        assert len(http_sink.posts) == 1 and keys(http_sink.posts) == expected
        assert http_sink.posts[0]["title"] == "[bchooks] 5 alert(s)"
        assert "its last 3 polls failed" in http_sink.posts[0]["message"]

        clock.now += 60
        assert evaluator.evaluate().sent == 0 and len(http_sink.posts) == 1  # once per incident...
        clock.now += HOUR / 2
        assert evaluator.evaluate().sent == 5 and len(http_sink.posts) == 2  # ... again every BCHOOKS_ALERT_REPEAT
        assert http_sink.posts[1]["message"].count(", again)") == 5
        clock.now += 60
        assert evaluator.evaluate().sent == 0

        replay(store, dead=True)  # every condition over
        store.polls.record("2", ok=True)
        store.polls.record("3", ok=True, missing=0)
        clock.now += HOUR  # (the rejections' hour has passed)
        evaluator.config = config.replace(max_db_mb=100000)  # (room made: under the percentage)
        over = evaluator.evaluate()
        assert over.active == [] and over.ended == 5 and over.sent == 5
        assert http_sink.posts[-1]["title"] == "[bchooks] 5 recovered"
        assert keys(http_sink.posts[-1:]) == expected and "RECOVERED dead_runs" in http_sink.posts[-1]["message"]
        clock.now += 60
        assert evaluator.evaluate().sent == 0 and len(http_sink.posts) == 3

        clock.now += 2 * HOUR  # three hours without an event or a successful poll: every shop is quiet
        quiet = evaluator.evaluate()
        assert sorted(quiet.active) == ["quiet:1", "quiet:2", "quiet:3"] and "no verified event and no successful " \
            "poll for 3.5 h" in http_sink.posts[-1]["message"]
        clock.now += 60  # shop 1's event arrives, shop 2 is polled: their quiet is over, shop 3's goes on
        put(store, "1", at=clock.now)
        store.polls.record("2", ok=True, at=stamp(clock.now))
        after = evaluator.evaluate()
        assert after.active == ["quiet:3"] and http_sink.posts[-1]["title"] == "[bchooks] 2 recovered"
        recent = store.alerts.recent(50)
        assert len(recent) == 8 and {a["state"] for a in recent} == {"active", "closed"}


def test_a_channel_that_is_down_delays_nothing_and_gets_the_alert_later(tmp_path, monkeypatch):
    monkeypatch.setattr(delivery, "SEND_TIMEOUT", 1.0)
    db = str(tmp_path / "events.db")
    hanging = HttpSink(hang=True)  # takes the connection, never answers
    port = hanging.port
    clock = Clock()
    with EventStore(db) as store:
        for _ in range(3):
            store.polls.record("2", ok=False, error="401")
        evaluator = Evaluator(store, settings(db, hanging, alert_store_percent=100), clock=clock)
        started = time.monotonic()
        stalled = evaluator.evaluate()
        took = time.monotonic() - started
        hanging.stop()
        assert took < delivery.SEND_TIMEOUT + 5, took  # bounded: the channel's wait ends with SEND_TIMEOUT
        assert stalled.active == ["poll_failing:2"] and stalled.sent == 0 and stalled.send_error
        [alert] = store.alerts.active()
        assert alert["sent_at"] is None and alert["last_error"] and alert["sends"] == 0
        clock.now += 60
        refused = evaluator.evaluate()  # the port closed now: refused at once, still due
        assert refused.sent == 0 and "could not notify" in refused.send_error
        sink = HttpSink(port=port)  # the channel is back
        try:
            clock.now += 60
            assert evaluator.evaluate().sent == 1 and keys(sink.posts) == ["poll_failing:2"]
            clock.now += 60
            assert evaluator.evaluate().sent == 0 and len(sink.posts) == 1
        finally:
            sink.stop()


def test_the_store_refusing_writes_is_sent_without_it_and_its_recovery_too(tmp_path, http_sink):
    db = str(tmp_path / "events.db")
    clock = Clock()
    with EventStore(db, busy_timeout=0.2) as store:
        put(store)
        evaluator = Evaluator(store, settings(db, http_sink, alert_store_percent=100), clock=clock)
        assert evaluator.evaluate().active == []
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the database: every write of the store fails
        try:
            down = evaluator.evaluate()
            assert down.active == ["store_unavailable"] and "locked" in down.store_error and down.sent == 1
            assert http_sink.posts[-1]["title"] == "[bchooks] ALERT: store_unavailable"
            clock.now += 60
            assert evaluator.evaluate().sent == 0  # once, then every BCHOOKS_ALERT_REPEAT
            clock.now += HOUR
            assert evaluator.evaluate().sent == 1 and len(http_sink.posts) == 2
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        back = evaluator.evaluate()
        assert back.active == [] and back.sent == 1
        assert http_sink.posts[-1]["title"] == "[bchooks] RECOVERED: store_unavailable"


def test_the_heartbeat_is_fetched_only_while_no_alert_is_active(tmp_path, http_sink):
    db = str(tmp_path / "events.db")
    heartbeat = f"http://127.0.0.1:{http_sink.port}/ping/{TOKEN}"
    with EventStore(db) as store:
        evaluator = Evaluator(store, settings(db, http_sink, alert_store_percent=100, heartbeat_url=heartbeat))
        assert evaluator.evaluate().heartbeat == "sent" and http_sink.gets == [f"/ping/{TOKEN}"]
        for _ in range(3):
            store.polls.record("2", ok=False, error="401")
        failing = evaluator.evaluate()
        assert failing.active == ["poll_failing:2"] and failing.heartbeat is None and len(http_sink.gets) == 1
        store.polls.record("2", ok=True)
        assert evaluator.evaluate().heartbeat == "sent" and len(http_sink.gets) == 2
        evaluator.config = evaluator.config.replace(heartbeat_url=f"http://127.0.0.1:{free_port()}/ping/{TOKEN}")
        down = evaluator.evaluate()
        assert down.heartbeat.startswith("failed: the heartbeat URL could not be reached") and TOKEN not in str(down)


def bchooks(*args, env, cwd):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


@pytest.fixture
def smtp_sink():
    import logging
    quiet = logging.getLogger("mail.log")
    level, quiet.level = quiet.level, logging.ERROR
    server = Sink()
    server.controller.start()
    yield server
    server.controller.stop()
    quiet.setLevel(level)


def test_watch_once_and_alerts_as_processes_by_mail_without_a_secret(tmp_path, smtp_sink, http_sink):
    db = tmp_path / "events.db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}, "BCHOOKS_DB": str(db),
           "PYTHONPATH": str(ROOT), "BCHOOKS_NOTIFY_URLS": smtp_sink.url(),
           "BCHOOKS_HEARTBEAT_URL": f"http://127.0.0.1:{http_sink.port}/ping/{TOKEN}"}
    missing = bchooks("alerts", env=env, cwd=tmp_path)
    assert missing.returncode == 2 and "no event store" in missing.stderr and not db.exists()  # never created
    healthy = bchooks("watch", "--once", env=env, cwd=tmp_path)
    assert healthy.returncode == 0 and healthy.stdout == "0 active alert(s); heartbeat sent\n", healthy.stderr
    assert http_sink.gets == [f"/ping/{TOKEN}"] and smtp_sink.mails == []
    with EventStore(db) as store:
        for _ in range(3):
            store.polls.record("1234567", ok=False, error="the API rejected the store password (401)")
    firing = bchooks("watch", "--once", env=env, cwd=tmp_path)
    assert firing.returncode == 0 and "1 active alert(s): poll_failing:1234567" in firing.stdout, firing.stderr
    assert "1 sent" in firing.stdout and len(http_sink.gets) == 1  # no heartbeat while an alert is active
    [mail] = smtp_sink.mails
    text = mail.content.decode()
    assert "[bchooks] ALERT: poll_failing:1234567" in text and "its last 3 polls failed" in text
    listing = bchooks("alerts", env=env, cwd=tmp_path)
    assert listing.returncode == 0 and "poll_failing:1234567" in listing.stdout and "1x" in listing.stdout
    assert listing.stdout.rstrip().endswith("1 active")
    with EventStore(db) as store:
        for _ in range(3):
            store.polls.record("7654321", ok=False, error="401")
    down = bchooks("watch", "--once", env={**env, "BCHOOKS_NOTIFY_URLS": smtp_sink.url(free_port())}, cwd=tmp_path)
    assert down.returncode == 1 and "not sent (could not notify" in down.stdout  # (a new alert, the channel down)
    assert "FAILED" in bchooks("alerts", env=env, cwd=tmp_path).stdout.split("poll_failing:7654321")[1]
    for result in (missing, healthy, firing, listing, down):
        for secret in (PASSWORD, TOKEN):
            assert secret not in result.stdout + result.stderr


def test_the_worker_evaluates_the_alerts_beside_its_handlers(tmp_path, http_sink):
    db = tmp_path / "events.db"
    (tmp_path / "broken_handlers.py").write_text(
        "from bchooks.processing.handlers import on\n\n@on('*', retries=0)\ndef broken(event):\n    raise RuntimeError('no')\n")
    with EventStore(db) as store:
        put(store)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}, "BCHOOKS_DB": str(db),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "BCHOOKS_NOTIFY_URLS": http_sink.url,
           "BCHOOKS_ALERT_EVERY": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "bchooks", "worker", "--handlers", "broken_handlers"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: http_sink.posts or worker.poll() is not None, deadline=30)
        assert http_sink.posts[0]["title"] == "[bchooks] ALERT: dead_runs"
        assert "1 handler run(s) are dead" in http_sink.posts[0]["message"]
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=20)[0]
    assert worker.returncode == 0, output


def test_poll_and_reconcile_record_what_the_alerts_read(tmp_path, monkeypatch):
    from bchooks.cli import main
    from bchooks.shops import ShopBook, connect_basic
    from bchooks.simulator.sandbox import Sandbox, SandboxServer
    server = SandboxServer(Sandbox(SECRET))
    try:
        book = ShopBook(tmp_path / "shops.json")
        connect_basic(server.url, "sandbox-shop", "sandbox-password", book)
        for name in [n for n in os.environ if n.startswith("BCHOOKS_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("BCHOOKS_DB", str(tmp_path / "events.db"))
        monkeypatch.setenv("BCHOOKS_SHOPS", str(book.path))
        server.sandbox.trigger("order.created", 3)
        assert main(["poll", "--once"]) == 0
        with EventStore(tmp_path / "events.db") as store:
            [row] = store.polls.status()
            assert (row["account_id"], row["failures"], row["missing"]) == ("1234567", 0, 0)
            assert row["last_success_at"] == row["last_attempt_at"]
        server.sandbox.trigger("order.created", 2)  # no webhook and no poll: the store lacks them
        assert main(["reconcile"]) == 0
        book.path.write_text(book.path.read_text().replace("sandbox-password", "changed-password"))
        for _ in range(3):
            assert main(["poll", "--once"]) == 1  # the password was changed
        with EventStore(tmp_path / "events.db") as store:
            [row] = store.polls.status()
            assert (row["failures"], row["missing"]) == (3, 2) and "changed-password" not in row["last_error"]
            found = Evaluator(store, settings(str(tmp_path / "events.db"), None, alert_store_percent=100,
                                              alert_quiet=HOUR)).evaluate()
        assert sorted(found.active) == ["missing_orders:1234567", "poll_failing:1234567"]
    finally:
        server.stop()


def test_the_operations_panel_shows_the_active_alerts(tmp_path):
    from bchooks.widgets import OperationsPanel
    db = str(tmp_path / "events.db")
    with EventStore(db) as store:
        for _ in range(3):
            store.polls.record("2", ok=False, error="<b>401</b>")
        Evaluator(store, settings(db, None, alert_store_percent=100)).evaluate()
    panel = OperationsPanel(settings(db, None))
    panel.refresh_button.click()
    assert [a["key"] for a in panel.active] == ["poll_failing:2"]
    assert "1 active alert(s)" in panel.alerts.value and "&lt;b&gt;401" in panel.alerts.value


def test_watch_evaluates_on_its_schedule_until_sigterm(tmp_path, http_sink):
    db = tmp_path / "events.db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}, "BCHOOKS_DB": str(db),
           "PYTHONPATH": str(ROOT), "BCHOOKS_HEARTBEAT_URL": f"http://127.0.0.1:{http_sink.port}/ping/{TOKEN}"}
    watcher = subprocess.Popen([sys.executable, "-m", "bchooks", "watch", "--every", "1"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: len(http_sink.gets) >= 2 or watcher.poll() is not None, deadline=30)
    finally:
        watcher.send_signal(signal.SIGTERM)
        output = watcher.communicate(timeout=20)[0]
    assert watcher.returncode == 0 and len(http_sink.gets) >= 2, output
    assert "evaluating the alerts of" in output and TOKEN not in output
