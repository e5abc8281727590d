"""Sending stored events on: `bchooks forward` (a selection, at once) and `bchooks listen --forward-to` (each new
event as it is committed), against a real HTTP sink on 127.0.0.1, on both engines where the store is involved."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from bchooks.cli import main
from bchooks.receiving.signing import Verifier, sign
from bchooks.store import SCHEMA_VERSION, open_store
from bchooks.wire import parse_envelope

from conftest import SECRET, envelope, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECRET = "target-secret-do-not-use"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "q-t0ken-do-not-print"


class Sink:
    """An HTTP server on a thread recording every POST (path, headers, body); `fail` maps an event id (its
    X-Bchooks-Event-Id) to the statuses of its first answers (then 200)."""

    def __init__(self, port=0):
        sink = self
        self.received = []
        self.fail = {}
        self.delay = 0.0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers.get("X-Bchooks-Event-Id")
                with sink.lock:
                    sink.received.append((self.path, dict(self.headers), body))
                    pending = sink.fail.get(event_id, [])
                    status = pending.pop(0) if pending else 200
                time.sleep(sink.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # (a listener killed while waiting for this answer)

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/in"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def ids(self):
        with self.lock:
            return [int(headers["X-Bchooks-Event-Id"]) for _, headers, _ in self.received]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    started = Sink()
    yield started
    started.stop()


def _append(store, n, *, type="order.created", start=0, signed=True, received_at=None):
    """Store `n` events (bodies unique), each with Big Cartel's signature as the receiver keeps it; their ids."""
    ids = []
    for i in range(start, start + n):
        body = envelope(type, payload={"id": f"NGRP-{i:06d}", "updated_at": "2024-05-01T12:00:00.000Z",
                                       "total": f"{i}.0"})
        ids.append(store.append(body, parse_envelope(body), signature_header=sign(body, SECRET) if signed else None,
                                received_at=received_at).id)
    return ids


