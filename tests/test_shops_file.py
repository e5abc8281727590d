"""The shops file and the commands around it (`connect`, `shops`, `disconnect`), from outside: real `python -m
bchooks` processes with `BCHOOKS_SHOPS` pointing at a file of each test's, real sandbox servers on loopback. Each
case is one line on stderr, the right exit status, never a traceback, never a password."""

import base64
import http.server
import json
import os
import stat
import subprocess
import sys
import threading

import pytest
import requests

from bchooks.shops import ShopBook
from bchooks.simulator.sandbox import Sandbox, SandboxServer
from conftest import SECRET

PASSWORD = "sandbox-password"
HEADERS = {"Accept": "application/vnd.api+json", "User-Agent": "bchooks tests"}


def bchooks(folder, *args, shops, password=None, env=None):
    """`python -m bchooks ARGS` in `folder` with only these BCHOOKS_* settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}
    environment.update({"BCHOOKS_SHOPS": str(shops), "BCHOOKS_DB": str(folder / "events.db"), **(env or {})})
    if password is not None:
        environment["BCHOOKS_SHOP_PASSWORD"] = password
    result = subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                            timeout=60, env=environment, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    for secret in (PASSWORD, "old-secret", "token-secret"):
        assert secret not in result.stdout + result.stderr
    return result


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def entry(account_id="1234567", api_url="http://127.0.0.1:9", subdomain="sandbox-shop", secret="old-secret", **more):
    return {"account_id": account_id, "kind": "basic", "api_url": api_url, "store_name": "Shop",
            "subdomain": subdomain, "secret": secret, "connected_at": "2026-01-01T00:00:00.000Z", **more}


def write(path, document):
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    path.chmod(0o600)
    return path


@pytest.fixture
def sandbox():
    server = SandboxServer(Sandbox(SECRET))
    yield server
    server.stop()


@pytest.mark.parametrize("document, found, command", [
    *[(document, found, ("shops",)) for document, found in [
        ([], "a list"), (None, "null"), ({"shops": None}, "null for shops"),
        ({"shops": {"1": {}}}, "an object for shops"),
        ("{not json", "not valid JSON"), ("[" * 100_000, "nested too deeply")]],
    *[([], "a list", command) for command in [("disconnect", "1234567"), ("poll", "--once"),
                                              ("connect", "--subdomain", "sandbox-shop")]],
    (None, "null", ("connect", "--subdomain", "sandbox-shop"))])
def test_a_file_that_is_not_a_shops_file_is_one_line_in_every_command(tmp_path, document, found, command):
    shops = write(tmp_path / "shops.json", document if isinstance(document, str) else json.dumps(document))
    before = shops.read_bytes()
    result = bchooks(tmp_path, *command, shops=shops, password=PASSWORD,
                     env={"BCHOOKS_API_URL": "http://127.0.0.1:9"})
    assert result.returncode == 2 and lines(result.stderr) == [lines(result.stderr)[0]], result.stderr
    assert str(shops) in result.stderr and found in result.stderr
    assert shops.read_bytes() == before  # a file it cannot read is never overwritten


def test_unknown_fields_and_a_bad_entry_leave_the_other_shops_usable(tmp_path):
    shops = write(tmp_path / "shops.json", {"shops": [
        entry("1", refresh_token="token-secret", added_by="bchooks 9.0"),
        {"account_id": "2", "api_url": "http://127.0.0.1:9", "secret": "old-secret"},  # no kind
        entry("3", kind="oauth3"), 42, entry("4", subdomain="shop-four")]})
    result = bchooks(tmp_path, "shops", shops=shops)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in lines(result.stdout)] == ["ACCOUNT", "1", "4"]
    warnings = lines(result.stderr)
    assert len(warnings) == 3 and all(str(shops) in w and "skipped" in w for w in warnings)
    assert "entry 2 (account 2)" in warnings[0] and "no kind" in warnings[0]
    assert "entry 3 (account 3)" in warnings[1] and "oauth3" in warnings[1] and "entry 4" in warnings[2]


def test_a_rewrite_keeps_what_this_version_does_not_know(tmp_path):
    newer = {"account_id": "2", "kind": "oauth3", "api_url": "http://127.0.0.1:9", "secret": "old-secret"}
    shops = write(tmp_path / "shops.json", {"version": 3, "shops": [
        entry("1", refresh_token="token-secret"), newer, entry("4", subdomain="shop-four")]})
    result = bchooks(tmp_path, "disconnect", "4", shops=shops)
    assert result.returncode == 0 and "disconnected shop 4" in result.stdout, result.stderr
    document = json.loads(shops.read_text())
    assert document["version"] == 3 and document["shops"][1] == newer and len(document["shops"]) == 2
    assert document["shops"][0] == entry("1", refresh_token="token-secret")
    result = bchooks(tmp_path, "disconnect", "2", shops=shops)  # an entry it cannot use can still be forgotten
    assert result.returncode == 0, result.stderr
    assert [e["account_id"] for e in json.loads(shops.read_text())["shops"]] == ["1"]
    assert stat.S_IMODE(shops.stat().st_mode) == 0o600


def test_a_symlinked_shops_file_is_written_through_to_its_target(tmp_path):
    (tmp_path / "private").mkdir()
    target = write(tmp_path / "private" / "real-shops.json", {"shops": [entry("1"), entry("2", subdomain="two")]})
    link = tmp_path / "shops.json"
    link.symlink_to(target)
    result = bchooks(tmp_path, "disconnect", "1", shops=link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [e["account_id"] for e in json.loads(target.read_text())["shops"]] == ["2"]
    assert "old-secret" in target.read_text() and target.read_text().count("old-secret") == 1  # shop 1's is gone
    assert sorted(p.name for p in (tmp_path / "private").iterdir()) == ["real-shops.json"]  # no temporary left


def test_a_link_planted_at_the_temporary_name_is_never_followed(tmp_path):
    shops = write(tmp_path / "shops.json", {"shops": [entry("1"), entry("2", subdomain="two")]})
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "shops.json.tmp").symlink_to(victim)
    result = bchooks(tmp_path, "disconnect", "1", shops=shops)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious\n" and (tmp_path / "shops.json.tmp").is_symlink()
    assert [e["account_id"] for e in json.loads(shops.read_text())["shops"]] == ["2"]


def test_an_unwritable_location_is_one_line_after_the_password_was_checked(tmp_path, sandbox):
    shops = "/proc/bchooks-test-shops.json"  # (reads as absent; nothing can be created there, even by root)
    result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", shops=shops, password=PASSWORD,
                     env={"BCHOOKS_API_URL": sandbox.url})
    assert result.returncode == 2 and len(lines(result.stderr)) == 1, result.stderr
    assert "cannot write the shops file /proc/bchooks-test-shops.json" in result.stderr


def test_a_file_others_can_read_is_used_with_one_warning_saying_how_to_fix_it(tmp_path):
    shops = write(tmp_path / "shops.json", {"shops": [entry("1")]})
    shops.chmod(0o644)
    result = bchooks(tmp_path, "shops", shops=shops)
    assert result.returncode == 0 and lines(result.stdout)[1].startswith("1 ")
    assert len(lines(result.stderr)) == 1 and "0644" in result.stderr and f"chmod 600 {shops}" in result.stderr


@pytest.mark.parametrize("subdomain", ["my shop", "shop.bigcartel.com", "-shop", "shop-", "shop🙂", "caf\u00e9",
                                       "a" * 64, "sandbox-shop\n"])
def test_a_subdomain_big_cartel_cannot_have_is_refused_before_anything_is_sent(tmp_path, sandbox, subdomain):
    shops = tmp_path / "shops.json"
    result = bchooks(tmp_path, "connect", f"--subdomain={subdomain}", shops=shops, password=PASSWORD,
                     env={"BCHOOKS_API_URL": sandbox.url})
    assert result.returncode == 2 and len(lines(result.stderr)) == 1, result.stderr
    assert "not a Big Cartel subdomain" in result.stderr
    assert sandbox.sandbox.reads == 0 and not shops.exists()


def test_basic_auth_sends_utf8_so_any_password_works(tmp_path):
    from bchooks.shops import basic_auth
    password = "p\u20acss-\U0001f642-\u00e9"
    server = SandboxServer(Sandbox(SECRET, password=password))
    try:
        url = f"{server.url}/v1/accounts"
        with pytest.raises(UnicodeEncodeError):  # what requests' own HTTPBasicAuth does with it
            requests.get(url, auth=requests.auth.HTTPBasicAuth("sandbox-shop", password), headers=HEADERS)
        answer = requests.get(url, auth=basic_auth("sandbox-shop", password), headers=HEADERS, timeout=10)
        assert answer.status_code == 200 and answer.json()["data"][0]["id"] == "1234567"
        assert requests.get(url, auth=basic_auth("sandbox-shop", "p\u20acss"), headers=HEADERS,
                            timeout=10).status_code == 401
    finally:
        server.stop()
    assert password not in repr(basic_auth("sandbox-shop", password))


def test_basic_auth_header_is_base64_of_the_utf8_bytes():
    from bchooks.shops import basic_auth
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers["Authorization"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        requests.get(f"http://127.0.0.1:{httpd.server_port}/", auth=basic_auth("yourshop", "\u20ac:\U0001f642"),
                     timeout=10)
    finally:
        httpd.shutdown()
        httpd.server_close()
    scheme, value = seen[0].split(" ")
    assert scheme == "Basic" and base64.b64decode(value) == b"yourshop:\xe2\x82\xac:\xf0\x9f\x99\x82"


def test_connect_refuses_to_replace_another_shop_with_the_same_account_without_replace(tmp_path):
    first, second = SandboxServer(Sandbox(SECRET)), SandboxServer(Sandbox(SECRET))  # both say account 1234567
    shops = tmp_path / "shops.json"
    try:
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", shops=shops, password=PASSWORD,
                         env={"BCHOOKS_API_URL": first.url})
        assert result.returncode == 0, result.stderr
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", shops=shops, password=PASSWORD,
                         env={"BCHOOKS_API_URL": second.url})
        assert result.returncode == 2 and len(lines(result.stderr)) == 1, result.stderr
        assert "1234567" in result.stderr and first.url in result.stderr and "--replace" in result.stderr
        assert [e["api_url"] for e in json.loads(shops.read_text())["shops"]] == [first.url]
        listing = bchooks(tmp_path, "shops", shops=shops).stdout
        assert "API_URL" in lines(listing)[0] and first.url in listing
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", "--replace", shops=shops,
                         password=PASSWORD, env={"BCHOOKS_API_URL": second.url})
        assert result.returncode == 0, result.stderr
        assert [e["api_url"] for e in json.loads(shops.read_text())["shops"]] == [second.url]
        before = json.loads(shops.read_text())["shops"][0]["connected_at"]
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", shops=shops, password=PASSWORD,
                         env={"BCHOOKS_API_URL": second.url + "/"})  # the same shop again: updated, no question
        assert result.returncode == 0, result.stderr
        kept = json.loads(shops.read_text())["shops"]
        assert len(kept) == 1 and kept[0]["connected_at"] >= before
        listing = bchooks(tmp_path, "shops", shops=shops).stdout
        assert second.url in listing and first.url not in listing
    finally:
        first.stop()
        second.stop()


def test_the_book_rereads_cheaply_and_sees_a_disconnect_and_a_newer_entry(tmp_path):
    path = write(tmp_path / "shops.json", {"shops": [entry("1"), entry("2", subdomain="two")]})
    poller, other = ShopBook(path), ShopBook(path)
    assert [s.account_id for s in poller.shops()] == ["1", "2"]
    first = poller.shops()
    assert first == poller.shops() and first[0] is poller.shops()[0]  # unchanged file: not parsed again
    other.remove("1")
    assert [s.account_id for s in poller.shops()] == ["2"]
    document = json.loads(path.read_text())
    document["shops"].append({**entry("3", subdomain="three"), "kind": "oauth3", "scopes": ["orders"]})
    write(path, document)
    assert [s.account_id for s in poller.shops()] == ["2"]


def test_a_password_outside_latin1_connects_and_polls_and_a_401_does_not_blame_the_password_alone(tmp_path):
    """Needs bchooks/shops/client.py to authenticate with `shops.basic_auth` and to name both the subdomain and the
    password on a 401 (the API answers the same 401 for an unknown subdomain and a wrong password)."""
    password = "p\u20acss-\U0001f642"
    server = SandboxServer(Sandbox(SECRET, password=password))
    shops, env = tmp_path / "shops.json", {"BCHOOKS_API_URL": server.url}
    try:
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop", shops=shops, password=password, env=env)
        assert result.returncode == 0 and "connected shop 1234567" in result.stdout, result.stderr
        result = bchooks(tmp_path, "poll", "--once", shops=shops, env=env)
        assert result.returncode == 0 and "shop 1234567:" in result.stderr, result.stderr
        for subdomain, given in [("sandbox-shop", "p\u20acss"), ("no-such-shop", password)]:
            result = bchooks(tmp_path, "connect", "--subdomain", subdomain, shops=shops, password=given, env=env)
            assert result.returncode == 1 and len(lines(result.stderr)) == 1, result.stderr
            assert "subdomain or store password (401)" in result.stderr and subdomain in result.stderr
            assert password not in result.stderr and given not in result.stderr
    finally:
        server.stop()


def test_an_entry_this_version_cannot_use_is_replaced_only_when_asked(tmp_path):
    from bchooks.errors import InputError
    from bchooks.shops import Shop
    newer = {"account_id": "1", "kind": "oauth3", "api_url": "http://127.0.0.1:9", "secret": "token-secret"}
    path = write(tmp_path / "shops.json", {"shops": [newer]})
    shop = Shop("1", "basic", "http://127.0.0.1:9", "Shop", "yourshop", "old-secret")
    with pytest.raises(InputError, match="--replace"):
        ShopBook(path).add(shop)
    assert json.loads(path.read_text())["shops"] == [newer]
    ShopBook(path, replace=True).add(shop)
    assert [(e["account_id"], e["kind"]) for e in json.loads(path.read_text())["shops"]] == [("1", "basic")]
