"""One contract, two engines: the store, the receiver, migrations and `bchooks migrate` on SQLite and on a real
PostgreSQL server (started by the tests in a temporary folder). The worker's contract runs on both in
test_worker.py; PostgreSQL's own faults are in test_postgres_faults.py."""

import subprocess
import sys
import threading

import pytest
import requests

from bchooks.errors import MissingStore, UnstorableEvent
from bchooks.store import SCHEMA_VERSION, open_store
from bchooks.store.events import NEWEST_BY_SHOP
from bchooks.store.interface import Appended
from bchooks.wire import parse_envelope
from conftest import Receiver, envelope, signed

pytestmark = pytest.mark.integration


@pytest.fixture
def store(engine_db):
    with open_store(engine_db) as opened:
        yield opened


def append(store, body, **kwargs):
    return store.append(body, parse_envelope(body), **kwargs)


def bchooks(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "bchooks", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def columns(store, table):
    """The table's column names in order, as the engine describes them."""
    if store.engine == "sqlite":
        return [row[1] for row in store._read(f"PRAGMA table_info({table})")]
    return [row[0] for row in store._read("SELECT column_name FROM information_schema.columns WHERE table_name = ?"
                                          " ORDER BY ordinal_position", (table,))]


def tables(store):
    if store.engine == "sqlite":
        return sorted(r[0] for r in store._read("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return sorted(r[0] for r in store._read("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                            " AND tablename != 'bchooks_schema'"))


# -- the store
def test_exact_bytes_once_each_and_read_back_in_id_order(store):
    body = envelope(payload={"id": "NGRP-1", "note": "caf\u00e9 \u2615"}) + b"  \n"
    first = append(store, body, signature_header="ab" * 32, remote_addr="10.0.0.1")
    assert first == Appended(first.id, False) and append(store, body) == Appended(first.id, True)
    event = store.get(first.id)
    assert (event.body, event.type, event.account_id, event.resource_id, event.remote_addr) == (
        body, "order.created", "12345", "NGRP-1", "10.0.0.1")
    assert isinstance(event.body, bytes) and event.received_at.endswith("Z") and len(event.received_at) == 24
    ids = [first.id] + [append(store, envelope(type=t, payload={"id": str(i)})).id
                        for i, t in enumerate(["product.updated", "order.created"])]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [e.id for e in store.iter_events(type="order.created")] == [ids[0], ids[2]]
    assert [e.id for e in store.iter_events(after_id=ids[0], batch=1)] == ids[1:]
    assert [e.id for e in store.iter_events(limit=2, batch=1)] == ids[:2]
    assert list(store.iter_events(since="9999")) == []
    assert store.count() == 3 and store.count(type=("product.updated",)) == 1
    assert store.counts_by_type() == {"order.created": 2, "product.updated": 1}
    assert [e.id for e in store.latest(2)] == [ids[2], ids[1]]
    assert store.last_event() == (ids[2], store.get(ids[2]).body_sha256)
    assert sorted(store.resource_ids(type="order.created")) == ["1", "NGRP-1"]
    assert [row[0] for row in store.order_rows(1, ids[2], ("order.created",))] == [ids[0], ids[2]]
    assert store.schema_version() == SCHEMA_VERSION


def test_a_batch_with_an_unstorable_row_stores_the_others(store):
    from bchooks.store import event_row
    good = [envelope(payload={"id": f"G{i}"}) for i in range(6)]
    rows = [event_row(body, parse_envelope(body)) for body in good]
    poison = list(rows[0])
    poison[1] = "order.\ud83d"  # a lone surrogate in the type: text neither engine can store as UTF-8
    poison[5] = "f" * 64
    results = store.append_rows(rows[:3] + [tuple(poison)] + rows[3:] + [rows[0]])
    assert isinstance(results[3], UnstorableEvent)
    stored = [r for r in results if not isinstance(r, Exception)]
    assert [r.duplicate for r in stored] == [False] * 6 + [True] and stored[-1].id == stored[0].id
    assert store.count() == 6 and sorted(store.resource_ids()) == sorted(f"G{i}" for i in range(6))


def test_runs_reconciliations_cursors_shops_and_rejections(store):
    append(store, envelope(payload={"id": "A"}))
    assert store.runs.enqueue([("h", ("*",))], 100.0) == 1 and store.runs.enqueue([("h", ("*",))], 100.0) == 0
    claimed = store.runs.claim(["h"], "w1", 100.0, 30, 10)
    assert [tuple(c) for c in claimed] == [(1, "h", 1)] and store.runs.claim(["h"], "w2", 100.0, 30, 10) == []
    assert store.runs.renew("w1", 200.0) == 1
    store.runs.finish(1, "h", "w1", "dead", None, "boom")
    assert store.runs.count("dead") == 1 and store.runs.failures()[0]["last_error"] == "boom"
    assert store.runs.replay(101.0, dead=True) == 1 and store.runs.count("pending") == 1
    run = store.reconciliations.start("2026-01-01T00:00:00Z")
    store.reconciliations.finish(run, checked=3, missing=1, stale=0)
    assert store.reconciliations.last()["checked"] == 3
    store.cursors.set("12345", "orders", "2026-11-01T00:00:00.000Z")
    store.cursors.set("12345", "orders", "2026-11-02T00:00:00.000Z")
    assert store.cursors.get("12345", "orders") == "2026-11-02T00:00:00.000Z" and "12345" in store.cursors.last_polled()
    store.cursors.remember_shop("12345", "Shop")
    assert store.cursors.shop_names() == {"12345": "Shop"}
    assert store.live_resources("12345", ("order.created",), "order.deleted") == {"A"}
    for _ in range(3):
        store.record_rejection("invalid_signature", path="/webhook", remote_addr="1.2.3.4", size=10)
    assert store.rejection_counts() == {"invalid_signature": 3}
    assert store.rejections()[0]["reason"] == "invalid_signature"


def test_each_shops_newest_event_is_found_by_index_seeks(store):
    """Interleaved shops (and an event with no account): each shop's newest id and when it came, on both engines;
    SQLite's plan for it scans no table (a scrape or an alert check costs the same at a million events)."""
    newest = {}
    for n in range(30):
        account = ("7", "12345", "9")[n % 3]
        body = envelope(account_id=account, payload={"id": f"O{n}"})
        newest[account] = append(store, body, received_at=f"2026-11-01T00:00:{n:02d}.000Z").id
    append(store, b'{"type":"order.created","payload":{"id":"none"}}', received_at="2026-11-01T00:01:00.000Z")
    found = store.last_event_by_shop()
    assert {account: event_id for account, (event_id, _) in found.items()} == newest
    assert found["9"][1] == "2026-11-01T00:00:29.000Z"
    if store.engine == "sqlite":
        plan = " ".join(str(row[-1]) for row in store._read("EXPLAIN QUERY PLAN " + NEWEST_BY_SHOP))
        assert "SCAN events" not in plan, plan


def test_both_engines_have_the_same_tables_and_columns(tmp_path, pg_url):
    with open_store(str(tmp_path / "a.db")) as sqlite, open_store(pg_url) as postgres:
        assert tables(sqlite) == tables(postgres)
        for table in tables(sqlite):
            assert columns(sqlite, table) == columns(postgres, table), table
        assert sqlite.schema_version() == postgres.schema_version() == SCHEMA_VERSION
        from bchooks.store.transfer import EVENT_COLUMNS, TABLES
        assert sorted(["events", *(t[0] for t in TABLES)]) == tables(sqlite)  # `migrate` copies every table...
        assert list(EVENT_COLUMNS) == columns(sqlite, "events")  # ... and every column
        assert all(list(t[1]) == columns(sqlite, t[0]) for t in TABLES)


def test_an_older_postgresql_schema_is_upgraded_and_a_newer_refused(pg_url):
    import psycopg

    from bchooks.errors import StoreError
    from bchooks.store.schema import migrate_postgres
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate_postgres(conn, target=2)
        conn.execute("INSERT INTO events (received_at, type, body, body_sha256) VALUES ('t', 'order.created', "
                     "'\\x7b7d', 'abc')")
    with open_store(pg_url) as store:
        assert store.schema_version() == SCHEMA_VERSION and store.get(1).body == b"{}"
        assert append(store, envelope()).id == 2  # (ids go on after the rows already there)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE bchooks_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer"):
        open_store(pg_url)


def test_a_read_never_creates_a_store(engine_db):
    with pytest.raises(MissingStore):
        open_store(engine_db, create=False)
    result = bchooks("events", "--db", engine_db)
    assert result.returncode == 2 and "no event store" in result.stderr and "Traceback" not in result.stderr
    if engine_db.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(engine_db) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_check_says_which_engine_and_schema(engine_db):
    with open_store(engine_db) as store:
        append(store, envelope())
    result = bchooks("check", "--db", engine_db)
    engine = "postgresql" if engine_db.startswith("postgresql://") else "sqlite"
    assert result.returncode == 0, result.stderr
    assert f"engine:  {engine}" in result.stdout and f"schema:  version {SCHEMA_VERSION}" in result.stdout
    assert "events:  1 " in result.stdout


def test_a_password_in_the_url_is_never_shown(pg_cluster):
    pg_cluster.psql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'withpw') THEN "
                    "CREATE ROLE withpw LOGIN PASSWORD 'hunter2secret'; END IF; END $$")
    url = f"postgresql://withpw:hunter2secret@127.0.0.1:{pg_cluster.port}/nosuchdb"
    result = bchooks("check", "--db", url)
    assert result.returncode != 0 and "hunter2secret" not in result.stdout + result.stderr
    assert "withpw@127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    from bchooks.config import Config
    config = Config.load(env={}, db=url)
    assert "hunter2secret" not in repr(config) + config.describe()


