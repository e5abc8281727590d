"""Connecting a shop to an approved app: OAuth's authorization-code flow, like `gh auth login` or `stripe login`.

1. `authorize_url(...)`: the page where the shop's owner approves the app (`https://my.bigcartel.com/oauth/authorize`
   with `client_id`, `response_type=code`, `state` and `redirect_uri`).
2. `CallbackServer`: an HTTP server on 127.0.0.1 (a free port) that the browser comes back to with `code` and
   `state`; only the redirect carrying the state sent ends the wait (anything else is answered and ignored).
3. `exchange(...)`: the code for an access token at `https://api.bigcartel.com/oauth/token`; the answer carries the
   `account_id` (and the store's name).

`connect_app(...)` runs the three and keeps the token in the shops file. Neither the client secret nor the token is
ever printed; the URL to open is.
"""

import html
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from ..errors import BchooksError, InputError
from ..secrecy import printable, redact, remember
from . import Shop

AUTHORIZE_URL = "https://my.bigcartel.com/oauth/authorize"


class OAuthError(BchooksError):
    """The authorization did not complete: denied, a wrong state, or a code the API refused."""

    code = "oauth_failed"


def authorize_url(base, client_id, redirect_uri, state):
    """The approval page's URL."""
    return f"{base}?{urlencode({'client_id': client_id, 'response_type': 'code', 'state': state, 'redirect_uri': redirect_uri})}"


#: seconds a connection to the callback server may stay silent before it is closed (a browser's idle preconnect)
READ_TIMEOUT = 10.0
_PAGE = "<!doctype html><title>bchooks</title><p>{}</p>"


class _QuietServer(ThreadingHTTPServer):
    """A connection that fails (reset, timed out) ends its own thread without a traceback on the terminal."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class CallbackServer:
    """One redirect, on 127.0.0.1: `.redirect_uri`, then `wait(timeout)` -> the code.

    Each connection is served on a thread of its own with a read timeout, so an idle connection (a browser's
    preconnect) never holds up the redirect. Only a GET of the redirect path carrying this login's `state` ends the
    wait; anything else (`/favicon.ico`, a forged redirect without the state, with its `error`) gets a 404 or 400
    page and is ignored."""

    def __init__(self, state, host="127.0.0.1", path="/callback"):
        self.state = state
        self.result: dict = {}
        done = self.done = threading.Event()
        foreign = self.foreign = threading.Event()  # a redirect of the path with another state came (and was ignored)
        result = self.result
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            timeout = READ_TIMEOUT  # (per connection: StreamRequestHandler sets it on the socket)

            def do_GET(self):  # noqa: N802 (the http.server name)
                parts = urlsplit(self.path)
                if parts.path != path:
                    return self._page(404, "Not found: this address only takes bchooks' login redirect.")
                try:  # (the request line is 64 KiB at most)
                    query = {k: v[0] for k, v in parse_qs(parts.query, max_num_fields=20).items()}
                except ValueError:
                    return self._page(400, "Not this login's answer: ignored.")
                if not secrets.compare_digest(query.get("state", "").encode(), state.encode()):
                    foreign.set()
                    return self._page(400, "Not this login's answer (its state does not match): ignored.")
                with lock:
                    first = not result
                    if first:
                        result.update(query)
                try:  # (the page is written before the login goes on: a process ending must not cut it off)
                    if "code" in query and "error" not in query:
                        self._page(200, "Connected: you can close this tab and go back to bchooks.")
                    else:
                        self._page(200, "Not connected: " + html.escape(printable(query.get("error") or
                                                                                  "no code came back")))
                finally:
                    if first:
                        done.set()

            def _page(self, status, text):
                body = _PAGE.format(text).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass
        self.httpd = _QuietServer((host, 0), Handler)
        self.redirect_uri = f"http://{host}:{self.httpd.server_port}{path}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="bchooks-oauth-callback", daemon=True)
        self._thread.start()

    def wait(self, timeout):
        """The code the browser brought back; `OAuthError` when denied, without a code, or after `timeout` s."""
        try:
            if not self.done.wait(timeout):
                if self.foreign.is_set():
                    raise OAuthError(f"no answer for this login came back within {timeout:g} s (one with another "
                                     "state than this login's came and was ignored): start again")
                raise OAuthError(f"no answer came back within {timeout:g} s: open the URL and approve the app")
            if "error" in self.result:
                raise OAuthError(f"the shop did not approve the app ({printable(self.result['error'])})")
            if not self.result.get("code"):
                raise OAuthError("the answer came back without a code")
            return self.result["code"]
        finally:
            self.close()

    def close(self):
        self.done.set()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def exchange(token_url, client_id, client_secret, code, redirect_uri, timeout=10.0):
    """The token answer (`access_token`, `account_id`, ...) for an authorization code; `OAuthError` in one line
    (the API's own words made printable, the client secret never among them) when there is none."""
    remember(client_secret)
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
    if not isinstance(document, dict):
        document = {}
    token = document.get("access_token")
    if not reply.ok or not isinstance(token, str) or not token:
        reason = document.get("error_description") or document.get("error") or f"status {reply.status_code}"
        raise OAuthError(f"the API refused the code ({printable(redact(str(reason), [client_secret]))})")
    remember(token)
    account = document.get("account_id")
    if not isinstance(account, (str, int)) or isinstance(account, bool) or not str(account).strip():
        raise OAuthError("the API's token answer names no account (no account_id): the shop was not kept")
    return document


def connect_app(api_url, authorize_base, client_id, client_secret, book, *, show, open_url=None, timeout=300.0):
    """Run the flow and keep the shop: `show(url)` tells the user what to open, `open_url(url)` (e.g. a browser)
    opens it. Returns the `Shop`."""
    if not client_id or not client_secret:
        raise InputError("an app connection needs the app's client id (BCHOOKS_CLIENT_ID) and client secret "
                         "(BCHOOKS_SECRET)")
    remember(client_secret)
    state = secrets.token_urlsafe(24)
    callback = CallbackServer(state)
    url = authorize_url(authorize_base, client_id, callback.redirect_uri, state)
    show(url)
    if open_url is not None:
        threading.Thread(target=open_url, args=(url,), daemon=True).start()
    code = callback.wait(timeout)
    answer = exchange(f"{api_url}/oauth/token", client_id, client_secret, code, callback.redirect_uri)
    return book.add(Shop(str(answer["account_id"]).strip(), "token", api_url, str(answer.get("store_name") or ""),
                         str(answer.get("subdomain") or ""), answer["access_token"]))
