"""PostgreSQL's faults, on a cluster of this module's own (it is stopped and started): the server stopped under
load, a read-only server, a lock held past the busy timeout, kill -9 of a receiver mid-commit, and several
receivers and workers on one cluster standing in for several hosts."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest
import requests

from bchooks.store import open_store
from conftest import Receiver, envelope, running_cluster, signed, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A cluster of this module's own: its tests stop and start it."""
    yield from running_cluster(tmp_path_factory.mktemp("pgfaults"))


_names = iter(range(1, 10 ** 6))


@pytest.fixture
def url(cluster):
    created = cluster.create_database(f"faults{next(_names)}")
    with open_store(created):
        pass
    return created


def post(receiver, body, timeout=10):
    return requests.post(receiver.url + "/webhook", data=body, headers=signed(body), timeout=timeout)


def stored(url):
    with psycopg.connect(url) as conn:
        return {row[0]: bytes(row[1]) for row in conn.execute("SELECT id, body FROM events")}


class Load:
    """Threads posting distinct signed events until stopped; what was acknowledged, and every status seen."""

    def __init__(self, receiver, threads=4, tag="L"):
        self.receiver, self.acknowledged, self.statuses = receiver, {}, []
        self.retry_after = set()
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(f"{tag}{n}",)) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _send(self, name):
        n = 0
        while not self._stop.is_set():
            n += 1
            body = envelope(payload={"id": f"{name}-{n}", "pad": "x" * 300})
            try:
                reply = post(self.receiver, body, timeout=15)
            except requests.RequestException:
                continue  # the receiver died under us: not acknowledged
            with self._lock:
                self.statuses.append(reply.status_code)
                if reply.status_code == 200:
                    self.acknowledged[reply.json()["id"]] = body
                elif reply.status_code == 503:
                    self.retry_after.add(reply.headers.get("Retry-After"))
            if reply.status_code == 503:
                time.sleep(0.05)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self


def test_the_server_stopped_under_load_gives_503_loses_no_2xx_and_recovers(cluster, url, tmp_path):
    receiver = Receiver(url, folder=tmp_path, extra_env={"BCHOOKS_BUSY_TIMEOUT": "1", "BCHOOKS_RETRY_AFTER": "3"})
    try:
        load = Load(receiver)
        wait_until(lambda: len(load.acknowledged) > 50, deadline=30)
        cluster.stop("fast")
        time.sleep(2.0)
        during = post(receiver, envelope(payload={"id": "while-down"}))
        assert during.status_code == 503 and during.headers["Retry-After"] == "3"
        assert during.json()["error"] == "store_unavailable"
        health = requests.get(receiver.url + "/healthz", timeout=10)
        assert health.status_code == 503
        cluster.start()
        before = len(load.acknowledged)
        wait_until(lambda: len(load.acknowledged) > before + 50, deadline=60)  # recovered by itself
        load.stop()
        assert post(receiver, envelope(payload={"id": "while-down"})).status_code == 200
        assert requests.get(receiver.url + "/healthz", timeout=10).status_code == 200
    finally:
        receiver.stop()
    assert set(load.statuses) <= {200, 503} and 503 in load.statuses and load.retry_after == {"3"}
    rows = stored(url)
    assert [i for i, body in load.acknowledged.items() if rows.get(i) != body] == []
    assert len(rows) == len(set(rows.values()))  # (no body twice)
    assert "Traceback" not in receiver.read_log()


def test_a_read_only_server_gives_503_then_recovers(cluster, url, tmp_path):
    receiver = Receiver(url, folder=tmp_path, extra_env={"BCHOOKS_BUSY_TIMEOUT": "1", "BCHOOKS_RETRY_AFTER": "7"})
    try:
        assert post(receiver, envelope(payload={"id": "before"})).status_code == 200
        cluster.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        cluster.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        try:
            reply = post(receiver, envelope(payload={"id": "during"}))
            assert reply.status_code == 503 and reply.headers["Retry-After"] == "7"
            assert reply.json()["error"] == "store_unavailable"
            assert "the database is read-only" in receiver.read_log()  # (the operator's log says why)
        finally:
            cluster.psql("ALTER SYSTEM RESET default_transaction_read_only")
            cluster.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        assert post(receiver, envelope(payload={"id": "during"})).json()["status"] == "stored"
    finally:
        receiver.stop()


