"""Secrets and terminal text, tried from outside: real `python -m bchooks` processes given odd database URLs,
passwords as flags, and an OAuth token endpoint that echoes what it was sent. Every error is one line on stderr,
never a traceback, never a password or client secret, never a control character from the network."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bchooks import secrecy
from bchooks.store import open_store
from bchooks.wire import parse_envelope
from conftest import envelope, free_port

PASSWORD = "Hunter2-Pw"  # a part of every password below: never in any output
CLIENT_SECRET = "client-secret-XYZ-123"


@pytest.fixture(autouse=True)
def fresh_registry():
    yield
    secrecy.forget_all()


def bchooks(*args, cwd, env=None, timeout=60):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**clean, "HOME": str(cwd), **(env or {})})


def one_clean_line(result, *secrets):
    """The process failed with one line on stderr, no traceback, none of the secrets (nor their pieces)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.stderr + result.stdout, result.stderr
    return lines[0]


# -- database URLs
URLS = [f"postgresql://bchooks:{PASSWORD}%zz@127.0.0.1:{{port}}/db",  # a literal '%' libpq quotes back
        f"postgresql://bchooks:{PASSWORD} with spaces@127.0.0.1:{{port}}/db",  # an unencoded space: the same
        f"postgresql://bchooks:{PASSWORD}@[::1/db"]  # an unclosed bracket: urlsplit raises


@pytest.mark.parametrize("command", [("check",), ("events",), ("shops",), ("poll", "--once"), ("serve",),
                                     ("worker", "--once")])
@pytest.mark.parametrize("url", URLS, ids=["percent", "space", "bracket"])
def test_a_database_password_libpq_cannot_parse_is_never_printed(tmp_path, command, url):
    env = {"BCHOOKS_DB": url.format(port=free_port()), "BCHOOKS_SECRET": "whsec-test-secret",
           "BCHOOKS_TOKEN": "token-abcdef", "BCHOOKS_ACCOUNT_ID": "1234567", "BCHOOKS_API_URL": "http://127.0.0.1:9",
           "BCHOOKS_JSONL_PATH": str(tmp_path / "out.jsonl"), "BCHOOKS_SHOPS": str(tmp_path / "shops.json")}
    result = bchooks(*command, cwd=tmp_path, env=env)
    line = one_clean_line(result, PASSWORD, "with spaces", "%zz")
    assert result.returncode == 2 and "BCHOOKS_DB" in line


def test_a_password_given_to_db_as_a_flag_is_warned_about_and_never_printed(tmp_path):
    result = bchooks("check", "--db", f"postgresql://bchooks:{PASSWORD}@127.0.0.1:{free_port()}/db", cwd=tmp_path)
    assert result.returncode == 1 and PASSWORD not in result.stderr and "Traceback" not in result.stderr
    assert "shows in ps" in result.stderr and "BCHOOKS_DB" in result.stderr


@pytest.mark.parametrize("target", [f"mysql://user:{PASSWORD}@db.example.com/shop",
                                    f"postgresq://user:{PASSWORD}@db.example.com/shop",  # a typo'd scheme
                                    f"postgresql:/user:{PASSWORD}@db.example.com/shop"])
def test_migrate_refuses_a_url_of_another_scheme_in_one_line_without_its_password(tmp_path, target):
    source = tmp_path / "source.db"
    with open_store(str(source)) as store:
        body = envelope(payload={"id": "kept"})
        store.append(body, parse_envelope(body))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = bchooks("migrate", "--from", str(source), "--to", target, cwd=tmp_path)
    line = one_clean_line(result, PASSWORD)
    assert result.returncode == 2 and "--to must be the path of a SQLite file or a postgresql:// URL" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing opened as a SQLite path


def test_migrate_takes_both_stores_from_the_environment(tmp_path, pg_url):
    """A URL with a password never has to be a flag (visible in ps): BCHOOKS_DB is the source, BCHOOKS_MIGRATE_TO
    the target."""
    source = tmp_path / "source.db"
    with open_store(str(source)) as store:
        for n in range(3):
            body = envelope(payload={"id": f"E{n}"})
            store.append(body, parse_envelope(body))
    target = pg_url.replace("postgresql://bchooks@", f"postgresql://bchooks:{PASSWORD}@")  # (the cluster trusts)
    result = bchooks("migrate", cwd=tmp_path, env={"BCHOOKS_DB": str(source), "BCHOOKS_MIGRATE_TO": target})
    assert result.returncode == 0, result.stderr
    assert "events: 3 copied, 0 already there" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    with open_store(pg_url, create=False) as copied:
        assert copied.count() == 3


@pytest.mark.parametrize("args", [("connect", "--password", PASSWORD), ("connect", f"--password={PASSWORD}"),
                                  ("events", "--limit", PASSWORD), ("poll", f"--once={PASSWORD}"),
                                  ("sandbox", "--format", PASSWORD), ("poll", f"--a={PASSWORD}"),
                                  ("connect", "--subdomain", "shop", PASSWORD)])
def test_a_value_given_on_the_command_line_is_never_repeated_in_a_usage_error(tmp_path, args):
    result = bchooks(*args, cwd=tmp_path)
    line = one_clean_line(result, PASSWORD)
    assert result.returncode == 2 and "see --help" in line