def _forward(capsys, monkeypatch, tmp_path, *args, env=None):
    """`bchooks forward ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # (no kit of the repository's folder is used)
    for name in ("BCHOOKS_FORWARD_TO", "BCHOOKS_FORWARD_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    status = main(["forward", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_forward_by_ids_posts_the_stored_bytes_with_their_original_signature(engine_db, sink, tmp_path, capsys,
                                                                             monkeypatch):
    with open_store(engine_db) as store:
        ids = _append(store, 4)
        polled = _append(store, 1, start=10, signed=False)[0]
        stored = {i: store.get(i) for i in ids + [polled]}
    status, out, err = _forward(capsys, monkeypatch, tmp_path, str(ids[2]), str(ids[0]), str(polled), "--to",
                                sink.url, "--db", engine_db)
    assert status == 0, err
    assert f"{sink.url}: sent 3, 2xx 3, failures: none; 0 retries" in out
    assert sorted(sink.ids()) == sorted([ids[2], ids[0], polled])
    verifier = Verifier(SECRET)
    for path, headers, body in sink.received:
        event = stored[int(headers["X-Bchooks-Event-Id"])]
        assert path == "/hooks/in" and body == bytes(event.body) and headers["X-Bchooks-Event-Type"] == event.type
        if event.id == polled:
            assert "X-Webhook-Signature" not in headers  # (an event the poller stored came unsigned)
        else:
            verifier.verify_request(body, headers)


def test_forward_by_type_and_since_re_signs_for_the_target_with_big_cartels_header(engine_db, sink, tmp_path,
                                                                                  capsys, monkeypatch):
    with open_store(engine_db) as store:
        _append(store, 2, received_at="2026-01-01T00:00:00.000Z")
        wanted = _append(store, 3, start=2, received_at="2026-02-01T00:00:00.000Z")
        _append(store, 2, type="product.updated", start=5, received_at="2026-02-01T00:00:00.000Z")
        bodies = {i: bytes(store.get(i).body) for i in wanted}
    status, out, err = _forward(capsys, monkeypatch, tmp_path, "--type", "order.created", "--since", "2026-01-15",
                                "--sign", "bigcartel", "--db", engine_db, "--concurrency", "2",
                                env={"BCHOOKS_FORWARD_TO": sink.url, "BCHOOKS_FORWARD_SECRET": TARGET_SECRET})
    assert status == 0, err
    assert "sent 3, 2xx 3" in out and TARGET_SECRET not in out + err
    assert sorted(sink.ids()) == wanted
    for _, headers, body in sink.received:
        assert body == bodies[int(headers["X-Bchooks-Event-Id"])]
        Verifier(TARGET_SECRET).verify_request(body, headers)
        with pytest.raises(Exception):
            Verifier(SECRET).verify_request(body, headers)  # (re-signed: the receiver's secret no longer verifies)


def test_forward_signed_with_standard_webhooks_verifies_with_the_library(tmp_path, sink, capsys, monkeypatch):
    db = str(tmp_path / "events.db")
    with open_store(db) as store:
        ids = _append(store, 2)
        events = [store.get(i) for i in ids]
    target = sink.url.replace("http://", f"http://bob:{TOKEN}@") + f"?key={TOKEN}"
    status, out, err = _forward(capsys, monkeypatch, tmp_path, *map(str, ids), "--sign", "standard", "--db", db,
                                env={"BCHOOKS_FORWARD_TO": target, "BCHOOKS_FORWARD_SECRET": STANDARD_SECRET})
    assert status == 0, err
    assert TOKEN not in out + err and STANDARD_SECRET not in out + err and "bob" not in out + err
    assert out.startswith(sink.url + ": sent 2, 2xx 2")
    webhook = Webhook(STANDARD_SECRET)
    for event in events:
        _, headers, body = next(r for r in sink.received if r[1]["X-Bchooks-Event-Id"] == str(event.id))
        assert body == bytes(event.body)
        assert webhook.verify(body, headers) == json.loads(event.body)
        assert headers["webhook-id"] == f"evt_{event.body_sha256}"
        with pytest.raises(Exception):
            Webhook("whsec_" + "QUJD" * 8).verify(body, headers)


def test_forward_retries_5xx_and_no_answer_but_never_4xx_and_exits_1_when_some_failed(tmp_path, sink, capsys,
                                                                                       monkeypatch):
    db = str(tmp_path / "events.db")
    with open_store(db) as store:
        recovers, refused, broken, fine = _append(store, 4)
    sink.fail = {str(recovers): [500, 502], str(refused): [400, 400], str(broken): [503] * 10}
    status, out, err = _forward(capsys, monkeypatch, tmp_path, *map(str, (recovers, refused, broken, fine)), "--to",
                                sink.url, "--db", db, "--retries", "3", "--backoff", "0.01")
    attempts = {i: sink.ids().count(i) for i in (recovers, refused, broken, fine)}
    assert attempts == {recovers: 3, refused: 1, broken: 4, fine: 1}
    assert status == 1
    assert f"sent 4, 2xx 2, failures: 1× 400, 1× 503 (events {refused}, {broken}); 5 retries" in out
    assert f"event {refused}: answered 400" in err and f"event {broken}: answered 503" in err
    down = f"http://127.0.0.1:{free_port()}/hooks"
    status, out, err = _forward(capsys, monkeypatch, tmp_path, str(fine), "--to", down, "--db", db, "--retries",
                                "1", "--backoff", "0.01")
    assert status == 1 and "failures: 1× connection failed" in out and "after 2 attempts" in err


@pytest.mark.parametrize("args, env, said", [
    (["7", "99"], {}, "no event 7, 99 in the store"),
    (["1", "--type", "order.created"], {}, "not both"),
    ([], {}, "say what to forward"),
    (["--since", "yesterday"], {}, "--since must be an ISO-8601 time"),
    (["--type", "order.exploded"], {}, "unknown event type 'order.exploded'"),
    (["1"], {"BCHOOKS_FORWARD_TO": f"ftp://127.0.0.1/x?key={TOKEN}"}, "BCHOOKS_FORWARD_TO must be an absolute"),
    (["1", "--to", f"http://[oops/{TOKEN}"], {}, "--to must be an absolute http(s) URL"),
    (["1", "--sign", "bigcartel"], {}, "--sign bigcartel needs the target's secret in BCHOOKS_FORWARD_SECRET"),
    (["1", "--sign", "standard"], {"BCHOOKS_FORWARD_SECRET": f"not-base64-{TOKEN}!"}, "not a Standard Webhooks"),
    (["1", "--concurrency", "0"], {}, "--concurrency must be from 1 to 64"),
])
def test_bad_input_is_one_line_and_exit_2_and_nothing_is_sent(tmp_path, sink, capsys, monkeypatch, args, env,
                                                              said):
    db = str(tmp_path / "events.db")
    with open_store(db) as store:
        _append(store, 1)
    env = {"BCHOOKS_FORWARD_TO": sink.url, **env}
    status, out, err = _forward(capsys, monkeypatch, tmp_path, *args, "--db", db, env=env)
    assert (status, out) == (2, "") and said in err and len(err.strip().splitlines()) == 1, err
    assert TOKEN not in err and sink.received == []


def test_forward_never_creates_a_store(tmp_path, sink, capsys, monkeypatch):
    missing = tmp_path / "nowhere.db"
    status, out, err = _forward(capsys, monkeypatch, tmp_path, "1", "--to", sink.url, "--db", str(missing))
    assert status == 2 and "no event store" in err and not missing.exists()


def test_forwarding_positions_on_each_engine(engine_db):
    with open_store(engine_db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        positions = store.forwarding
        assert positions.position("http://a/x") is None
        assert positions.start("http://a/x", 5) == 5
        assert positions.start("http://a/x", 9) == 5  # (a known target goes on where it was)
        positions.advance("http://a/x", 6)
        positions.advance("http://a/x", 7)
        positions.reset("http://b/y", 0)
        rows = positions.positions()
        assert [(r["target"], r["last_id"], r["forwarded"]) for r in rows] == [("http://a/x", 7, 2),
                                                                              ("http://b/y", 0, 0)]
        positions.reset("http://a/x", 2)
        assert positions.position("http://a/x") == 2


class Listen:
    """A real `bchooks listen --forward-to` process; its stderr kept in a file."""

    def __init__(self, folder, db, url, *args, env=None):
        self.log_path = Path(folder) / f"listen-{time.monotonic_ns()}.log"
        self.out_path = self.log_path.with_suffix(".out")
        with open(self.log_path, "wb") as log, open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bchooks", "listen", "--forward-to", url, "--db", db, "--poll", "0.05",
                 "--backoff", "0.05", "--max-backoff", "0.2", *args],
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, stdout=out, stderr=log, cwd=folder)

    def said(self):
        return self.log_path.read_text(errors="replace") + self.out_path.read_text(errors="replace")

    def wait_for(self, text, deadline=20.0):
        def seen():
            if self.process.poll() is not None:
                raise RuntimeError(f"listen exited with {self.process.returncode}: {self.said()}")
            return text in self.said()
        wait_until(seen, deadline)

    def stop(self, sig=signal.SIGTERM, deadline=10.0):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise


def _in_order_at_least_once(received, expected):
    """Every expected id arrived, first arrivals in id order, and every arrival is a repeat of one already
    delivered or the next one (none skipped: at least once, in order)."""
    assert set(received) == set(expected) and received, received
    firsts = list(dict.fromkeys(received))
    assert firsts == sorted(expected), received
    position = {event_id: n for n, event_id in enumerate(sorted(expected))}
    furthest = -1
    for event_id in received:
        assert position[event_id] <= furthest + 1, received  # (never one ahead of what came before)
        furthest = max(furthest, position[event_id])


def test_listen_forwards_every_new_event_in_order_and_survives_kill_9(engine_db, tmp_path):
    with open_store(engine_db) as store:
        old = _append(store, 3)  # (stored before the first listener: not forwarded, as `stripe listen` does)
        port = free_port()
        url = f"http://127.0.0.1:{port}/hooks/in?key={TOKEN}"
        listen = Listen(tmp_path, engine_db, url)
        sink = None
        try:
            listen.wait_for(f"forwarding events after {old[-1]}")
            early = _append(store, 3, start=100)  # the target is down meanwhile: waited for, never skipped
            listen.wait_for("connection failed for event")
            sink = Sink(port)
            sink.fail = {str(early[1]): [500, 503]}
            sink.delay = 0.02  # (a slow app: the kill below comes mid-stream)
            appended = early + _append(store, 24, start=200)
            wait_until(lambda: len(sink.ids()) >= 12, 30)
            listen.stop(signal.SIGKILL)
            assert not set(appended) <= set(sink.ids())  # (killed with events still to send)
            appended += _append(store, 6, start=300)
            listen = Listen(tmp_path, engine_db, url)
            appended += _append(store, 6, start=400)
            wait_until(lambda: set(appended) <= set(sink.ids()), 30)
            _in_order_at_least_once(sink.ids(), appended)
            assert not set(old) & set(sink.ids())
            assert sink.ids().count(early[1]) >= 3  # (500, 503, then 200)
            for _, headers, body in sink.received:
                assert body == bytes(store.get(int(headers["X-Bchooks-Event-Id"])).body)
                Verifier(SECRET).verify_request(body, headers)  # (the original signature, as stored)
            wait_until(lambda: store.forwarding.position(f"http://127.0.0.1:{port}/hooks/in") == appended[-1])
            assert all(TOKEN not in row["target"] for row in store.forwarding.positions())  # (never stored)
            assert listen.stop() == 0  # (SIGTERM: stops at once, exit 0)
            said = listen.said()
            assert TOKEN not in said and f"{appended[-1]}  order.created  -> 200" in said
        finally:
            listen.stop(signal.SIGKILL)
            if sink is not None:
                sink.stop()


def test_listen_stops_on_sigterm_while_the_target_hangs_and_sends_that_event_again(tmp_path, sink):
    db = str(tmp_path / "events.db")
    with open_store(db) as store:
        listen = Listen(tmp_path, db, sink.url, "--timeout", "60", "--after", "0")
        try:
            listen.wait_for("forwarding events after 0")
            sink.delay = 30  # (the app never answers while the listener runs)
            first = _append(store, 1)[0]
            wait_until(lambda: sink.ids() == [first])
            assert listen.stop(deadline=5) == 0  # (not after the 60 s the answer was given)
            assert store.forwarding.position(sink.url) == 0  # (not delivered: sent again by the next listener)
            sink.delay = 0
            listen = Listen(tmp_path, db, sink.url)
            wait_until(lambda: store.forwarding.position(sink.url) == first)
            assert sink.ids() == [first, first]
        finally:
            listen.stop(signal.SIGKILL)
