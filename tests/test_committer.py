"""Group commit: concurrent appends share transactions, each answered only after its commit."""

import itertools
import os
import sqlite3
import threading

import pytest

from bchooks import EventStore, committer, parse_envelope
from bchooks.receiving.committer import GroupCommitter
from bchooks.store import sqlite as sqlite_store
from bchooks.errors import StoreUnavailable
from conftest import envelope, wait_until


def group_committed(db_path, **options):
    """A store as the receiver opens it, and the group committer around it."""
    store = EventStore(db_path, auto_checkpoint=False, **options)
    return store, GroupCommitter(store)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_appends_share_commits_and_all_are_stored(db_path, engine, request):
    if engine == "sqlite":
        store, grouped = group_committed(db_path)
    else:
        from bchooks.store import open_store
        store = open_store(request.getfixturevalue("pg_url"))
        grouped = GroupCommitter(store)
    results = []
    barrier = threading.Barrier(16)

    def worker(n):
        barrier.wait()
        for i in range(25):
            body = envelope(payload={"id": f"{n}-{i % 20}"})  # the last five repeat earlier bodies
            results.append((body, grouped.append(body, parse_envelope(body))))
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count() == 16 * 20
    assert sum(not r.duplicate for _, r in results) == 16 * 20
    for body, result in results:
        assert store.get(result.id).body == body
    assert grouped.batches < len(results)  # commits were shared
    store.close()


def appender(grouped, results, n):
    body = envelope(payload={"id": f"waiting-{n}"})
    return threading.Thread(target=lambda: results.append(grouped.append(body, parse_envelope(body))))


def wait_for_queue(grouped, length):
    wait_until(lambda: len(grouped._queued) >= length, deadline=10.0, interval=0.01)


def test_appends_queued_while_the_leader_waits_for_its_turn_join_its_commit(db_path):
    store, grouped = group_committed(db_path)
    results = []
    with store.writers_turn():  # as if another process were committing
        threads = [appender(grouped, results, n) for n in range(8)]
        for thread in threads:
            thread.start()
        wait_for_queue(grouped, 8)  # the first is the leader, waiting for the writers' lock; the rest queue behind it
        assert results == []  # nothing answered before its commit
    for thread in threads:
        thread.join(10)
    assert grouped.batches == 1 and len(results) == 8 and store.count() == 8
    assert not any(result.duplicate for result in results)
    store.close()


def test_appends_queued_behind_a_leader_whose_turn_fails_all_fail(db_path):
    store, grouped = group_committed(db_path, busy_timeout=0.2)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holding SQLite's own lock past the busy timeout
    failures = []

    def append(n):
        body = envelope(payload={"id": f"failing-{n}"})
        try:
            grouped.append(body, parse_envelope(body))
        except StoreUnavailable as error:
            failures.append(error)
    with store.writers_turn():
        threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        wait_for_queue(grouped, 6)
    for thread in threads:
        thread.join(10)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert len(failures) == 6 and grouped._queued == [] and store.count() == 0
    store.close()


def test_a_failed_commit_fails_every_waiting_append(db_path):
    store, grouped = group_committed(db_path, busy_timeout=0.05)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    body = envelope()
    with pytest.raises(StoreUnavailable, match="locked"):
        grouped.append(body, parse_envelope(body))
    blocker.execute("ROLLBACK")
    blocker.close()
    assert grouped.append(body, parse_envelope(body)).duplicate is False
    store.close()


def log_restarts(db_path):
    """The write-ahead log's checkpoint sequence (bytes 12-15 of its header): one more each time it starts over."""
    with open(f"{db_path}-wal", "rb") as log:
        header = log.read(16)
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else 0


