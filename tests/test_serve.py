"""Integration: the real `bchooks serve` process on a random loopback port."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests

from bchooks.receiving.signing import sign
from conftest import SECRET, Receiver, envelope, signed, start_trickle, wait_until

pytestmark = pytest.mark.integration


def rows(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, type, account_id, resource_id, body, remote_addr FROM events ORDER BY id"
                            ).fetchall()
    finally:
        conn.close()


def test_posts_are_answered_and_stored_byte_identical(receiver):
    sent = {}
    for i in range(20):
        body = envelope(payload={"id": f"NGRP-{i:06d}", "note": "x" * i}) + b"\n" * (i % 2)
        reply = requests.post(receiver.url + "/webhook", data=body, headers=signed(body), timeout=5)
        assert reply.status_code == 200 and reply.json()["status"] == "stored"
        sent[reply.json()["id"]] = body
    stored = {row[0]: row[4] for row in rows(receiver.db)}
    assert stored == sent
    assert {row[5] for row in rows(receiver.db)} == {"127.0.0.1"}


def test_http_answers_over_a_socket(receiver):
    body = envelope()
    url = receiver.url + "/webhook"
    assert requests.post(url, data=body, headers={"X-Webhook-Signature": "0" * 64}).status_code == 401
    assert requests.post(url, data=body).json()["error"] == "missing_signature"
    assert requests.post(url, data=b"nope", headers=signed(b"nope")).status_code == 400
    assert requests.post(url, data=b"{}", headers=signed(b"{}")).status_code == 422
    assert requests.get(url).status_code == 405
    assert requests.get(receiver.url + "/missing").json()["error"] == "not_found"
    assert requests.post(url, data=body, headers=signed(body)).json()["status"] == "stored"
    assert requests.post(url, data=body, headers=signed(body)).json()["status"] == "duplicate"
    assert requests.get(receiver.url + "/healthz").json()["events"] == 1
    assert len(rows(receiver.db)) == 1


def test_declared_huge_body_gets_413_without_sending_it(receiver):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    conn.putrequest("POST", "/webhook")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.putheader("X-Webhook-Signature", "0" * 64)
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413
    conn.close()


def test_log_has_one_line_per_request_and_no_secret_or_body(receiver):
    body = envelope(payload={"id": "NGRP-LOGGED", "customer_email": "someone@example.com"})
    requests.post(receiver.url + "/webhook", data=body, headers=signed(body))
    requests.post(receiver.url + "/webhook", data=body, headers={"X-Webhook-Signature": "f" * 64})
    receiver.stop()
    log = receiver.read_log()
    lines = [line for line in log.splitlines() if "POST /webhook" in line]
    assert len(lines) == 2
    assert "200 type=order.created id=1" in lines[0] and "ms" in lines[0]
    assert "401" in lines[1] and "reason=invalid_signature" in lines[1]
    assert SECRET not in log and "someone@example.com" not in log and sign(body, SECRET) not in log


@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
                         ids=["sigterm", "sigint", "ctrl-c-to-the-process-group"])
def test_stops_cleanly_finishing_requests_in_flight(tmp_path, sig, group):
    # the answered request's connection stays open below: granian may wait for it until the stop timeout
    receiver = Receiver(tmp_path / "events.db", workers=1, new_session=group, extra_env={"BCHOOKS_STOP_TIMEOUT": "5"})
    import http.client
    body = envelope()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    conn.putrequest("POST", "/webhook")
    for name, value in {**signed(body), "Content-Length": str(len(body))}.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body[:10])  # the request is in flight when the signal arrives
    stopper = (threading.Timer(0.5, os.killpg, args=(receiver.process.pid, sig)) if group
               else threading.Timer(0.5, receiver.process.send_signal, args=(sig,)))
    stopper.start()
    stopper.join()
    conn.send(body[10:])
    reply = conn.getresponse()
    assert reply.status == 200
    assert receiver.process.wait(timeout=30) == 0
    receiver.stop()
    assert len(rows(receiver.db)) == 1


def test_serve_without_secret_exits_2_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bchooks", "serve", "--port", "0"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "BCHOOKS_SECRET" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bchooks.db").exists()


def test_serve_on_a_bad_database_exits_1_with_one_line(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BCHOOKS_SECRET": SECRET}
    result = subprocess.run([sys.executable, "-m", "bchooks", "serve", "--db", str(bad)], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_serve_on_a_port_in_use_exits_1_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BCHOOKS_SECRET": SECRET}
        result = subprocess.run([sys.executable, "-m", "bchooks", "serve", "--db", str(tmp_path / "e.db"),
                                 "--port", str(taken.getsockname()[1])], env=env, capture_output=True, text=True,
                                timeout=30)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "port is in use" in result.stderr and "Traceback" not in result.stderr


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def test_a_killed_worker_is_replaced_and_nothing_else_stops(receiver):
    first = envelope()
    assert requests.post(receiver.url + "/webhook", data=first, headers=signed(first)).status_code == 200
    workers = children(receiver.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    resets = 0
    for n in range(20):  # the other worker answers meanwhile; the replacement joins within seconds
        body = envelope(payload={"id": f"after-{n}"})
        for _ in range(3):  # a connection caught in the dying worker is reset: the sender retries it
            try:
                assert requests.post(receiver.url + "/webhook", data=body, headers=signed(body),
                                     timeout=10).status_code == 200
                break
            except requests.ConnectionError:
                resets += 1
                time.sleep(0.2)
        else:
            raise AssertionError(f"post {n} was never answered")
    assert resets <= 2
    wait_until(lambda: len(children(receiver.process.pid)) == 2)
    replaced = children(receiver.process.pid)
    assert len(replaced) == 2 and workers[0] not in replaced and workers[1] in replaced
    assert receiver.process.poll() is None and len(rows(receiver.db)) == 21


def test_a_workers_environment_no_longer_holds_the_secret(monkeypatch, tmp_path):
    from bchooks import server
    from bchooks.config import Config

    monkeypatch.setenv("BCHOOKS_SECRET", SECRET)
    monkeypatch.setenv("BCHOOKS_TOKEN", "a-token")  # all three restored after the test
    monkeypatch.setenv("BCHOOKS_CHAT_WEBHOOK_URL", "https://chat.example/hook/secret-part")
    monkeypatch.setattr(server, "_SERVING", (Config.load(env={}, secrets=SECRET, db=str(tmp_path / "e.db")), True))
    app = server.worker_app()  # granian copies os.environ into every request's WSGI environ
    assert "BCHOOKS_SECRET" not in os.environ and "BCHOOKS_TOKEN" not in os.environ
    assert "BCHOOKS_CHAT_WEBHOOK_URL" not in os.environ
    app.store.close()


def test_a_trickling_sender_delays_a_stop_only_up_to_the_stop_timeout(tmp_path):
    receiver = Receiver(tmp_path / "events.db", extra_env={"BCHOOKS_STOP_TIMEOUT": "2"})
    trickle = start_trickle(receiver.port, envelope())
    try:
        time.sleep(0.5)
        started = time.monotonic()
        receiver.process.send_signal(signal.SIGTERM)
        receiver.process.wait(timeout=20)
        assert time.monotonic() - started < 15
        assert rows(receiver.db) == []  # the unfinished body was never acknowledged nor stored
    finally:
        trickle.close()
        receiver.stop()


def test_chunked_posts_are_read_whole_and_held_to_the_limit(tmp_path):
    receiver = Receiver(tmp_path / "events.db", extra_env={"BCHOOKS_MAX_BODY": "2000"})

    def pieces(data):  # no Content-Length: requests sends Transfer-Encoding: chunked
        for start in range(0, len(data), 7):
            yield data[start:start + 7]

    try:
        body, big = envelope(), envelope(payload={"note": "y" * 5000})
        assert requests.post(receiver.url + "/webhook", data=pieces(body), headers=signed(body)).status_code == 200
        reply = requests.post(receiver.url + "/webhook", data=pieces(big), headers=signed(big))
        assert reply.status_code == 413 and reply.json()["error"] == "body_too_large"
    finally:
        receiver.stop()
    assert [row[4] for row in rows(receiver.db)] == [body]