# -- the receiver, a real process on each engine
def test_the_receiver_answers_and_stores_on_each_engine(engine_db, tmp_path):
    with open_store(engine_db):
        pass
    receiver = Receiver(engine_db, folder=tmp_path)
    try:
        url = receiver.url + "/webhook"
        body = envelope()
        assert requests.post(url, data=body, headers={"X-Webhook-Signature": "0" * 64}).status_code == 401
        assert requests.post(url, data=b"nope", headers=signed(b"nope")).status_code == 400
        assert requests.post(url, data=b"{}", headers=signed(b"{}")).status_code == 422
        assert requests.post(url, data=body, headers=signed(body)).json()["status"] == "stored"
        assert requests.post(url, data=body, headers=signed(body)).json()["status"] == "duplicate"
        health = requests.get(receiver.url + "/healthz").json()
        engine = "postgresql" if engine_db.startswith("postgresql://") else "sqlite"
        assert (health["engine"], health["schema"], health["events"]) == (engine, SCHEMA_VERSION, 1)
        acknowledged, lock = {}, threading.Lock()

        def send(worker):
            for n in range(50):
                sent = envelope(payload={"id": f"W{worker}-{n}", "pad": "x" * 500})
                reply = requests.post(url, data=sent, headers=signed(sent), timeout=10)
                assert reply.status_code == 200, reply.text
                with lock:
                    acknowledged[reply.json()["id"]] = sent
        threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        receiver.stop()
    with open_store(engine_db) as store:
        assert store.count() == 401
        assert {i: store.get(i).body for i in acknowledged} == acknowledged
        counts = store.rejection_counts()
        assert sum(counts.values()) == 3 and counts["invalid_signature"] == 1


