"""Connecting a shop to an approved app: OAuth's authorization-code flow, like `gh auth login` or `stripe login`.

1. `authorize_url(...)`: the page where the shop's owner approves the app (`https://my.bigcartel.com/oauth/authorize`
   with `client_id`, `response_type=code`, `state` and `redirect_uri`).
2. `CallbackServer`: a one-shot HTTP server on 127.0.0.1 (a free port) that the browser comes back to with `code` and
   `state`; the state must be the one sent (else `OAuthError`: someone else's redirect).
3. `exchange(...)`: the code for an access token at `https://api.bigcartel.com/oauth/token`; the answer carries the
   `account_id` (and the store's name).

`connect_app(...)` runs the three and keeps the token in the shops file. Neither the client secret nor the token is
ever printed; the URL to open is.
"""

import html
import secrets
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from .errors import BchooksError, InputError
from .shops import Shop

AUTHORIZE_URL = "https://my.bigcartel.com/oauth/authorize"


class OAuthError(BchooksError):
    """The authorization did not complete: denied, a wrong state, or a code the API refused."""

    code = "oauth_failed"


def authorize_url(base, client_id, redirect_uri, state):
    """The approval page's URL."""
    return f"{base}?{urlencode({'client_id': client_id, 'response_type': 'code', 'state': state, 'redirect_uri': redirect_uri})}"


class CallbackServer:
    """One redirect, on 127.0.0.1: `.redirect_uri`, then `wait(timeout)` -> the code (checks `state`)."""

    def __init__(self, state, host="127.0.0.1"):
        self.state = state
        self.result = {}
        done = self.done = threading.Event()
        result = self.result

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                query = parse_qs(urlsplit(self.path).query)
                result.update({k: v[0] for k, v in query.items()})
                ok = "code" in result and result.get("state") == state
                text = ("Connected: you can close this tab and go back to bchooks." if ok else
                        "Not connected: " + html.escape(result.get("error", "the answer did not match this login")))
                body = f"<!doctype html><title>bchooks</title><p>{text}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                done.set()

            def log_message(self, *args):
                pass
        self.httpd = HTTPServer((host, 0), Handler)
        self.redirect_uri = f"http://{host}:{self.httpd.server_port}/callback"
        self._thread = threading.Thread(target=self._serve, name="bchooks-oauth-callback", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self.done.is_set():
            self.httpd.handle_request()

    def wait(self, timeout):
        """The code the browser brought back; `OAuthError` when denied, for another state, or after `timeout` s."""
        try:
            if not self.done.wait(timeout):
                raise OAuthError(f"no answer came back within {timeout:g} s: open the URL and approve the app")
            if "error" in self.result:
                raise OAuthError(f"the shop did not approve the app ({self.result['error']})")
            if self.result.get("state") != self.state:
                raise OAuthError("the answer came back with another state than this login's: start again")
            if not self.result.get("code"):
                raise OAuthError("the answer came back without a code")
            return self.result["code"]
        finally:
            self.close()

    def close(self):
        self.done.set()
        self.httpd.server_close()


def exchange(token_url, client_id, client_secret, code, redirect_uri, timeout=10.0):
    """The token answer (`access_token`, `account_id`, ...) for an authorization code."""
    try:
        reply = requests.post(token_url, data={"grant_type": "authorization_code", "code": code,
                                               "client_id": client_id, "client_secret": client_secret,
                                               "redirect_uri": redirect_uri},
                              headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException:
        raise OAuthError(f"cannot reach {token_url} to exchange the code") from None
    try:
        document = reply.json()
    except ValueError:
        document = {}
    if not reply.ok or "access_token" not in document:
        reason = document.get("error_description") or document.get("error") or f"status {reply.status_code}"
        raise OAuthError(f"the API refused the code ({reason})")
    return document


def connect_app(api_url, authorize_base, client_id, client_secret, book, *, show, open_url=None, timeout=300.0):
    """Run the flow and keep the shop: `show(url)` tells the user what to open, `open_url(url)` (e.g. a browser)
    opens it. Returns the `Shop`."""
    if not client_id or not client_secret:
        raise InputError("an app connection needs the app's client id (BCHOOKS_CLIENT_ID) and client secret "
                         "(BCHOOKS_SECRET)")
    state = secrets.token_urlsafe(24)
    callback = CallbackServer(state)
    url = authorize_url(authorize_base, client_id, callback.redirect_uri, state)
    show(url)
    if open_url is not None:
        threading.Thread(target=open_url, args=(url,), daemon=True).start()
    code = callback.wait(timeout)
    answer = exchange(f"{api_url}/oauth/token", client_id, client_secret, code, callback.redirect_uri)
    return book.add(Shop(str(answer.get("account_id", "")), "token", api_url, str(answer.get("store_name", "")),
                         str(answer.get("subdomain", "")), answer["access_token"]))
