import sqlite3

import pytest

from bchooks.errors import StoreError, StoreUnavailable
from bchooks.wire import parse_envelope
from bchooks.store import MIGRATIONS, SCHEMA_VERSION, EventStore, migrate
from conftest import envelope


def append(store, body, **kwargs):
    return store.append(body, parse_envelope(body), **kwargs)


def test_append_and_get_keep_exact_bytes(store):
    body = envelope(payload={"id": "NGRP-1", "note": "caf\u00e9 \u2615"}) + b"  \n"
    result = append(store, body, signature_header="ab" * 32, remote_addr="10.0.0.1")
    assert result.duplicate is False
    event = store.get(result.id)
    assert event.body == body and event.type == "order.created" and event.account_id == "12345"
    assert event.resource_id == "NGRP-1" and event.remote_addr == "10.0.0.1"
    assert event.received_at.endswith("Z") and len(event.received_at) == 24


def test_identical_body_stored_once(store):
    first = append(store, envelope())
    again = append(store, envelope())
    assert again.id == first.id and again.duplicate is True
    assert store.count() == 1


def test_different_bytes_same_json_are_two_events(store):
    append(store, envelope())
    append(store, envelope() + b" ")
    assert store.count() == 2


def test_iterate_by_type_time_and_id(store):
    ids = [append(store, envelope(type=t, payload={"id": str(i)})).id
           for i, t in enumerate(["order.created", "product.updated", "order.created"])]
    assert [e.id for e in store.iter_events(type="order.created")] == [ids[0], ids[2]]
    assert [e.id for e in store.iter_events(after_id=ids[0], batch=1)] == ids[1:]
    assert [e.id for e in store.iter_events(limit=2, batch=1)] == ids[:2]
    assert list(store.iter_events(since="9999")) == []
    assert store.count(type="product.updated") == 1
    assert store.counts_by_type() == {"order.created": 2, "product.updated": 1}
    assert [e.id for e in store.latest(2)] == [ids[2], ids[1]]


def test_schema_contract(db_path, store):
    conn = sqlite3.connect(db_path)
    columns = [(row[1], row[2]) for row in conn.execute("PRAGMA table_info(events)")]
    assert columns == [("id", "INTEGER"), ("received_at", "TEXT"), ("type", "TEXT"), ("account_id", "TEXT"),
                       ("resource_id", "TEXT"), ("body", "BLOB"), ("body_sha256", "TEXT"),
                       ("signature_header", "TEXT"), ("remote_addr", "TEXT")]
    rejection_columns = [row[1] for row in conn.execute("PRAGMA table_info(rejections)")]
    assert rejection_columns == ["id", "received_at", "remote_addr", "path", "reason", "size"]
    assert "body" not in rejection_columns
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_migrates_an_older_file_in_place(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO events (received_at, type, body, body_sha256) VALUES ('t', 'order.created', x'7b7d',"
                 " 'abc')")
    conn.close()
    with EventStore(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        assert store.get(1).body == b"{}"
        store.record_rejection("invalid_signature", path="/webhook", remote_addr="1.2.3.4", size=10)
        assert store.rejections()[0]["reason"] == "invalid_signature"


def test_refuses_newer_schema(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        EventStore(db_path)


def test_refuses_a_file_that_is_not_sqlite(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a bchooks event store"):
        EventStore(path)


def test_synchronous_full_option(db_path):
    with EventStore(db_path, synchronous="FULL") as store:
        assert store._read("PRAGMA synchronous")[0][0] == 2


def test_locked_database_is_unavailable_then_recovers(db_path):
    with EventStore(db_path, busy_timeout=0.05) as store:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            append(store, envelope())
        blocker.execute("ROLLBACK")
        blocker.close()
        assert append(store, envelope()).duplicate is False
        assert store.count() == 1


def test_reopens_after_fork_pid_change(store, monkeypatch):
    append(store, envelope())
    assert store.count() == 1
    writer, reader = store._conn, store._reader
    monkeypatch.setattr(store, "_pid", -1)  # as in a forked child: neither inherited connection may be used
    monkeypatch.setattr(store, "_reader_pid", -1)
    assert store.count() == 1 and store._reader is not reader
    assert append(store, envelope(payload={"id": "2"})).duplicate is False and store._conn is not writer