# -- moving between engines
def test_migrate_copies_every_event_byte_for_byte_there_and_back_and_again(tmp_path, pg_url):
    source = str(tmp_path / "source.db")
    with open_store(source) as store:
        bodies = [envelope(payload={"id": f"M{i}", "note": "\u2615" * (i % 3)}) + b" " * (i % 2) for i in range(1200)]
        store.append_many([(body, parse_envelope(body)) for body in bodies])
        store.runs.enqueue([("h", ("*",))], 5.0)
        store.record_rejection("invalid_signature", path="/webhook", size=3)
        store.reconciliations.start()
        store.cursors.set("12345", "orders", "2026-11-01T00:00:00.000Z")
        store.cursors.remember_shop("12345", "Shop")
        expected = [(e.id, e.received_at, e.type, e.account_id, e.resource_id, e.body, e.body_sha256)
                    for e in store.iter_events()]
    result = bchooks("migrate", "--from", source, "--to", pg_url, "--batch", "500")
    assert result.returncode == 0, result.stderr
    assert "events: 1,200 copied, 0 already there" in result.stdout
    again = bchooks("migrate", "--from", source, "--to", pg_url)
    assert "events: 0 copied, 1,200 already there" in again.stdout and "handler_runs: 0 copied" in again.stdout
    with open_store(pg_url) as postgres:
        assert [(e.id, e.received_at, e.type, e.account_id, e.resource_id, e.body, e.body_sha256)
                for e in postgres.iter_events()] == expected
        assert postgres.runs.count("pending") == 1200 and postgres.reconciliations.last() is not None
        assert postgres.cursors.shop_names() == {"12345": "Shop"} and postgres.rejection_counts()["invalid_signature"]
        new = append(postgres, envelope(payload={"id": "after"}))
        assert new.id == 1201  # the server's ids go on after the copied ones
    back = str(tmp_path / "back.db")
    assert bchooks("migrate", "--from", pg_url, "--to", back).returncode == 0
    with open_store(back) as store:
        assert [(e.id, e.body) for e in store.iter_events()][:1200] == [(e[0], e[5]) for e in expected]
        assert store.count() == 1201


