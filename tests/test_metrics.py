"""Prometheus metrics: a real `bchooks serve` with two workers counts exactly the requests sent, by status and reason,
summed across its worker processes (a worker killed with SIGKILL included); the store's gauges are right on both
engines and answer in time when the store is locked; the token is enforced; no secret is ever in the output."""

import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bchooks import Config
from bchooks.clock import parse_iso
from bchooks.errors import ConfigError
from bchooks.store import open_store
from bchooks.wire import parse_envelope
from conftest import SECRET, Receiver, envelope, free_port, signed, wait_until

TOKEN = "metrics-token-do-not-show"


def parse(text):
    """{metric sample name: {labels as a sorted tuple: value}}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def requests_by_outcome(samples):
    """{(status, reason): count} of `bchooks_webhook_requests_total`."""
    return {(dict(labels)["status"], dict(labels)["reason"]): int(value)
            for labels, value in samples.get("bchooks_webhook_requests_total", {}).items()}


def scrape(url, token=TOKEN):
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


def send_mixed(url, shops_events, *, duplicates, bad_signatures, unsigned, bad_json, no_type):
    """Send each kind of request (new connections, eight at a time: both workers get some); the outcomes expected."""
    bodies = [envelope(account_id=shop, payload={"id": f"{shop}-{n}", "n": n}) for shop, n in shops_events]
    posts = [(body, signed(body)) for body in bodies]
    expected = Counter({("200", "stored"): len(bodies)})
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda post: requests.post(url, data=post[0], headers=post[1], timeout=10), posts))
        assert [answer.status_code for answer in answers] == [200] * len(posts)
        later = [(bodies[n % len(bodies)], signed(bodies[n % len(bodies)])) for n in range(duplicates)]
        later += [(body, {"X-Webhook-Signature": "0" * 64, "Content-Type": "application/json"})
                  for body in bodies[:bad_signatures]]
        later += [(body, {"Content-Type": "application/json"}) for body in bodies[:unsigned]]
        later += [(b"not json %d" % n, signed(b"not json %d" % n)) for n in range(bad_json)]
        typeless = [json.dumps({"account_id": "1", "n": n}).encode() for n in range(no_type)]
        later += [(body, signed(body)) for body in typeless]
        list(pool.map(lambda post: requests.post(url, data=post[0], headers=post[1], timeout=10), later))
    expected.update({("200", "duplicate"): duplicates, ("401", "invalid_signature"): bad_signatures,
                     ("401", "missing_signature"): unsigned, ("400", "invalid_json"): bad_json,
                     ("422", "invalid_envelope"): no_type})
    return +expected


def children(pid):
    """The pids of a process's children (granian's workers of `bchooks serve`)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def per_process_requests(folder):
    """{pid: webhook requests counted in that process's file}."""
    from prometheus_client.multiprocess import MultiProcessCollector
    counted = {}
    for path in Path(folder).glob("counter_*.db"):
        total = sum(sample.value for family in MultiProcessCollector.merge([str(path)])
                    for sample in family.samples if sample.name == "bchooks_webhook_requests_total")
        counted[int(path.stem.split("_")[1])] = total
    return counted


