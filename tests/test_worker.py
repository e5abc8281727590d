"""Handlers, retries, dead letters, replay, kills and two workers: the durable processing of stored events."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from bchooks import parse_envelope
from bchooks.processing.handlers import Registry
from bchooks.processing.worker import Worker, failures, replay
from conftest import envelope, wait_until


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def db_path(engine_db):
    """Every test here runs on each engine: a SQLite file, then a PostgreSQL database."""
    return engine_db


@pytest.fixture
def store(db_path):
    from bchooks.store import open_store
    with open_store(db_path) as opened:
        yield opened


def put(store, n, type="order.created"):
    for i in range(n):
        body = envelope(type=type, payload={"id": f"{type}-{i}"})
        store.append(body, parse_envelope(body))


def test_handlers_run_once_per_event_and_type(store):
    seen = []
    registry = Registry()
    registry.on("order.created", name="orders")(lambda e: seen.append(("orders", e.id)))
    registry.on("*", name="all")(lambda e: seen.append(("all", e.id)))
    put(store, 3)
    put(store, 2, type="product.updated")
    worker = Worker(store, registry)
    worker.run(once=True)
    worker.run(once=True)
    assert sorted(seen) == sorted([("orders", i) for i in (1, 2, 3)] + [("all", i) for i in range(1, 6)])


def test_retries_follow_the_schedule_then_succeed(store):
    clock, calls = Clock(), []
    registry = Registry()

    def flaky(event):
        calls.append(clock.now)
        if len(calls) <= 2:
            raise RuntimeError("payment service down")
    registry.on("order.created", name="flaky", retries=3, retry_delay=5, retry_backoff=2)(flaky)
    put(store, 1)
    worker = Worker(store, registry, clock=clock)
    assert worker.run_once().failed == 1
    assert failures(store)[0]["last_error"] == "RuntimeError: payment service down"
    clock.now += 4.9
    assert worker.run_once().ran == 0  # not due yet
    clock.now += 0.1
    assert worker.run_once().failed == 1
    clock.now += 9.9
    assert worker.run_once().ran == 0
    clock.now += 0.1
    assert worker.run_once().done == 1
    assert [t - calls[0] for t in calls] == [0, 5.0, 15.0]
    assert failures(store) == []


def test_always_failing_handler_ends_dead_and_replays(store):
    clock = Clock()
    registry = Registry()
    attempts = []
    registry.on("order.created", name="broken", retries=2, retry_delay=1, retry_backoff=3)(
        lambda e: attempts.append(1) or 1 / 0)
    put(store, 1)
    worker = Worker(store, registry, clock=clock)
    for _ in range(10):
        worker.run_once()
        clock.now += 100
    assert len(attempts) == 3  # 1 + retries
    [row] = failures(store)
    assert row["status"] == "dead" and row["attempts"] == 3 and "ZeroDivisionError" in row["last_error"]
    assert replay(store, dead=True, clock=clock) == 1
    worker.run_once()
    assert len(attempts) == 4


def test_replay_by_type_and_since(store):
    registry = Registry()
    runs = []
    registry.on("*", name="count")(lambda e: runs.append(e.id))
    put(store, 2)
    put(store, 1, type="product.updated")
    worker = Worker(store, registry)
    worker.run(once=True)
    assert replay(store, event_type="product.updated", since="2000-01-01") == 1
    worker.run(once=True)
    assert sorted(runs) == [1, 2, 3, 3]
    with pytest.raises(Exception, match="say what to replay"):
        replay(store)


HANDLERS = textwrap.dedent("""
    import os, time
    from bchooks.processing.handlers import on

    LOG = os.environ["TEST_LOG"]

    @on("*", name="record")
    def record(event):
        if os.environ.get("TEST_SLOW") and not os.path.exists(LOG + ".slowed"):
            open(LOG + ".slowed", "w").close()
            open(LOG + ".started", "w").close()
            time.sleep(60)
        with open(LOG, "a") as f:
            f.write(f"{event.id}\\n")
""")


def start_worker(tmp_path, db, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "bchooks", "worker", "--db", str(db), "--handlers", "myhandlers",
                             "--poll", "0.05", *extra],
                            env={**os.environ, "PYTHONPATH": str(tmp_path), "TEST_LOG": str(tmp_path / "runs.log"),
                                 **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_worker_loses_nothing(tmp_path, store, db_path):
    (tmp_path / "myhandlers.py").write_text(HANDLERS)
    put(store, 3)
    first = start_worker(tmp_path, db_path, "--lease", "1", env={"TEST_SLOW": "1"})
    wait_until(lambda: (tmp_path / "runs.log.started").exists())
    first.send_signal(signal.SIGKILL)
    first.wait()
    first.communicate()
    assert store.runs.count("running") >= 1
    time.sleep(1.2)  # the killed worker's lease runs out
    second = start_worker(tmp_path, db_path, "--once")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    runs = (tmp_path / "runs.log").read_text().split()
    assert sorted(runs) == ["1", "2", "3"]  # event 1 ran again after the kill, never marked done unrun
    assert store.runs.count("done") == 3


def test_two_workers_run_every_pair_exactly_once(tmp_path, store, db_path):
    (tmp_path / "myhandlers.py").write_text(HANDLERS)
    put(store, 300)
    workers = [start_worker(tmp_path, db_path, "--once") for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    runs = (tmp_path / "runs.log").read_text().split()
    assert sorted(runs, key=int) == [str(i) for i in range(1, 301)]


SLOW_HANDLERS = textwrap.dedent("""
    import json, os, time
    from bchooks.processing.handlers import on

    @on("*", name="slow")
    def slow(event):
        started = time.time()
        time.sleep(0.5)
        with open(os.environ["TEST_LOG"], "a") as f:
            f.write(json.dumps([event.id, os.getpid(), started, time.time()]) + "\\n")
