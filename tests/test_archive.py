"""Archives: old events into Parquet files and back (`bchooks archive`, `bchooks restore`), the analysis with the
archive included, a kill -9 in the middle, directories that cannot take it, damaged files, the retention schedule."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas.testing as pdt
import pytest

from bchooks import analysis, archives
from bchooks.analysis.cache import Projection
from bchooks.archives.files import file_sets
from bchooks.errors import ArchiveError, StoreUnavailable
from bchooks.store import event_row, open_store
from bchooks.wire import parse_envelope

from conftest import ROOT, envelope, wait_until

OLD, NEW = "2024-05-01", "2024-06-01"
BEFORE = "2024-05-20T00:00:00.000Z"


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def bchooks(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "bchooks", *map(str, args)], capture_output=True, text=True,
                          env=env or _env(), timeout=60, **kwargs)


def order_body(n, order, day, total):
    return envelope(payload={"id": f"O{order}", "updated_at": f"{day}T{n % 24:02d}:00:00.000Z",
                             "created_at": "2024-04-01T00:00:00.000Z", "total": f"{total}.00",
                             "items": [{"product_id": n % 5, "product_name": f"P{n % 5}", "quantity": 1,
                                        "price": f"{total}.00", "total": f"{total}.00"}]})


def fill(store, count=240, orders=50):
    """`count` order events, the first half received in May (old), the rest in June (of half the orders: the
    others' latest state is archived); returns them by id."""
    rows = []
    for n in range(count):
        old = n < count // 2
        day = f"{OLD[:8]}{1 + n * 28 // count:02d}" if old else f"{NEW[:8]}{1 + n % 28:02d}"
        body = order_body(n, n % orders if old else n % (orders // 2), day, 10 + n)
        rows.append(event_row(body, parse_envelope(body), received_at=f"{day}T12:00:00.000Z"))
    store.append_rows(rows)
    return snapshot(store)


def snapshot(store):
    return {e.id: e for e in store.iter_events()}


def archived_ids(directory):
    ids = []
    for folder, _ in file_sets(directory):
        ids += archives.files.event_ids(folder)
    return ids


def test_archive_then_restore_gives_the_same_bytes(engine_db, tmp_path):
    directory = tmp_path / "archive"
    directory.mkdir()
    with open_store(engine_db) as store:
        original = fill(store)
        old = [i for i, e in original.items() if e.received_at < BEFORE]
        with store.transaction() as conn:  # handler runs: one old event still pending, one dead, one done
            conn.executemany("INSERT INTO handler_runs (event_id, handler, status, next_attempt_at) VALUES (?, ?, ?, 0)",
                             [(old[0], "h", "pending"), (old[1], "h", "dead"), (old[2], "h", "done")])
            conn.execute("INSERT INTO handler_marks (handler, watermark) VALUES ('h', ?)", (max(original),))
        done = archives.archive(store, BEFORE, directory, pause=0)
        kept = snapshot(store)
        assert done.events == len(old) - 1
        assert set(kept) == set(original) - set(old) | {old[0]}  # the pending one stays
        assert store.read_value("SELECT count(*) FROM handler_runs") == 1
        assert sorted(archived_ids(directory)) == old[1:]
        (folder, manifest), = file_sets(directory)
        assert manifest["tables"]["handler_runs"] == 2 and manifest["events"]["rows"] == len(old) - 1
        assert "zstd" in str(__import__("pyarrow.parquet").parquet.ParquetFile(folder / "events.parquet")
                             .metadata.row_group(0).column(5).compression).lower()

        assert archives.restore(store, directory).restored == len(old) - 1
        assert snapshot(store) == original  # same ids, bytes, received_at, every column
        again = archives.restore(store, directory)
        assert (again.restored, again.present) == (0, len(old) - 1)
        assert store.append(b'{"type":"order.created","account_id":"1","payload":{"id":"x"}}',
                            parse_envelope(b'{"type":"order.created","account_id":"1","payload":{"id":"x"}}')
                            ).id == max(original) + 1  # ids go on after the newest, never reused


def test_analysis_is_the_same_with_the_archive(engine_db, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # (a PostgreSQL store's cache folder: under this test's home)
    directory = tmp_path / "archive"
    directory.mkdir()
    with open_store(engine_db) as store:
        fill(store)
        orders, items = analysis.frames(store)  # a cache built before archiving
        archives.archive(store, BEFORE, directory, pause=0)
        assert store.count() < 240
        with_archive = analysis.frames(store, archive=directory)
        pdt.assert_frame_equal(with_archive.orders, orders)
        pdt.assert_frame_equal(with_archive.items, items)
        Projection(store, archive=directory).rebuild()  # a fresh cache, built after archiving
        fresh = analysis.frames(store, archive=directory)
        pdt.assert_frame_equal(fresh.orders, orders)
        pdt.assert_frame_equal(fresh.items, items)
        without = analysis.frames(store)  # without the archive: only what is stored
        assert len(without.orders) == len(orders) // 2


def _archiving(db, directory, *args):
    return subprocess.Popen([sys.executable, "-m", "bchooks", "archive", "--db", str(db), "--before", BEFORE,
                             "--to", str(directory), *args], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_a_kill_mid_archive_then_rerun_loses_nothing_and_archives_nothing_twice(tmp_path):
    db, directory = tmp_path / "events.db", tmp_path / "archive"
    directory.mkdir()
    with open_store(db) as store:
        original = fill(store, count=800, orders=200)
    old = {i for i, e in original.items() if e.received_at < BEFORE}
    slow = ("--batch", "10", "--pause", "0.05")  # (pages of 40 events written, 10 deleted a transaction)
    first = _archiving(db, directory, *slow)  # killed while writing its files
    try:
        wait_until(lambda: any(directory.glob("*/events.parquet.partial")), deadline=20)
    finally:
        _kill(first)
    with open_store(db) as store:
        assert store.count() == len(original)
    second = _archiving(db, directory, *slow)  # killed while deleting
    try:
        with open_store(db, create=False) as store:
            wait_until(lambda: len(old) // 4 < len(original) - store.count() < len(old) // 2, deadline=30,
                       interval=0.01)
    finally:
        _kill(second)
    third = bchooks("archive", "--db", db, "--before", BEFORE, "--to", directory)
    assert third.returncode == 0, third.stderr
    assert "an interrupted run, finished" in third.stdout
    with open_store(db) as store:
        kept = snapshot(store)
        assert store.archives.unfinished() == []
        states = sorted(run["state"] for run in store.archives.runs())
    ids = archived_ids(directory)
    assert len(ids) == len(set(ids))  # nothing archived twice
    assert set(ids) == old and set(kept) == set(original) - old  # nothing lost
    assert len(file_sets(directory)) == 1 and states == ["abandoned", "done", "done"]  # (the third: nothing left)
    assert [p for p in directory.iterdir() if p.is_dir()] == [file_sets(directory)[0][0]]  # the killed one's went
    with open_store(db) as store:
        archives.restore(store, directory)
        assert snapshot(store) == original


def test_a_missing_or_read_only_directory_is_one_line_and_deletes_nothing(tmp_path):
    db = tmp_path / "events.db"
    with open_store(db) as store:
        original = fill(store, count=40)
    missing = bchooks("archive", "--db", db, "--before", BEFORE, "--to", tmp_path / "nowhere")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    subprocess.run(["chattr", "+i", str(read_only)], capture_output=True)  # (root ignores the mode)
    try:
        refused = bchooks("archive", "--db", db, "--before", BEFORE, "--to", read_only)
    finally:
        subprocess.run(["chattr", "-i", str(read_only)], capture_output=True)
        read_only.chmod(0o755)
    for result, words in ((missing, "does not exist"), (refused, "cannot be written")):
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    with open_store(db) as store:
        assert snapshot(store) == original
        assert store.archives.runs() == []


def test_files_that_do_not_read_back_equal_to_the_store_delete_nothing(tmp_path):
    db, directory = tmp_path / "events.db", tmp_path / "archive"
    directory.mkdir()
    with open_store(db) as store:
        original = fill(store, count=60)
        with store.transaction() as conn:  # (the store's digest of one old event no longer matches its bytes)
            conn.execute("UPDATE events SET body_sha256 = ? WHERE id = 3", ("0" * 64,))
        with pytest.raises(ArchiveError, match="event 3 read back"):
            archives.archive(store, BEFORE, directory, pause=0)
        assert len(snapshot(store)) == len(original)
        assert [run["state"] for run in store.archives.runs()] == ["abandoned"]
    assert list(directory.iterdir()) == [directory / ".lock"]


def test_restore_refuses_a_damaged_file(tmp_path):
    db, directory = tmp_path / "events.db", tmp_path / "archive"
    directory.mkdir()
    with open_store(db) as store:
        fill(store, count=60)
        archives.archive(store, BEFORE, directory, pause=0)
        left = store.count()
    (folder, _), = file_sets(directory)
    damaged = bytearray((folder / "events.parquet").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / "events.parquet").write_bytes(bytes(damaged))
    result = bchooks("restore", "--db", db, "--from", directory)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "does not match its manifest" in result.stderr
    with open_store(db) as store:
        assert store.count() == left


def test_archive_frees_a_full_store(tmp_path):
    db, directory = tmp_path / "events.db", tmp_path / "archive"
    directory.mkdir()
    with open_store(db, max_mb=1) as store:
        with pytest.raises(StoreUnavailable, match="full"):
            for n in range(0, 10_000, 10):  # (bounded: 1 MB holds a few hundred of these)
                bodies = [envelope(payload={"id": f"O{n + k}", "pad": "x" * 2000}) for k in range(10)]
                store.append_rows([event_row(body, parse_envelope(body), received_at=f"{OLD}T00:00:00.000Z")
                                   for body in bodies])
        stored = store.count()
        result = bchooks("archive", "--db", db, "--before", BEFORE, "--to", directory,
                         env=_env(BCHOOKS_MAX_DB_MB="1"))
        assert result.returncode == 0, result.stderr
        assert store.count() == 1  # (the newest stays)
        body = envelope(payload={"id": "after"})
        assert store.append(body, parse_envelope(body)).duplicate is False  # the receiver can store again
    assert len(archived_ids(directory)) == stored - 1


def test_the_worker_archives_on_its_retention_schedule(tmp_path):
    db, directory, jsonl = tmp_path / "events.db", tmp_path / "archive", tmp_path / "events.jsonl"
    directory.mkdir()
    with open_store(db) as store:
        original = fill(store, count=60)
        body = envelope(payload={"id": "today"})
        store.append(body, parse_envelope(body))  # received now: within the retention
    worker = subprocess.Popen([sys.executable, "-m", "bchooks", "worker", "--db", str(db), "--poll", "0.2"],
                              env=_env(BCHOOKS_JSONL_PATH=str(jsonl), BCHOOKS_RETAIN_DAYS="30",
                                       BCHOOKS_RETAIN_EVERY="1s", BCHOOKS_ARCHIVE_DIR=str(directory)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with open_store(db, create=False) as store:
            wait_until(lambda: store.count() == 1, deadline=30, interval=0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    handled = [json.loads(line)["id"] for line in jsonl.read_text().splitlines()]
    assert sorted(handled) == sorted([*original, max(original) + 1])  # every event handled before it was archived
    assert sorted(archived_ids(directory)) == sorted(original)