def stale_file(folder):
    """A counter file as a previous `serve` would have left it: 1000 stored requests."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    stale = MmapedDict(str(Path(folder) / "counter_999999.db"))
    stale.write_value(mmap_key("bchooks_webhook_requests", "bchooks_webhook_requests_total", ("status", "reason"),
                               ("200", "stored"), "old"), 1000.0, 0.0)
    stale.close()


def test_counters_summed_across_workers_equal_the_requests_sent_and_outlive_a_killed_worker(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale_file(folder)  # the folder is emptied when `serve` starts
    receiver = Receiver(tmp_path / "events.db", workers=2, extra_env={
        "BCHOOKS_METRICS": "on", "BCHOOKS_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    try:
        url, metrics = receiver.url + "/webhook", receiver.url + "/metrics"
        expected = send_mixed(url, [("111", n) for n in range(7)] + [("222", n) for n in range(5)], duplicates=5,
                              bad_signatures=4, unsigned=3, bad_json=3, no_type=2)
        first = scrape(metrics)
        assert requests_by_outcome(parse(first)) == expected
        assert parse(first)["bchooks_events_stored_total"][()] == 12
        assert parse(first)["bchooks_commit_rows_sum"][()] == 12 + 5  # (a duplicate is a row of a commit too)
        assert parse(first)["bchooks_receiver_workers"][()] == 2

        refused = requests.get(metrics, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert requests.get(metrics, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401

        # one worker that answered requests, killed: granian starts another; its counts stay in its file
        counted = per_process_requests(folder)
        workers = children(receiver.process.pid)
        assert sum(counted.values()) == sum(expected.values())
        victim = next(pid for pid in workers if counted.get(pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(children(receiver.process.pid) - {victim}) == 2)
        wait_until(lambda: parse(scrape(metrics))["bchooks_receiver_workers"][()] == 2)
        assert not list(folder.glob(f"gauge_live*_{victim}.db"))  # its live gauge dropped...
        assert (folder / f"counter_{victim}.db").exists()  # ...its counts kept

        expected += send_mixed(url, [("111", n) for n in range(7, 10)], duplicates=0, bad_signatures=2, unsigned=0,
                               bad_json=0, no_type=0)
        text = scrape(metrics)
        samples = parse(text)
        assert requests_by_outcome(samples) == expected
        assert samples["bchooks_events_stored_total"][()] == 15
        assert samples["bchooks_webhook_request_seconds_count"][()] == sum(expected.values())

        store = open_store(tmp_path / "events.db", create=False)
        try:
            newest = store.last_event_by_shop()
        finally:
            store.close()
        stamps = samples["bchooks_last_event_timestamp_seconds"]
        assert stamps == {(("account_id", shop),): parse_iso(received).timestamp()
                          for shop, (_, received) in newest.items()}
        assert set(newest) == {"111", "222"}
        assert samples["bchooks_store_up"][()] == 1
        assert samples["bchooks_store_last_event_id"][()] == 15
        for secret in (SECRET, TOKEN, str(tmp_path)):
            assert secret not in text
    finally:
        receiver.stop()
    assert not list(folder.glob("*.db"))  # its files removed at the end (the operator's folder itself kept)


def test_metrics_on_their_own_address_from_the_main_process(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    receiver = Receiver(tmp_path / "events.db", workers=2, extra_env={
        "BCHOOKS_METRICS_ADDRESS": address, "BCHOOKS_METRICS_TOKEN": TOKEN})
    try:
        expected = send_mixed(receiver.url + "/webhook", [("111", n) for n in range(6)], duplicates=2,
                              bad_signatures=1, unsigned=1, bad_json=1, no_type=0)
        assert requests.get(receiver.url + "/metrics", timeout=10).status_code == 404  # not on the public port
        assert requests.get(f"http://{address}/metrics", timeout=10).status_code == 401
        text = scrape(f"http://{address}/metrics")
        assert requests_by_outcome(parse(text)) == expected
        assert parse(text)["bchooks_store_up"][()] == 1
        assert SECRET not in text and TOKEN not in text
        assert requests.get(f"http://{address}/other", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10).status_code == 404
    finally:
        receiver.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{address}/metrics", timeout=2)


def _runs_in_every_state(store):
    """Four events' runs of one handler: two pending (queued at 1000), one running, one dead."""
    store.runs.enqueue([("h", ("*",))], 1000.0)
    claimed = store.runs.claim(["h"], "w", 1000.0, 60.0, 2)
    store.runs.finish(claimed[0][0], "h", "w", "dead", error="gave up")