""")


def test_two_workers_with_slow_handlers_and_a_short_lease_run_each_pair_once(tmp_path, store, db_path):
    """A batch takes longer than the lease (12 pairs of 0.5 s, a 2 s lease): claims are renewed while they wait."""
    import json
    (tmp_path / "myhandlers.py").write_text(SLOW_HANDLERS)
    put(store, 12)
    workers = [start_worker(tmp_path, db_path, "--lease", "2") for _ in range(2)]  # both keep looking
    try:
        wait_until(lambda: store.runs.count("done") == 12,
                   deadline=60)
        time.sleep(1.0)  # time for a second run of any pair whose claim had lapsed
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
    runs = [json.loads(line) for line in (tmp_path / "runs.log").read_text().splitlines()]
    assert sorted(run[0] for run in runs) == list(range(1, 13))  # each pair once, never two at a time


def test_renewing_keeps_a_claim_past_its_lease(store):
    registry = Registry()
    registry.on("*", name="h")(lambda event: None)
    put(store, 1)
    clock = Clock()
    first, second = Worker(store, registry, clock=clock, lease=10), Worker(store, registry, clock=clock, lease=10)
    first.enqueue()
    assert len(first.claim()) == 1
    clock.now += 8
    assert first.renew() == 1
    clock.now += 8  # past the first lease, within the renewed one
    assert second.claim() == []
    clock.now += 3
    assert len(second.claim()) == 1  # not renewed any more (a killed worker): another may take it


def test_errors_stored_and_shown_never_hold_the_chat_webhook_url(tmp_path, store, db_path):
    """A failing chat post: neither handler_runs.last_error nor `failures` shows the URL's key."""
    from bchooks import Config
    from bchooks.processing.handlers import Handler, chat_poster
    from bchooks.simulator.sandbox import Sandbox, SandboxServer  # (a loopback server that answers 404 on that path)
    server = SandboxServer(Sandbox("s"))
    try:
        url = f"{server.url}/services/T000/B000/XKEYXKEYXKEY"
        config = Config.load(env={}, chat_webhook_url=url, token="tok-secret-1234")
        registry = Registry()
        registry.add(Handler("bchooks.chat", ("order.created",), chat_poster(url), retries=0))
        put(store, 1)
        Worker(store, registry, secrets=config.secret_values()).run_once()
    finally:
        server.stop()
    stored = store.runs.failures(1)[0]["last_error"]
    assert "404" in stored and "XKEY" not in stored and "/services/" not in stored
    shown = failures(store, secrets=config.secret_values())[0]["last_error"]
    assert "XKEY" not in shown


def test_redact_hides_secret_values_url_paths_and_credentials():
    from bchooks.secrecy import redact
    url = "https://hooks.slack.com/services/T000/B000/KEYKEYKEY"
    text = (f"HTTPError: 500 for url: {url} (token abcd1234efgh) https://user:hunter2@example.com/x "
            "and /services/T000/B000/KEYKEYKEY?x")
    shown = redact(text, [url, "abcd1234efgh"])
    assert "KEYKEYKEY" not in shown and "abcd1234efgh" not in shown and "hunter2" not in shown
    assert "[redacted]" in shown and "HTTPError: 500" in shown


def fail_310(store):
    """306 dead runs and 4 failed ones waiting for their next attempt: 310 failures, more than any page shows."""
    registry = Registry()
    registry.on("order.created", name="broken", retries=0)(lambda e: 1 / 0)
    registry.on("product.updated", name="flaky", retries=3, retry_delay=600)(lambda e: 1 / 0)
    put(store, 306)
    put(store, 4, type="product.updated")
    Worker(store, registry, clock=Clock(), batch=400).run_once()


def test_failures_are_counted_by_the_store_and_the_cli_says_of_how_many(store, db_path, capsys):
    from bchooks.cli import main
    from bchooks.processing.worker import failure_count
    fail_310(store)
    assert store.runs.counts_by_status() == {"dead": 306, "failed": 4}
    assert failure_count(store) == 310 and len(failures(store, 50)) == 50
    assert main(["failures", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + 50 + 1, out[-3:]  # the header, the newest 50, and how many there are
    assert out[-1] == "showing 50 of 310 failed or dead handler runs, newest first"
    assert main(["failures", "--db", str(db_path), "--limit", "500"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "showing 310 of 310 failed or dead handler runs, newest first"


def test_no_failures_says_so_once(store, db_path, capsys):
    from bchooks.cli import main
    from bchooks.processing.worker import failure_count
    put(store, 1)
    assert failure_count(store) == 0 and store.runs.counts_by_status() == {}
    assert main(["failures", "--db", str(db_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["(no failed or dead handler runs)"]