def test_every_known_secret_is_redacted_from_log_lines_whatever_logged_them():
    import io
    import logging
    import bchooks.store.postgres  # noqa: F401 (its filters on the database libraries' loggers)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        secrecy.redact_log_handlers()
        secrecy.remember(f"postgresql://u:{PASSWORD}%zz@host/db", "shop-password-1")
        logging.getLogger("bchooks.receiver").error("not stored: invalid percent-encoded token: %r",
                                                    f"{PASSWORD}%zz")
        logging.getLogger("somelibrary").warning("login with shop-password-1 failed")
        logging.getLogger("psycopg.pool").warning("error connecting in 'bchooks': connection failed\nIs it up?")
        logging.getLogger("psycopg").warning("error ignored terminating <Pipeline>: server closed the connection")
        logging.getLogger("psycopg.pool").error("pool broken for %s\nsecond line", f"{PASSWORD}%zz")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert PASSWORD not in text and "shop-password-1" not in text and text.count("[redacted]") == 3
    assert "error connecting" not in text and "error ignored" not in text  # folded into the kit's own lines
    assert "pool broken for [redacted] second line" in text  # an error is kept, on one line


def test_a_panel_never_shows_a_known_secret():
    from bchooks.errors import StoreError
    from bchooks.widgets import sentence
    secrecy.remember("shop-password-1")
    shown = sentence(StoreError("the server said: password shop-password-1 is wrong\n\x1b[2Jforged"))
    assert "shop-password-1" not in shown and "\n" not in shown and "\x1b" not in shown
    assert sentence(KeyError("shop-password-1")).count("[redacted]") == 1


# -- OAuth: text from the network
class FakeTokenEndpoint:
    """An authorization server's token endpoint (or an API) on 127.0.0.1 answering every POST and GET with `status`
    and `document`."""

    def __init__(self, status, document):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps(owner.document).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass
        self.status, self.document = status, document
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def connect_app_process(tmp_path, api_url, callback_query):
    """`bchooks connect --app --no-browser` as a real process; the browser's redirect comes back with
    `callback_query` (plus the login's state when it holds `state=None`). Its stdout, stderr and exit status."""
    env = {"BCHOOKS_API_URL": api_url, "BCHOOKS_AUTHORIZE_URL": f"{api_url}/oauth/authorize",
           "BCHOOKS_CLIENT_ID": "app-1", "BCHOOKS_SECRET": CLIENT_SECRET, "BCHOOKS_SHOPS": str(tmp_path / "s.json")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}
    process = subprocess.Popen([sys.executable, "-m", "bchooks", "connect", "--app", "--no-browser", "--wait", "30"],
                               cwd=tmp_path, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        first = [process.stderr.readline(), process.stderr.readline()]
        query = parse_qs(urlsplit(first[1].strip()).query)
        params = {k: (query["state"][0] if k == "state" and v is None else v) for k, v in callback_query.items()}
        requests.get(query["redirect_uri"][0], params=params, timeout=10)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return out, "".join(first) + err, process.returncode


def test_a_token_endpoint_echoing_the_client_secret_prints_one_line_without_it(tmp_path):
    endpoint = FakeTokenEndpoint(401, {"error": "invalid_client", "error_description":
                                       f"client_secret {CLIENT_SECRET} is wrong\r\nbchooks: connected shop 1\x1b[2J"})
    try:
        out, err, status = connect_app_process(tmp_path, endpoint.url, {"code": "c-1", "state": None})
    finally:
        endpoint.stop()
    assert status == 1 and CLIENT_SECRET not in out + err and "\x1b" not in err
    last = err.strip().splitlines()[2:]
    assert len(last) == 1 and last[0].startswith("bchooks: the API refused the code"), err
    assert "connected shop" not in out and not (tmp_path / "s.json").exists()


def test_an_oauth_error_from_the_redirect_is_one_bounded_line_without_control_characters(tmp_path):
    forged = "access_denied\nbchooks: connected shop 1\x1b]0;owned\x07\x1b[31m" + "A" * 60000
    out, err, status = connect_app_process(tmp_path, "http://127.0.0.1:9", {"error": forged, "state": None})
    assert status == 1 and "\x1b" not in err and "\x07" not in err
    last = err.strip().splitlines()[2:]
    assert len(last) == 1 and last[0].startswith("bchooks: the shop did not approve the app (access_denied"), err
    assert len(last[0]) < 400 and "connected shop" not in out


def test_a_database_server_that_never_answers_is_said_to_time_out(tmp_path):
    """A server that accepts the connection and says nothing (overloaded, frozen): "timed out", in one line that
    still names the store (its user and host, never its password)."""
    import socket
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://bchooks:{PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/db"
        result = bchooks("check", cwd=tmp_path, env={"BCHOOKS_DB": url, "BCHOOKS_BUSY_TIMEOUT": "1"})
    line = one_clean_line(result, PASSWORD)
    assert result.returncode == 1 and "did not answer in time (connection timed out" in line, line
    assert line.endswith(f"postgresql://bchooks@127.0.0.1:{url.rsplit(':', 1)[1]}")


def test_a_shops_password_an_api_echoes_is_never_printed(tmp_path):
    """The shops file's passwords and tokens are known secrets: an API error quoting one (with a forged second line)
    ends the command in one line without it."""
    api = FakeTokenEndpoint(500, {"errors": [{"detail": f"password shop-{PASSWORD} is wrong\nbchooks: all fine"}]})
    shops = tmp_path / "shops.json"
    shops.write_text(json.dumps({"shops": [{"account_id": "1234567", "kind": "basic", "api_url": api.url,
                                            "store_name": "", "subdomain": "myshop", "secret": f"shop-{PASSWORD}",
                                            "connected_at": ""}]}))
    shops.chmod(0o600)
    try:
        result = bchooks("reconcile", cwd=tmp_path, env={"BCHOOKS_SHOPS": str(shops), "BCHOOKS_API_URL": api.url,
                                                         "BCHOOKS_DB": str(tmp_path / "events.db")})
    finally:
        api.stop()
    line = one_clean_line(result, f"shop-{PASSWORD}")
    assert result.returncode == 1 and "the API answered 500" in line and "[redacted] is wrong bchooks: all fine" in line
