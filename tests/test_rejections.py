"""Rejected requests are counted, with a bounded sample: a flood of unsigned posts never fills the store nor stops
verified events."""

import threading

from bchooks import Config, EventStore
from bchooks.receiving.committer import GroupCommitter
from bchooks.receiving.receiver import create_app
from bchooks.store import rejections
from conftest import SECRET, envelope, signed
from wsgi import call


def test_a_lone_rejection_is_visible_at_once(app, store, db_path):
    import sqlite3
    call(app, body=b"{}", headers={"X-Webhook-Signature": "0" * 64})
    rows = sqlite3.connect(db_path).execute("SELECT reason FROM rejections").fetchall()  # another connection
    assert rows == [("invalid_signature",)]


def test_a_flood_of_unsigned_posts_is_counted_not_stored_row_by_row(db_path):
    config = Config.load(env={}, secrets=SECRET, db=str(db_path), max_db_mb=1)
    store = EventStore.from_config(config)
    app = create_app(config, store)
    body = envelope(payload={"id": "x", "pad": "y" * 500})
    for _ in range(15000):
        assert call(app, body=body).status == 401  # (no signature at all)
    signed_body = envelope(payload={"id": "signed"})
    assert call(app, body=signed_body, headers=signed(signed_body)).status == 200  # the capped store has room
    assert store.rejection_counts() == {"missing_signature": 15000}
    sample = store.rejections(5000)
    assert 0 < len(sample) <= rejections.SAMPLE and {row["reason"] for row in sample} == {"missing_signature"}
    assert sample[0]["size"] == len(body)
    store.close()


def test_verified_events_are_stored_while_a_flood_goes_on(db_path):
    config = Config.load(env={}, secrets=SECRET, db=str(db_path))
    store = EventStore.from_config(config, auto_checkpoint=False)
    app = create_app(config, store, appender=GroupCommitter(store))
    stop = threading.Event()
    sent = []

    def flood():
        while not stop.is_set():
            call(app, body=b'{"type":"x"}', headers={"X-Webhook-Signature": "1" * 64})
            sent.append(1)
    flooders = [threading.Thread(target=flood) for _ in range(4)]
    for thread in flooders:
        thread.start()
    try:
        statuses = []
        for n in range(200):
            body = envelope(payload={"id": f"NGRP-{n}"})
            statuses.append(call(app, body=body, headers=signed(body)).status)
    finally:
        stop.set()
        for thread in flooders:
            thread.join()
    assert statuses == [200] * 200 and store.count() == 200
    assert store.rejection_counts()["invalid_signature"] == len(sent) > 0
    assert len(store.rejections(5000)) <= rejections.SAMPLE
    store.close()


def test_counts_wait_in_memory_while_the_database_cannot_be_written(db_path):
    import sqlite3
    store = EventStore(db_path, busy_timeout=0.05)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for _ in range(3):
        store.record_rejection("invalid_signature", size=1)  # never raises, never waits long
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.rejection_counts() == {"invalid_signature": 3}
    store.close()


def test_a_receiver_stopped_right_after_rejections_keeps_every_count(tmp_path):
    """Rejections counted in a worker's memory in its last second are written when the receiver stops."""
    import requests
    from bchooks.store import open_store
    from conftest import Receiver
    receiver = Receiver(tmp_path / "events.db", folder=tmp_path)
    try:
        url = receiver.url + "/webhook"
        assert requests.post(url, data=envelope(), headers={"X-Webhook-Signature": "0" * 64}).status_code == 401
        assert requests.post(url, data=b"nope", headers=signed(b"nope")).status_code == 400
        assert requests.post(url, data=b"{}", headers=signed(b"{}")).status_code == 422
    finally:
        receiver.stop()
    with open_store(tmp_path / "events.db", create=False) as store:
        assert store.rejection_counts() == {"invalid_signature": 1, "invalid_json": 1, "invalid_envelope": 1}
