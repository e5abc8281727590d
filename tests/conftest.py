import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bchooks import Config, EventStore
from bchooks.receiving.receiver import create_app
from bchooks.receiving.signing import sign
from bchooks.kit.stack import end_child

SECRET = "test-secret-do-not-use"
ROOT = Path(__file__).resolve().parent.parent


def envelope(type="order.created", account_id="12345", payload=None, **extra):
    payload = {"id": "NGRP-000001", "updated_at": "2024-05-01T12:00:00.000Z", "total": "45.0"} \
        if payload is None else payload
    return json.dumps({"account_id": account_id, "type": type, "payload": payload, **extra},
                      separators=(",", ":")).encode()


def signed(body, secret=SECRET, header="X-Webhook-Signature"):
    return {header: sign(body, secret), "Content-Type": "application/json"}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "events.db"


@pytest.fixture
def store(db_path):
    with EventStore(db_path) as opened:
        yield opened


@pytest.fixture
def config(db_path):
    return Config.load(env={}, secrets=SECRET, db=str(db_path))


@pytest.fixture
def app(config, store):
    return create_app(config, store)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, deadline=20.0, process=None):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline} s")


class Receiver:
    """A real `bchooks serve` process on a random loopback port."""

    def __init__(self, db, *, secret=SECRET, workers=2, extra_env=None, args=(), port=None, new_session=False,
                 folder=None):
        """`db`: a SQLite path (the log beside it) or a PostgreSQL URL (the log in `folder`)."""
        url = str(db).startswith("postgresql://")
        self.db = str(db) if url else Path(db)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "BCHOOKS_SECRET": secret, **(extra_env or {})}
        self.folder = Path(folder) if folder else Path(db).parent
        self.log_path = self.folder / f"receiver-{self.port}.log" if url else self.db.with_suffix(".log")
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bchooks", "serve", "--port", str(self.port), "--db", str(self.db),
             "--workers", str(workers), *args],
            env=env, stdout=self.log, stderr=self.log, cwd=self.folder, start_new_session=new_session)
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self, deadline=20.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.process.returncode}: {self.read_log()[-2000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("receiver did not start")

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        end_child(self.process, 35, sig)
        if not self.log.closed:
            self.log.close()
        return self.process.returncode


class SandboxProcess:
    """A real `bchooks sandbox` process on a random loopback port."""

    def __init__(self, folder, *args, secret=SECRET):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(folder) / f"sandbox-{self.port}.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bchooks", "sandbox", "--port", str(self.port), *args],
            env={**os.environ, "BCHOOKS_SECRET": secret}, stdout=self.log, stderr=self.log, cwd=folder)
        try:
            wait_http(self.url + "/sandbox/healthz", process=self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        end_child(self.process, 20)
        self.log.close()
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """One real PostgreSQL server for the session (Debian's binaries, `initdb` into a temporary folder, a random
    loopback port), stopped by its pid at the end. Each test gets a database of its own (`pg_url`)."""
    yield from running_cluster(tmp_path_factory.mktemp("postgresql"))


def running_cluster(folder):
    """A PostgreSQL cluster started in `folder`, for a fixture to yield; stopped when the fixture ends."""
    sys.path.insert(0, str(ROOT / "tools"))
    from pgcluster import Cluster
    cluster = Cluster(folder).start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")


_databases = iter(range(1, 10 ** 6))


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of a new, empty database of the session's PostgreSQL server (dropped after the test)."""
    name = f"test{next(_databases)}"
    yield pg_cluster.create_database(name)
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_db(request, tmp_path):
    """The `db` setting of an empty store of each engine: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "events.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def receiver(tmp_path):
    started = Receiver(tmp_path / "events.db")
    yield started
    started.stop()


@pytest.fixture
def sandbox_server():
    from bchooks.simulator.sandbox import Sandbox, SandboxServer
    server = SandboxServer(Sandbox(SECRET, schedule=(0.2, 0.5, 1.0)))
    yield server
    server.stop()


@pytest.fixture
def client(sandbox_server):
    from bchooks.shops.client import BigCartelClient
    with BigCartelClient(sandbox_server.url, "sandbox-token", receiver_url="http://127.0.0.1:9/webhook",
                         backoff=0.01) as opened:
        yield opened


def wait_until(predicate, deadline=20.0, interval=0.05):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {deadline} s")


def start_trickle(port, body, sent=5):
    """A socket that has sent a signed POST's headers and the first `sent` bytes of its body, and then stalls."""
    trickle = socket.create_connection(("127.0.0.1", port))
    trickle.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"X-Webhook-Signature: {sign(body, SECRET)}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body[:sent])
    return trickle


def _app_on_thread(store):
    """The receiver app on a thread over `store`: (webhook URL, a function that stops it)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass
    httpd = make_server("127.0.0.1", 0, create_app(Config.load(env={}, secrets=SECRET), store), handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
    return f"http://127.0.0.1:{httpd.server_port}/webhook", stop


@pytest.fixture
def local_receiver(tmp_path):
    """The receiver app on a thread: (webhook URL, its store)."""
    store = EventStore(tmp_path / "events.db")
    url, stop = _app_on_thread(store)
    yield url, store
    stop()
    store.close()


@pytest.fixture
def engine_receiver(engine_db):
    """The same on each engine's store (SQLite, then PostgreSQL)."""
    from bchooks.store import open_store
    store = open_store(engine_db)
    url, stop = _app_on_thread(store)
    yield url, store
    stop()
    store.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's call report on the item, so fixtures can tell a failure (screenshots on failure)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Each test starts with an empty registry of secrets (a word one test used as a password, e.g. "wrong", would
    be redacted from another test's messages: the registry is the process's)."""
    from bchooks.secrecy import forget_all
    forget_all()
    yield