def test_an_interrupted_migrate_goes_on_where_it_stopped(tmp_path, pg_url):
    from bchooks.store.transfer import copy_store
    source = str(tmp_path / "source.db")
    with open_store(source) as store:
        bodies = [envelope(payload={"id": f"I{i}"}) for i in range(1000)]
        store.append_many([(body, parse_envelope(body)) for body in bodies])
    calls = []

    def stop_after_two(count, total):
        calls.append(count)
        if len(calls) == 3:  # (the first call reports the total)
            raise KeyboardInterrupt
    with open_store(source, create=False) as src, open_store(pg_url) as target:
        with pytest.raises(KeyboardInterrupt):
            copy_store(src, target, batch=300, progress=stop_after_two)
        assert target.count() == 600
        finished = copy_store(src, target, batch=300)
        assert finished.copied["events"] == 400 and finished.present["events"] == 600
        assert [e.body for e in target.iter_events()] == [e.body for e in src.iter_events()]


def test_migrate_refuses_a_target_holding_other_events(tmp_path, pg_url):
    source = str(tmp_path / "source.db")
    with open_store(source) as store:
        append(store, envelope(payload={"id": "from-sqlite"}))
    with open_store(pg_url) as target:
        append(target, envelope(payload={"id": "already-in-postgresql"}))
    result = bchooks("migrate", "--from", source, "--to", pg_url)
    assert result.returncode == 1 and "holds another event under id 1" in result.stderr
    assert "Traceback" not in result.stderr
    missing = bchooks("migrate", "--from", str(tmp_path / "none.db"), "--to", pg_url)
    assert missing.returncode == 2 and not (tmp_path / "none.db").exists()


def test_analysis_reads_a_postgresql_store_into_a_local_cache(tmp_path, pg_url, monkeypatch):
    from datetime import datetime, timezone

    from bchooks import analysis
    from bchooks.simulator.history import trading_history
    monkeypatch.setenv("HOME", str(tmp_path))
    sqlite_path = str(tmp_path / "same.db")
    bodies, _ = trading_history(3, 150, datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert len(bodies) > 200
    with open_store(pg_url) as postgres, open_store(sqlite_path) as sqlite:
        for store in (postgres, sqlite):
            store.append_many([(body, parse_envelope(body)) for body in bodies[:200]])
        first = analysis.frames(postgres)
        assert list((tmp_path / ".cache" / "bchooks" / "analysis").iterdir())  # the cache is on this machine
        for store in (postgres, sqlite):
            store.append_many([(body, parse_envelope(body)) for body in bodies[200:]])
        on_postgres, on_sqlite = analysis.frames(postgres), analysis.frames(sqlite)
        assert len(on_postgres.orders) >= len(first.orders)
        assert on_postgres.orders.drop(columns=["event_id"]).equals(on_sqlite.orders.drop(columns=["event_id"]))


def test_the_notebooks_run_on_a_postgresql_store(pg_url, tmp_path, monkeypatch):
    """Notebooks 2 to 4 (simulate, analyse with plots, operate) with BCHOOKS_DB set to a PostgreSQL URL."""
    import nbformat
    from nbclient import NotebookClient

    from bchooks.kit.stack import Stack
    from conftest import ROOT
    stack = Stack(tmp_path / "run", secret="notebook-test-secret", db=pg_url, receiver_port=0,
                  sandbox_port=0).start()
    try:
        for name, value in {**stack.env(), "BCHOOKS_DEMO_END": "2026-12-01T12:00:00.000Z",
                            "HOME": str(tmp_path)}.items():
            monkeypatch.setenv(name, value)
        assert stack.env()["BCHOOKS_DB"] == pg_url
        for name in ("02_simulate_events", "03_analyze_orders", "04_operate_receiver"):
            notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
            NotebookClient(notebook, timeout=300, kernel_name="python3", store_widget_state=False,
                           resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
            outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
            assert not [o for o in outputs if o["output_type"] == "error"], name
            if name == "03_analyze_orders":
                assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    finally:
        stack.stop()
    with open_store(pg_url) as store:
        assert store.count(type="order.created") >= 300  # (the demo year and the simulated events went there)


def test_a_kit_on_postgresql_keeps_the_password_out_of_ps_its_state_and_what_it_prints(pg_cluster, pg_url, tmp_path):
    import json as json_module

    from bchooks.kit.stack import Stack
    pg_cluster.psql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'withpw') THEN "
                    "CREATE ROLE withpw LOGIN PASSWORD 'hunter2secret'; END IF; END $$")
    database = pg_url.rsplit("/", 1)[1]
    pg_cluster.psql(f"ALTER DATABASE {database} OWNER TO withpw")
    url = f"postgresql://withpw:hunter2secret@127.0.0.1:{pg_cluster.port}/{database}"
    stack = Stack(tmp_path / "run", secret="kit-secret", db=url, receiver_port=0, sandbox_port=0).start()
    try:
        assert stack.env()["BCHOOKS_DB"] == url  # (the kit's own processes get it)
        state = (tmp_path / "run" / "state.json").read_text()
        assert "hunter2secret" not in state and json_module.loads(state)["db"] == url.replace(":hunter2secret", "")
        for pid in json_module.loads(state)["pids"].values():
            assert "hunter2secret" not in open(f"/proc/{pid}/cmdline").read()
        assert "hunter2secret" not in repr(stack) + stack.db
        health = requests.get(stack.receiver_url.replace("/webhook", "/healthz"), timeout=5).json()
        assert health["engine"] == "postgresql" and "hunter2secret" not in json_module.dumps(health)
    finally:
        stack.stop()


