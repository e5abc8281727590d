"""The OAuth callback server (bchooks.shops.oauth.CallbackServer) against what browsers and strangers send it: idle
preconnects, stray requests, forged redirects without the state; and a token answer without an account."""

import socket
import threading

import pytest
import requests

from bchooks import secrecy
from bchooks.shops.oauth import CallbackServer, OAuthError, connect_app
from bchooks.shops import ShopBook
from test_secrets_outside import FakeTokenEndpoint

STATE = "state-of-this-login"


@pytest.fixture(autouse=True)
def fresh_registry():
    yield
    secrecy.forget_all()


@pytest.fixture
def callback():
    server = CallbackServer(STATE)
    yield server
    server.close()


def redirect(server, **params):
    return requests.get(server.redirect_uri, params=params, timeout=10)


def test_an_idle_preconnect_does_not_hold_up_the_redirect(callback):
    """Chrome opens a connection ahead and sends nothing on it: the redirect on another connection still lands."""
    host, port = callback.redirect_uri.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as idle:
        answer = []
        thread = threading.Thread(target=lambda: answer.append(redirect(callback, code="the-code", state=STATE)))
        thread.start()
        try:
            assert callback.wait(8) == "the-code"  # (before: the single thread waited on `idle` till the deadline)
        finally:
            thread.join(timeout=15)
    assert answer and answer[0].status_code == 200 and "Connected" in answer[0].text


def test_stray_requests_are_answered_and_ignored(callback):
    assert requests.get(callback.redirect_uri.replace("/callback", "/favicon.ico"), timeout=10).status_code == 404
    assert redirect(callback).status_code == 400  # neither code nor state
    assert redirect(callback, code="someone-elses", state="another-state").status_code == 400
    assert redirect(callback, code="no-state").status_code == 400
    assert not callback.done.is_set()
    assert redirect(callback, code="the-code", state=STATE).status_code == 200
    assert callback.wait(5) == "the-code"


def test_a_forged_error_without_the_state_is_ignored(callback):
    forged = redirect(callback, error="access_denied\nbchooks: connected shop 1")
    assert forged.status_code == 400 and "connected shop" not in forged.text
    assert not callback.done.is_set()
    redirect(callback, code="the-code", state=STATE)
    assert callback.wait(5) == "the-code"


def test_only_answers_with_another_state_end_in_a_timeout_that_says_so():
    server = CallbackServer(STATE)
    redirect(server, code="c", state="stale-tab")
    with pytest.raises(OAuthError, match="another state"):
        server.wait(0.5)


def test_a_denial_with_the_state_ends_the_login_in_one_printable_line(callback):
    page = redirect(callback, error="access_denied\r\n\x1b[2J<script>", state=STATE)
    assert page.status_code == 200 and "<script>" not in page.text
    with pytest.raises(OAuthError) as raised:
        callback.wait(5)
    assert str(raised.value) == "the shop did not approve the app (access_denied [2J<script>)"


@pytest.mark.parametrize("document", [{"access_token": "tok-123456"}, {"access_token": "tok-123456", "account_id": ""},
                                      {"access_token": "tok-123456", "account_id": None}])
def test_a_token_answer_without_an_account_keeps_no_shop(tmp_path, document):
    endpoint = FakeTokenEndpoint(200, document)
    book = ShopBook(tmp_path / "shops.json")

    def browser(url):
        from urllib.parse import parse_qs, urlsplit
        query = parse_qs(urlsplit(url).query)
        requests.get(query["redirect_uri"][0], params={"code": "c-1", "state": query["state"][0]}, timeout=10)
    try:
        with pytest.raises(OAuthError, match="no account_id"):
            connect_app(endpoint.url, f"{endpoint.url}/oauth/authorize", "app-1", "client-secret-1", book,
                        show=lambda url: None, open_url=browser, timeout=10)
    finally:
        endpoint.stop()
    assert book.shops() == []
