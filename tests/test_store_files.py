"""The files under the store: the writers' lock never waits past the busy timeout, and a database or log deleted
under a running process is noticed (503, health) and recovered from, losing no acknowledged event."""

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
import requests

from bchooks import Config, EventStore, parse_envelope
from bchooks.receiving.committer import GroupCommitter
from bchooks.errors import StoreUnavailable
from bchooks.receiving.receiver import create_app
from bchooks.store import sqlite as sqlite_store
from conftest import Receiver, envelope, signed, wait_until
from wsgi import call


def hold_writer_lock(db_path, seconds):
    """Another process holding the writers' lock, like `flock bchooks.db-writer.lock sleep N`."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"handle = open({str(db_path) + '-writer.lock'!r}, 'a+b')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\nprint('held', flush=True)\n"
        f"time.sleep({seconds})\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_held_writers_lock_gives_503_after_the_busy_timeout_and_health_answers_at_once(tmp_path):
    db_path = tmp_path / "events.db"
    store = EventStore(db_path, busy_timeout=2.0, auto_checkpoint=False)  # (wide: a busy machine stays below it)
    app = create_app(Config.load(env={}, secrets="s", db=str(db_path)), store, appender=GroupCommitter(store))
    holder = hold_writer_lock(db_path, 30)
    try:
        started = time.monotonic()
        body = envelope()
        reply = call(app, body=body, headers=signed(body, "s"))
        waited = time.monotonic() - started
        assert reply.status == 503 and reply.json()["error"] == "store_unavailable"
        assert 1.9 < waited < 5, waited
        results, second = {}, envelope(payload={"id": "2"})
        writer = threading.Thread(target=lambda: results.update(reply=call(app, body=second,
                                                                           headers=signed(second, "s"))))
        writer.start()  # a request waiting for its turn...
        started = time.monotonic()
        health = call(app, method="GET", path="/healthz")  # ...does not delay the health check
        assert health.status == 200 and time.monotonic() - started < 1.0  # well inside the writer's 2 s wait
        writer.join(10)
        assert results["reply"].status == 503
    finally:
        holder.kill()
        holder.wait()
    body = envelope()
    assert call(app, body=body, headers=signed(body, "s")).status == 200  # the lock is back: it goes on
    store.close()


def test_a_held_writers_lock_bounds_plain_transactions_too(db_path):
    with EventStore(db_path, busy_timeout=0.2) as store:
        holder = hold_writer_lock(db_path, 30)
        try:
            with pytest.raises(StoreUnavailable, match="writer"):
                store.append(envelope(), parse_envelope(envelope()))
        finally:
            holder.kill()
            holder.wait()
        assert store.append(envelope(), parse_envelope(envelope())).duplicate is False


def post(url, n):
    body = envelope(payload={"id": f"NGRP-{n}"})
    try:
        return body, requests.post(url + "/webhook", data=body, headers=signed(body), timeout=10).status_code
    except requests.RequestException:
        return body, None


@pytest.mark.integration
@pytest.mark.faults
def test_a_held_checkpoint_copies_the_log_while_writers_go_on_and_holds_them_back_only_for_the_rest(
        tmp_path, monkeypatch):
    """Finishing the log (so that it starts over) copies what it can while writers go on and takes the writers'
    turn only for what they committed meanwhile: with another process in its turn, the log is copied into the
    database before that turn ends, and the checkpoint's own turn finds the database complete. (Taking the turn
    first held the writers back for all a slow pass had left: 20-85 ms, which the receiver's p99 paid.)"""
    db_path = tmp_path / "events.db"
    store = EventStore(db_path, auto_checkpoint=False)
    bodies = [envelope(payload={"id": str(i), "note": "x" * 1000}) for i in range(300)]
    store.append_many([(body, parse_envelope(body)) for body in bodies])
    before = os.path.getsize(db_path)
    in_turn, real_turn = [], sqlite_store.writers_turn

    @contextmanager
    def turn(path, timeout):
        with real_turn(path, timeout):
            in_turn.append(os.path.getsize(db_path))
            yield
    monkeypatch.setattr(sqlite_store, "writers_turn", turn)
    holder = hold_writer_lock(db_path, 60)
    try:
        finishing = threading.Thread(target=store.checkpoint, kwargs={"hold_writers": True})
        finishing.start()
        wait_until(lambda: os.path.getsize(db_path) > before, deadline=10)  # copied during the other's turn
        assert in_turn == []
    finally:
        holder.kill()
        holder.wait()
    finishing.join(10)
    assert not finishing.is_alive() and in_turn == [os.path.getsize(db_path)]
    store.close()


def test_a_deleted_write_ahead_log_loses_no_acknowledged_event(tmp_path):
    db_path = tmp_path / "events.db"
    receiver = Receiver(db_path)
    acknowledged = []
    try:
        for n in range(50):
            body, status = post(receiver.url, n)
            if status == 200:
                acknowledged.append(body)
        os.unlink(f"{db_path}-wal")
        for n in range(50, 350):
            body, status = post(receiver.url, n)
            if status == 200:
                acknowledged.append(body)
        health = requests.get(receiver.url + "/healthz", timeout=5)
        assert health.status_code == 200, health.text  # recovered: a new log, nothing left behind
    finally:
        assert receiver.stop() == 0
    assert "were copied into the database" in receiver.read_log()
    assert len(acknowledged) >= 300
    with EventStore(db_path) as store:
        stored = {event.body for event in store.iter_events()}
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged events lost"


@pytest.mark.integration
@pytest.mark.faults
def test_a_deleted_database_answers_503_until_it_is_restored(tmp_path):
    db_path = tmp_path / "events.db"
    receiver = Receiver(db_path)
    try:
        for n in range(10):
            assert post(receiver.url, n)[1] == 200
        backup = tmp_path / "backup.db"
        with EventStore(db_path) as store:
            store.checkpoint()
        subprocess.run([sys.executable, "-c",
                        f"import sqlite3; s = sqlite3.connect({str(db_path)!r}); d = sqlite3.connect({str(backup)!r});"
                        " s.backup(d); d.close(); s.close()"], check=True)
        os.rename(db_path, tmp_path / "deleted.db")
        statuses = [post(receiver.url, n)[1] for n in range(10, 30)]
        assert statuses == [503] * 20
        health = requests.get(receiver.url + "/healthz", timeout=5)
        assert health.status_code == 503 and "deleted" in health.json()["message"]
        assert not db_path.exists()  # nothing created an empty file in its place
        os.rename(backup, db_path)  # the operator restores it
        assert post(receiver.url, 30)[1] == 200
        assert requests.get(receiver.url + "/healthz", timeout=5).status_code == 200
    finally:
        assert receiver.stop() == 0
    with EventStore(db_path) as store:
        assert store.count() == 11