def test_a_lock_held_past_the_busy_timeout_gives_503_and_health_still_answers(url, tmp_path):
    receiver = Receiver(url, folder=tmp_path, extra_env={"BCHOOKS_BUSY_TIMEOUT": "0.5"})
    try:
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE events IN EXCLUSIVE MODE")  # (held until this transaction ends)
            started = time.monotonic()
            reply = post(receiver, envelope(payload={"id": "locked"}))
            waited = time.monotonic() - started
            assert reply.status_code == 503 and reply.json()["error"] == "store_unavailable"
            assert "a lock is held by another transaction" in receiver.read_log()
            assert 0.4 < waited < 3.0
            started = time.monotonic()
            assert requests.get(receiver.url + "/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
            holder.rollback()
        assert post(receiver, envelope(payload={"id": "locked"})).json()["status"] == "stored"
    finally:
        receiver.stop()


FROZEN_IN_COMMIT = textwrap.dedent("""
    import os, signal, sys
    from bchooks.store import open_store

    with open_store(sys.argv[1]) as store, store.transaction(appending=True):  # the events' turn, taken
        print("holding", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen, as a host lost in the middle of its commit
""")


def test_a_writer_frozen_in_its_commit_holds_the_others_up_for_seconds_only(url):
    """A process stopped between taking the events' turn and committing (a host lost) makes the others answer
    503 meanwhile, never for longer than the server's idle-in-transaction limit: then they go on by themselves."""
    from bchooks import parse_envelope
    from bchooks.errors import StoreUnavailable
    from bchooks.store.postgres import IDLE_IN_TRANSACTION
    frozen = subprocess.Popen([sys.executable, "-c", FROZEN_IN_COMMIT, url], stdout=subprocess.PIPE, text=True)
    try:
        assert frozen.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with open_store(url, busy_timeout=0.5) as store:
            body = envelope(payload={"id": "behind the frozen one"})
            event = parse_envelope(body)
            with pytest.raises(StoreUnavailable, match="a lock is held by another transaction"):
                store.append(body, event)

            def stored_at_last():
                try:
                    return store.append(body, event)
                except StoreUnavailable:
                    return None
            assert wait_until(stored_at_last, deadline=IDLE_IN_TRANSACTION + 10, interval=0.5).duplicate is False
        assert IDLE_IN_TRANSACTION - 1 < time.monotonic() - started < IDLE_IN_TRANSACTION + 5
    finally:
        frozen.kill()
        frozen.wait(timeout=10)


def test_kill_9_of_a_receiver_mid_commit_loses_no_acknowledged_event(url, tmp_path):
    acknowledged = {}
    for round_number in range(3):
        receiver = Receiver(url, folder=tmp_path, new_session=True)
        load = Load(receiver, tag=f"K{round_number}-")
        time.sleep(1.0)
        os.killpg(receiver.process.pid, signal.SIGKILL)
        receiver.process.wait()
        load.stop()
        receiver.stop()
        acknowledged.update(load.acknowledged)
    assert len(acknowledged) > 100
    rows = stored(url)
    assert [i for i, body in acknowledged.items() if rows.get(i) != body] == []
    with open_store(url) as store:  # nothing left half-done: a new append goes on at once
        assert store.append(envelope(payload={"id": "after"}), __import__("bchooks").parse_envelope(
            envelope(payload={"id": "after"}))).duplicate is False


HANDLERS = textwrap.dedent("""
    import os, time
    from bchooks.processing.handlers import on

    @on("*", name="record")
    def record(event):
        time.sleep(0.002)
        with open(os.environ["TEST_LOG"], "a") as f:
            f.write(f"{event.id} {os.getpid()}\\n")
""")


def start_worker(url, folder, poll):
    """A `bchooks worker` process running HANDLERS (written into `folder`), its runs logged to folder/runs.log."""
    (folder / "hosthandlers.py").write_text(HANDLERS)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))  # (this checkout's bchooks)
    env = {**os.environ, "PYTHONPATH": path, "TEST_LOG": str(folder / "runs.log")}
    return subprocess.Popen([sys.executable, "-m", "bchooks", "worker", "--db", url, "--handlers", "hosthandlers",
                             "--poll", str(poll)], env=env, cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_several_receivers_and_workers_on_one_cluster_store_and_run_each_event_once(url, tmp_path):
    """Two receivers (two worker processes each) and two handler workers on one cluster, as on several hosts."""
    receivers = [Receiver(url, folder=tmp_path) for _ in range(2)]
    workers = [start_worker(url, tmp_path, 2) for _ in range(2)]
    try:
        loads = [Load(receiver, threads=3, tag=f"H{n}-") for n, receiver in enumerate(receivers)]
        time.sleep(3.0)
        for load in loads:
            load.stop()
        for body in [envelope(payload={"id": "both"})] * 2:  # the same body to both receivers: stored once
            for receiver in receivers:
                assert post(receiver, body).status_code == 200
        acknowledged = {i: body for load in loads for i, body in load.acknowledged.items()}
        assert len(acknowledged) > 200 and all(s == 200 for load in loads for s in load.statuses)
        rows = stored(url)
        assert len(rows) == len(acknowledged) + 1 and [i for i in acknowledged if rows[i] != acknowledged[i]] == []
        try:
            wait_until(lambda: (tmp_path / "runs.log").exists()
                       and len((tmp_path / "runs.log").read_text().split("\n")) > len(rows), deadline=60)
        except TimeoutError:
            pass  # (the assertions below say which events were not run, and what the workers printed)
        time.sleep(1.0)  # time for a second run, if any pair were run twice
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=60) for worker in workers]
        for receiver in receivers:
            receiver.stop()
    assert all(worker.returncode == 0 for worker in workers), outputs
    runs = [line.split() for line in (tmp_path / "runs.log").read_text().splitlines()]
    assert sorted(int(event_id) for event_id, _ in runs) == sorted(rows), outputs  # each event run once, none twice
    assert len({pid for _, pid in runs}) == 2  # both workers took a share
    for receiver in receivers:
        assert "Traceback" not in receiver.read_log()