def test_a_pool_exhausted_past_the_busy_timeout_is_unavailable_then_recovers(pg_url):
    from bchooks.errors import StoreUnavailable
    with open_store(pg_url, pool_size=1, busy_timeout=0.3) as store:
        import threading as threads
        import time as clock
        held, release = threads.Event(), threads.Event()

        def hold():
            with store.transaction():  # the pool's only connection, busy for a while
                held.set()
                release.wait(10)
        holder = threads.Thread(target=hold)
        holder.start()
        held.wait(10)
        started = clock.monotonic()
        with pytest.raises(StoreUnavailable, match="no database connection within 0.3 s"):
            append(store, envelope(payload={"id": "waiting"}))
        assert 0.25 < clock.monotonic() - started < 2.0
        release.set()
        holder.join()
        assert append(store, envelope(payload={"id": "waiting"})).duplicate is False


def test_a_nul_character_in_an_id_is_stored_on_each_engine_and_migrated(engine_db, tmp_path, pg_cluster):
    """PostgreSQL's text cannot hold NUL: the derived columns get the six characters `\\u0000`, the body its bytes."""
    body = envelope(payload={"id": "A\u0000B"}, account_id="12\u00003")
    with open_store(engine_db) as store:
        stored = store.get(append(store, body).id)
        assert stored.body == body and append(store, body).duplicate is True
        expected = ("A\x00B", "12\x003") if store.engine == "sqlite" else ("A\\u0000B", "12\\u00003")
        assert (stored.resource_id, stored.account_id) == expected
    if engine_db.startswith("postgresql://"):
        return
    target = pg_cluster.create_database(f"nul{tmp_path.name[-12:].replace('-', '_').lower()}")
    result = bchooks("migrate", "--from", engine_db, "--to", target)
    assert result.returncode == 0, result.stderr
    with open_store(target) as copied:
        event = copied.get(stored.id)
        assert event.body == body and event.resource_id == "A\\u0000B"


def test_events_become_visible_in_id_order_however_many_write_at_once(pg_url):
    """An insert that draws the lower id but is slow to commit (a trigger holds it) is visible before the insert
    after it: readers keeping the last id they saw (the handlers' watermark, a tail by `after_id`) miss none."""
    import psycopg
    import time as clock
    with open_store(pg_url) as store, psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION slow_insert() RETURNS trigger AS $$ BEGIN IF NEW.resource_id = 'slow'"
                     " THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
        conn.execute("CREATE TRIGGER slow_insert BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_insert()")

        def sleeping():
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchone()[0]
        writers = [threading.Thread(target=append, args=(store, envelope(payload={"id": name})))
                   for name in ("slow", "fast")]
        writers[0].start()
        deadline = clock.monotonic() + 10
        while not sleeping() and clock.monotonic() < deadline:
            clock.sleep(0.02)
        assert sleeping()  # the slow insert has drawn its id and is not committed
        writers[1].start()
        writers[1].join(0.5)  # (the fast one, drawing the next id, waits for the slow one's commit)
        seen = [event.id for event in store.iter_events()]
        store.runs.enqueue([("tail", ["*"])], 0)
        for writer in writers:
            writer.join(10)
        seen += [event.id for event in store.iter_events(after_id=max(seen, default=0))]
        store.runs.enqueue([("tail", ["*"])], 0)
        ids = {event.resource_id: event.id for event in store.iter_events()}
        assert ids["slow"] < ids["fast"]
        assert sorted(seen) == sorted(ids.values())  # the tail saw each event once
        assert store.runs.count("pending") == 2  # and the handler got a run for each