def test_the_write_ahead_log_starts_over_again_and_again_under_steady_load(db_path, monkeypatch):
    """Past its limit, a background checkpoint finishes with the writers held back for a moment, so the log starts
    over instead of growing for as long as the load lasts (every event adds about 13 KB to it), and its file is cut
    back to LOG_KEPT when it does. Counted by the log's own header, not by time: a busy machine only slows it."""
    monkeypatch.setattr(committer, "CHECKPOINT_EVERY", 0.05)
    monkeypatch.setattr(committer, "WAL_LIMIT", 2 ** 20)
    monkeypatch.setattr(sqlite_store, "LOG_KEPT", 2 ** 20)
    store, grouped = group_committed(db_path)
    stop, written = threading.Event(), []

    def worker(n):
        i = 0
        while not stop.is_set():
            body = envelope(payload={"id": f"{n}-{i}", "note": "x" * 1000})
            grouped.append(body, parse_envelope(body))
            i += 1
        written.append(i)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: os.path.exists(f"{db_path}-wal") and store.count() > 100)
        first = log_restarts(db_path)
        wait_until(lambda: log_restarts(db_path) >= first + 3, deadline=60)
        held = store.count()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert store.count() == sum(written) > held  # the writers went on throughout
    after = itertools.count()

    def cut_back():  # (a round can meet the background thread's own checkpoint, busy: the next one goes on; the
        # file may already be small from an earlier cut while this round's log has not started over: both asked)
        store.checkpoint(hold_writers=True)
        body = envelope(payload={"id": f"after-{next(after)}"})
        grouped.append(body, parse_envelope(body))  # a commit that starts the log over cuts its file back
        # what checkpoint() reports is the log since it started over
        return os.path.getsize(f"{db_path}-wal") <= 2 ** 20 + 64 * 1024 and store.checkpoint() < 64 * 1024
    wait_until(cut_back, deadline=10)
    store.close()


def test_the_log_starts_over_inside_the_file_kept(db_path):
    """A round finishes the log once it passes WAL_LIMIT, half the file the store keeps (LOG_KEPT): the commit
    that starts it over leaves that file as it is. (With both at 64 MB, under steady load every restart cut the
    file back, 7.5 ms on a request's commit, after the log had extended it past 64 MB.)"""
    store, grouped = group_committed(db_path)
    note = "x" * 3500  # (about a page an event)
    batches = itertools.count()
    while os.path.getsize(f"{db_path}-wal") <= committer.WAL_LIMIT + 2 ** 20:
        bodies = [envelope(payload={"id": f"{next(batches)}-{i}", "note": note}) for i in range(1000)]
        store.append_many([(body, parse_envelope(body)) for body in bodies])
    grown, first = os.path.getsize(f"{db_path}-wal"), log_restarts(db_path)
    grouped.checkpoint_round()
    body = envelope(payload={"id": "after"})
    store.append_many([(body, parse_envelope(body))])
    assert log_restarts(db_path) == first + 1  # it started over,
    assert os.path.getsize(f"{db_path}-wal") == grown  # in the file as it was
    store.close()


def test_a_row_that_cannot_be_stored_fails_only_its_own_request(db_path):
    """One poison row in a shared commit: its request gets UnstorableEvent (422), every other one is stored."""
    from bchooks.errors import UnstorableEvent
    store, grouped = group_committed(db_path)
    results, failures = [], []
    poison = ("2026-01-01T00:00:00.000Z", "order.created", "1", "\ud83d", b"{}", "f" * 64, None, None)

    def submit_poison():
        try:
            grouped.submit(poison)  # (a text value that cannot be written as UTF-8)
        except UnstorableEvent as error:
            failures.append(error)
    with store.writers_turn():
        threads = [appender(grouped, results, n) for n in range(3)] + [threading.Thread(target=submit_poison)]
        threads += [appender(grouped, results, n) for n in range(3, 6)]
        for thread in threads:
            thread.start()
            if thread is threads[0]:
                wait_for_queue(grouped, 1)
        wait_for_queue(grouped, 7)
    for thread in threads:
        thread.join(10)
    assert len(failures) == 1 and len(results) == 6 and store.count() == 6
    assert grouped.batches == 1
    store.close()