def test_store_gauges_for_two_shops(engine_db):
    from prometheus_client import CollectorRegistry, generate_latest

    from bchooks.metrics import StoreGauges
    store = open_store(engine_db)
    try:
        moments = {"111": "2026-11-30T10:00:00.000Z", "222": "2026-12-01T08:30:00.000Z"}
        for n, (shop, received) in enumerate([("111", "2026-11-29T10:00:00.000Z"), ("111", moments["111"]),
                                              ("222", "2026-11-30T09:00:00.000Z"), ("222", moments["222"])]):
            body = envelope(account_id=shop, payload={"id": f"{shop}-{n}"})
            store.append(body, parse_envelope(body), received_at=received)
        _runs_in_every_state(store)
        store.cursors.set("222", "orders", "2026-12-01T00:00:00Z")
        now = parse_iso("2026-12-01T09:00:00.000Z").timestamp()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreGauges(store, clock=lambda: now))
        text = generate_latest(registry).decode()
        samples = parse(text)
        assert store.path not in text and store.source not in text  # (the PostgreSQL URL holds its password)
        assert samples["bchooks_store_up"][()] == 1
        assert samples["bchooks_last_event_age_seconds"] == {
            (("account_id", "111"),): now - parse_iso(moments["111"]).timestamp(),
            (("account_id", "222"),): 1800.0}
        assert samples["bchooks_handler_runs"] == {(("status", "pending"),): 2, (("status", "running"),): 1,
                                                   (("status", "failed"),): 0, (("status", "dead"),): 1}
        assert samples["bchooks_handler_backlog"][()] == 3
        assert samples["bchooks_handler_oldest_pending_age_seconds"][()] == now - 1000.0
        assert list(samples["bchooks_last_poll_timestamp_seconds"]) == [(("account_id", "222"),)]
        assert samples["bchooks_store_last_event_id"][()] == 4
        assert store.runs.counts_up_to(1) == {"pending": 1, "running": 1, "failed": 0, "dead": 1}
    finally:
        store.close()


def _hold_lock(engine_db, store):
    """Lock the store against reads as another process would (SQLite: an exclusive lock; PostgreSQL: ACCESS
    EXCLUSIVE on `events`); a function that lets go."""
    if engine_db.startswith("postgresql://"):
        import psycopg
        conn = psycopg.connect(engine_db)
        conn.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    else:
        store.close()  # (its next read opens the file again, and meets the lock)
        conn = sqlite3.connect(engine_db, isolation_level=None)
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM events").fetchone()

    def release():
        conn.execute("ROLLBACK")
        conn.close()
    return release


def test_a_locked_store_is_store_up_0_within_the_deadline_then_1(engine_db):
    from bchooks.metrics import MetricsEndpoint, StoreGauges
    store = open_store(engine_db, busy_timeout=60)
    try:
        endpoint = MetricsEndpoint(store, gauges=StoreGauges(store, deadline=0.5))
        release = _hold_lock(engine_db, store)
        try:
            answered = threading.Event()
            result = {}

            def scrape_now():
                result["answer"] = endpoint.answer({})
                answered.set()
            threading.Thread(target=scrape_now, daemon=True).start()
            assert answered.wait(30), "a scrape of a locked store did not answer"  # (60 s: the store's own wait)
            status, _, body = result["answer"]
            samples = parse(body.decode())
            assert status == 200 and samples["bchooks_store_up"][()] == 0
            assert "bchooks_handler_backlog" not in samples and "bchooks_last_event_age_seconds" not in samples
        finally:
            release()
        wait_until(lambda: parse(endpoint.answer({})[2].decode())["bchooks_store_up"][()] == 1, deadline=30)
    finally:
        store.close()


def test_metrics_settings():
    assert Config.load(env={}).metrics == ""
    assert Config.load(env={"BCHOOKS_METRICS": "on"}).metrics == "/metrics"
    assert Config.load(env={"BCHOOKS_METRICS": "/private-1234"}).metrics == "/private-1234"
    assert Config.load(env={"BCHOOKS_METRICS": "off"}).metrics == ""
    assert Config.load(env={"BCHOOKS_METRICS_ADDRESS": "[::1]:9464"}).metrics_address == "[::1]:9464"
    for env in ({"BCHOOKS_METRICS": "sometimes"}, {"BCHOOKS_METRICS_ADDRESS": "9464"},
                {"BCHOOKS_METRICS_ADDRESS": "localhost:99999"}):
        with pytest.raises(ConfigError, match=next(iter(env))):
            Config.load(env=env)
    config = Config.load(env={"BCHOOKS_METRICS_TOKEN": TOKEN})
    assert TOKEN in config.secret_values() and TOKEN not in repr(config)


def test_serve_refuses_a_metrics_path_that_is_the_webhooks(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "bchooks", "serve", "--db", str(tmp_path / "e.db"), "--port",
                           str(free_port()), "--metrics", "/webhook"], env={**os.environ, "BCHOOKS_SECRET": SECRET},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "webhook path" in done.stderr and "Traceback" not in done.stderr
