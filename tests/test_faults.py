"""Fault tolerance of the real receiver: kill -9, a locked, read-only or full database, two receivers on one
file, slow and oversized clients. Run alone with `pytest -m faults`."""

import http.client
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from conftest import Receiver, envelope, signed, start_trickle

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def post(url, body, timeout=10):
    return requests.post(url + "/webhook", data=body, headers=signed(body), timeout=timeout)


def stored_bodies(db):
    conn = sqlite3.connect(db)
    try:
        return {row[0]: row[1] for row in conn.execute("SELECT id, body FROM events")}
    finally:
        conn.close()


def kill_group(receiver):
    os.killpg(receiver.process.pid, signal.SIGKILL)
    receiver.process.wait()
    time.sleep(0.2)


def test_kill_9_loses_no_acknowledged_event(tmp_path):
    db = tmp_path / "events.db"
    acknowledged = {}
    for round_number in range(3):
        receiver = Receiver(db, extra_env={}, new_session=True)
        stop = threading.Event()

        def client(worker):
            n = 0
            while not stop.is_set():
                n += 1
                body = envelope(payload={"id": f"R{round_number}-W{worker}-{n}", "pad": "x" * 900})
                try:
                    reply = post(receiver.url, body, timeout=5)
                except requests.RequestException:
                    continue  # the receiver died under us: not acknowledged, nothing to check
                if reply.status_code == 200:
                    acknowledged[reply.json()["id"]] = body
        workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        kill_group(receiver)
        stop.set()
        for worker in workers:
            worker.join()
        receiver.stop()
    assert len(acknowledged) > 100
    after = Receiver(db)
    try:
        rows = stored_bodies(db)
        missing = [i for i, body in acknowledged.items() if rows.get(i) != body]
        assert missing == []
        assert requests.get(after.url + "/healthz").json()["events"] == len(rows)
    finally:
        after.stop()


@pytest.fixture
def fast_fail_receiver(tmp_path):
    receiver = Receiver(tmp_path / "events.db", extra_env={"BCHOOKS_BUSY_TIMEOUT": "0.2", "BCHOOKS_RETRY_AFTER": "7"})
    yield receiver
    receiver.stop()


def expect_503_then_recovery(receiver, heal):
    body = envelope(payload={"id": "during"})
    reply = post(receiver.url, body)
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "7"
    assert reply.json()["error"] == "store_unavailable"
    heal()
    reply = post(receiver.url, body)
    assert reply.status_code == 200 and reply.json()["status"] == "stored"
    assert list(stored_bodies(receiver.db).values()).count(body) == 1


def test_locked_by_another_process(fast_fail_receiver):
    receiver = fast_fail_receiver
    assert post(receiver.url, envelope()).status_code == 200
    holder = subprocess.Popen(["python3", "-c", "import sqlite3, sys, time\n"
                               f"c = sqlite3.connect({str(receiver.db)!r}, isolation_level=None)\n"
                               "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"

    def heal():
        holder.stdin.close()
        holder.wait(timeout=10)
    expect_503_then_recovery(receiver, heal)


def test_read_only_database(fast_fail_receiver):
    receiver = fast_fail_receiver
    assert post(receiver.url, envelope()).status_code == 200
    # the database and its write-ahead log become immutable: read-only even for root (the -shm index stays
    # writable: it is memory-mapped, and SQLite only reads and locks it)
    files = [str(p) for p in (receiver.db, receiver.db.with_name(receiver.db.name + "-wal")) if p.exists()]
    subprocess.run(["chattr", "+i", *files], check=True)

    def heal():
        subprocess.run(["chattr", "-i", *files], check=True)
    try:
        expect_503_then_recovery(receiver, heal)
    finally:
        subprocess.run(["chattr", "-i", *files], check=False)


def test_full_database(tmp_path):
    receiver = Receiver(tmp_path / "events.db", extra_env={"BCHOOKS_MAX_DB_MB": "1", "BCHOOKS_RETRY_AFTER": "7"})
    try:
        n = 0
        while True:
            n += 1
            reply = post(receiver.url, envelope(payload={"id": f"fill-{n}", "pad": "x" * 8000}))
            if reply.status_code != 200:
                break
            assert n < 1000
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "7"
        stored = len(stored_bodies(receiver.db))
        assert stored == n - 1  # every 200 was stored, the 503 was not

        def heal():  # the operator archives old events: their pages are reused
            conn = sqlite3.connect(receiver.db)
            conn.execute("DELETE FROM events WHERE id <= 20")
            conn.commit()
            conn.close()
        expect_503_then_recovery_after_full(receiver, heal)
    finally:
        receiver.stop()


def expect_503_then_recovery_after_full(receiver, heal):
    body = envelope(payload={"id": "after-full", "pad": "x" * 8000})
    assert post(receiver.url, body).status_code == 503
    heal()
    assert post(receiver.url, body).status_code == 200


def test_two_receivers_on_one_file(tmp_path):
    db = tmp_path / "events.db"
    first, second = Receiver(db), Receiver(db)
    results = {"ok": [], "bad": []}
    lock = threading.Lock()

    def client(worker):
        session = requests.Session()
        for n in range(150):
            target = (first, second)[(worker + n) % 2]
            body = envelope(payload={"id": f"W{worker}-{n}"})
            reply = session.post(target.url + "/webhook", data=body, headers=signed(body), timeout=10)
            with lock:
                (results["ok"] if reply.status_code == 200 else results["bad"]).append((reply.status_code, body))
    try:
        threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        first.stop()
        second.stop()
    assert results["bad"] == []
    rows = stored_bodies(db)
    assert len(rows) == 8 * 150 == len(set(rows.values()))
    assert set(rows.values()) == {body for _, body in results["ok"]}


def test_slow_client_and_oversized_body_do_not_stall_others(tmp_path):
    receiver = Receiver(tmp_path / "events.db", workers=2)
    trickle = start_trickle(receiver.port, envelope())
    huge = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    try:
        huge.putrequest("POST", "/webhook")
        huge.putheader("Content-Length", str(200 * 1024 * 1024))
        huge.endheaders()
        huge.send(b"x" * 65536)
        started = time.monotonic()
        for n in range(20):
            assert post(receiver.url, envelope(payload={"id": f"meanwhile-{n}"}), timeout=5).status_code == 200
        assert time.monotonic() - started < 10
        assert huge.getresponse().status == 413
    finally:
        trickle.close()
        huge.close()
        receiver.stop()