def test_workers_wake_on_notify_rather_than_their_poll(url, tmp_path):
    """A worker polling every 30 s runs a new event's handler within a second: PostgreSQL's NOTIFY woke it."""
    worker = start_worker(url, tmp_path, 30)
    try:
        def listening():
            with psycopg.connect(url) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN bchooks_events'"
                                    " AND datname = current_database()"
                                    ).fetchone()[0] == 1
        wait_until(listening, deadline=30)
        with open_store(url) as store:
            body = envelope(payload={"id": "wake"})
            started = time.monotonic()
            store.append(body, __import__("bchooks").parse_envelope(body))
        wait_until(lambda: (tmp_path / "runs.log").exists(), deadline=10)
        assert time.monotonic() - started < 3.0
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert json.dumps(1) in (tmp_path / "runs.log").read_text().split()[0]


def test_a_worker_waits_out_a_server_restart_and_goes_on(cluster, url, tmp_path):
    worker = start_worker(url, tmp_path, 0.2)
    try:
        assert "handlers" in worker.stderr.readline()  # (its store is open: a slow start-up is not the outage)
        time.sleep(1.0)
        cluster.stop("fast")
        time.sleep(2.0)
        assert worker.poll() is None  # still running
        cluster.start()
        with open_store(url) as store:
            for n in range(5):
                body = envelope(payload={"id": f"after-restart-{n}"})
                store.append(body, __import__("bchooks").parse_envelope(body))
        wait_until(lambda: (tmp_path / "runs.log").exists()
                   and len((tmp_path / "runs.log").read_text().split("\n")) > 5, deadline=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "the store is unavailable" in err and "the store is back" in err and "Traceback" not in err
    # the database libraries' own warnings are folded into the worker's lines: one line down, one line back
    assert "error connecting" not in err and "error ignored" not in err, err
    assert err.count("the store is unavailable") == 1 and len(err.strip().splitlines()) <= 3, err
    assert sorted(int(line.split()[0]) for line in (tmp_path / "runs.log").read_text().splitlines()) == [1, 2, 3, 4, 5]
