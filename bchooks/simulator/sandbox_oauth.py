"""The sandbox's OAuth app: the approval page (Big Cartel's `my.bigcartel.com/oauth/authorize`), and the token and
deauthorize endpoints of its API, with the errors a real authorization server gives (`invalid_client`,
`invalid_grant`, `access_denied`). Its app is `SANDBOX_CLIENT_ID`, its client secret the sandbox's signing secret
(as an app's webhooks are signed with its client secret). A token opens one shop."""

import hmac
import html
import json
import secrets
import time
from urllib.parse import urlencode, urlsplit

import bottle

from ..config import SANDBOX_CLIENT_ID


class SandboxApp:
    def __init__(self, sandbox, client_secret):
        self.sandbox = sandbox
        self._client_secret = client_secret
        self.code_ttl = 60.0  # seconds an authorization code stays good
        self._codes = {}  # code -> (account id, redirect_uri, expires at)
        self._app_tokens = {}  # access token -> account id

    def __repr__(self):
        return f"SandboxApp({SANDBOX_CLIENT_ID!r}, {len(self._app_tokens)} token(s))"

    def grant(self, account_id, redirect_uri):
        """A one-use authorization code for `account_id`."""
        code = secrets.token_urlsafe(16)
        with self.sandbox.lock:
            self._codes[code] = (account_id, redirect_uri, time.monotonic() + self.code_ttl)
        return code

    def redeem(self, code, redirect_uri):
        """The access token for a code (once, before it expires, for the same redirect_uri), else None."""
        with self.sandbox.lock:
            found = self._codes.pop(code, None)
            if found is None or found[1] != redirect_uri or time.monotonic() > found[2]:
                return None
            token = secrets.token_urlsafe(24)
            self._app_tokens[token] = found[0]
            self.sandbox.save()
            return token, self.sandbox.shops[found[0]]

    def deauthorize(self, account_id):
        with self.sandbox.lock:
            for token in [t for t, a in self._app_tokens.items() if a == account_id]:
                del self._app_tokens[token]
            self.sandbox.save()

    def tokens(self):
        """{access token: account id} (for the sandbox's state file only: never shown)."""
        with self.sandbox.lock:
            return dict(self._app_tokens)

    def restore(self, tokens):
        with self.sandbox.lock:
            self._app_tokens = {str(token): str(account) for token, account in tokens.items()}

    def app_credentials_match(self, client_id, client_secret):
        return client_id == SANDBOX_CLIENT_ID and hmac.compare_digest(str(client_secret or "").encode(),
                                                                        self._client_secret.encode())

    def account_of(self, token):
        """The account an app's access token opens, or None."""
        return self._app_tokens.get(token)



def _oauth_error(status, error, description):
    return bottle.HTTPResponse(json.dumps({"error": error, "error_description": description}), status=status,
                               headers={"Content-Type": "application/json"})



def _valid_url(url):
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


def add_oauth_routes(app, sandbox):
    # -- OAuth: the approval page (Big Cartel's my.bigcartel.com), the token and deauthorize endpoints (its API)
    def oauth_request(source):
        client_id, redirect_uri, state = (source.get("client_id"), source.get("redirect_uri"), source.get("state"))
        if client_id != SANDBOX_CLIENT_ID:
            raise bottle.HTTPResponse(f"unknown client_id (the sandbox's app is {SANDBOX_CLIENT_ID})", status=400)
        if not _valid_url(redirect_uri):
            raise bottle.HTTPResponse("redirect_uri must be an absolute http(s) URL", status=400)
        if not state:
            raise bottle.HTTPResponse("state is required", status=400)
        return client_id, redirect_uri, state

    @app.get("/oauth/authorize")
    def authorize_page():
        query = bottle.request.query
        if query.get("response_type") != "code":
            return bottle.HTTPResponse("response_type must be code", status=400)
        client_id, redirect_uri, state = oauth_request(query)
        options = "".join(f"<option value='{html.escape(s.account_id)}'>{html.escape(s.account['store_name'])}"
                          f"</option>" for s in sandbox.shops.values())
        hidden = "".join(f"<input type='hidden' name='{k}' value='{html.escape(v)}'>" for k, v in
                         (("client_id", client_id), ("redirect_uri", redirect_uri), ("state", state)))
        return (f"<!doctype html><title>Authorize an app</title><h1>Let this app read your shop?</h1>"
                f"<form method='post' action='/oauth/authorize'>{hidden}<label>Shop <select name='account_id'>"
                f"{options}</select></label> <button name='decision' value='approve'>Approve</button> "
                f"<button name='decision' value='deny'>Deny</button></form>")

    @app.post("/oauth/authorize")
    def authorize_decision():
        form = bottle.request.forms
        _, redirect_uri, state = oauth_request(form)
        joiner = "&" if "?" in redirect_uri else "?"
        if form.get("decision") != "approve":
            return bottle.redirect(f"{redirect_uri}{joiner}{urlencode({'error': 'access_denied', 'state': state})}")
        account_id = form.get("account_id") or sandbox.shop.account_id
        if account_id not in sandbox.shops:
            return bottle.HTTPResponse("no such shop", status=400)
        code = sandbox.oauth.grant(account_id, redirect_uri)
        return bottle.redirect(f"{redirect_uri}{joiner}{urlencode({'code': code, 'state': state})}")

    @app.post("/oauth/token")
    def token():
        form = bottle.request.forms
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be authorization_code")
        if not sandbox.oauth.app_credentials_match(form.get("client_id"), form.get("client_secret")):
            return _oauth_error(401, "invalid_client", "the client id or secret is wrong")
        redeemed = sandbox.oauth.redeem(form.get("code") or "", form.get("redirect_uri") or "")
        if redeemed is None:
            return _oauth_error(400, "invalid_grant", "the code is unknown, used, expired or for another redirect_uri")
        access_token, shop = redeemed
        return bottle.HTTPResponse(json.dumps({"access_token": access_token, "token_type": "bearer",
                                               "account_id": shop.account_id,
                                               "store_name": shop.account["store_name"],
                                               "subdomain": shop.account["subdomain"]}),
                                   status=200, headers={"Content-Type": "application/json"})

    @app.post("/oauth/deauthorize/<account_id>")
    def deauthorize(account_id):
        auth = bottle.request.auth
        if not auth or not sandbox.oauth.app_credentials_match(*auth):
            return _oauth_error(401, "invalid_client", "send HTTP Basic with the client id and secret")
        sandbox.oauth.deauthorize(account_id)
        return bottle.HTTPResponse(status=204)
