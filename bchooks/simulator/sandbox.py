"""A local Big Cartel: the webhook registration contract, the REST reads, and signed event delivery.

`Sandbox` holds the state (a simulated `Shop`, registered webhooks, a delivery `Dispatcher`);
`create_sandbox_app(sandbox)` is its Bottle app; `SandboxServer` serves it on a thread. Errors are JSON:API
`{"errors": [{"status", "title", "detail", "source"}]}`. Each shop sells in one currency and may start with a year
of history (`history`: orders a year); with a `state` file, shops, webhooks, events and app tokens are saved there
after each change and come back when a sandbox starts with it (`sandbox_state.py`); deliveries still pending are
lost with the process.
"""

import base64
import errno
import hmac
import json
import threading
import time
from socketserver import ThreadingMixIn
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle

from ..clock import iso, now_iso, parse_iso
from ..config import SANDBOX_PASSWORD, SANDBOX_TOKEN
from .deliveries import DEFAULT_SCHEDULE, Dispatcher
from .history import opening, trade_a_year
from .sandbox_state import load_state, save_state
from .sandbox_oauth import SandboxApp, _valid_url, add_oauth_routes
from ..wire import EVENT_TYPES, FORMATS, SHAPES, SIGNATURE_HEADERS
from .shop import Shop, envelope, jsonapi_order, jsonapi_product, real_time, run_tag

JSONAPI = "application/vnd.api+json"
DEFAULT_TOKEN = SANDBOX_TOKEN
MAX_TRIGGER = 10000
SORTABLE = ("created_at", "updated_at", "completed_at")
CURRENCIES = ("USD", "GBP", "EUR", "CAD", "AUD")  # the shops' currencies, first to fifth (then again)


class Sandbox:
    def __init__(self, secret, *, token=DEFAULT_TOKEN, seed=0, shape="flat", format="docs", drop=0.0,
                 schedule=DEFAULT_SCHEDULE, timeout=5.0, clock=real_time, shops=1, password=SANDBOX_PASSWORD,
                 history=0, history_end=None, state=None):
        """`clock`: the time events are stamped with (the real time); order ids carry the time the shop was made
        (`BCSB-<run tag>-000001`), so a restarted sandbox never reuses one. `shops`: how many shops it serves
        (accounts 1234567, 1234568, ...; subdomains sandbox-shop, sandbox-shop-2, ...; currencies USD, GBP, EUR,
        CAD, AUD), whose order numbers overlap as real shops' do; each takes HTTP Basic with its subdomain and
        `password`, the token takes them all. `history`: orders each shop took in the year before `history_end`
        (an aware datetime; default now), served by its API from the start. `state`: a JSON file the sandbox is
        saved to and, when it exists, restored from (its shops kept as they were; `shops` only adds to them)."""
        if shape not in SHAPES or format not in FORMATS:
            raise ValueError("shape must be flat or jsonapi, format docs or guide")
        self._token = token
        self._clock = clock
        self._password = password
        self.oauth = SandboxApp(self, secret)
        self.shop_count = max(1, int(shops))
        self.history = max(0, int(history))
        self.history_end = parse_iso(history_end) if isinstance(history_end, str) else history_end
        self.state_path = state
        self.faults = []  # (status, retry_after) answers the next REST reads get instead (POST /sandbox/faults)
        self.reads = 0  # REST reads answered, for measuring what polling costs
        self.seed, self.shape, self.format = seed, shape, format
        self.lock = threading.RLock()
        self.dispatcher = Dispatcher(secret, schedule=schedule, drop=drop, seed=seed, timeout=timeout)
        saved = load_state(state) if state else None
        if saved is None:
            self.reset()
        else:
            self._restore(saved)

    def __repr__(self):
        return f"Sandbox(seed={self.seed}, shape={self.shape!r}, format={self.format!r})"

    def describe(self):
        """One line: each shop's account, subdomain, currency and orders (`account 1234567 (sandbox-shop, USD, 300
        orders)`), and the state file."""
        with self.lock:
            shops = ", ".join(f"{s.account_id} ({s.account['subdomain']}, {s.account['currency']}, {len(s.orders)} "
                              f"orders)" for s in self.shops.values())
        return (f"account{'s' if len(self.shops) > 1 else ''} {shops}"
                + (f"; state in {self.state_path}" if self.state_path else ""))

    def _new_shop(self, n, prefix):
        """The `n`th shop (from 0), with its year of history when the sandbox has one."""
        end = self.history_end or self._clock()
        suffix = f"-{n + 1}" if n else ""
        shop = Shop(self.seed + n, account_id=str(1234567 + n), clock=self._clock, order_prefix=prefix,
                    subdomain=f"sandbox-shop{suffix}", store_name=f"Sandbox Shop{' ' + str(n + 1) if n else ''}",
                    currency=CURRENCIES[n % len(CURRENCIES)], opened=iso(opening(end)) if self.history else None)
        if self.history:
            trade_a_year(shop, self.seed + n, self.history, end)
        return shop

    def reset(self):
        with self.lock:
            prefix = f"BCSB-{run_tag(self._clock(), fresh=True)}"  # one for all shops: their numbers overlap
            self.shops = {}
            for n in range(self.shop_count):
                shop = self._new_shop(n, prefix)
                self.shops[shop.account_id] = shop
            self.shop = next(iter(self.shops.values()))  # the first: where events go unless told otherwise
            self.webhooks = {}
            self.events = []
            self._next_webhook_id = 1
            self.dispatcher.clear()
            self.save()

    def _restore(self, saved):
        with self.lock:
            shops = [Shop.restore(state, clock=self._clock) for state in saved["shops"]]
            prefix = shops[0].order_prefix
            shops += [self._new_shop(n, prefix) for n in range(len(shops), self.shop_count)]
            self.shops = {shop.account_id: shop for shop in shops}
            self.shop = shops[0]
            self.webhooks = {w["id"]: w for w in saved["webhooks"]}
            self.events = saved["events"]
            self._next_webhook_id = saved["next_webhook_id"]
            self.oauth.restore(saved["app_tokens"])
            if len(shops) > len(saved["shops"]):
                self.save()

    def save(self):
        """Write the state file (when the sandbox has one): replaced whole, never half-written."""
        if not self.state_path:
            return
        with self.lock:
            save_state(self.state_path, {
                "shops": [shop.state() for shop in self.shops.values()], "webhooks": list(self.webhooks.values()),
                "events": self.events, "next_webhook_id": self._next_webhook_id, "app_tokens": self.oauth.tokens()})

    def check_token(self, header):
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and value.strip() == self._token

    def authorised_shops(self, header):
        """The shops a request's Authorization opens: all of them for the token, one for its subdomain and
        password (HTTP Basic), none otherwise."""
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "bearer" and value.strip() == self._token:
            return list(self.shops.values())
        if scheme.lower() == "bearer" and self.oauth.account_of(value.strip()):
            return [self.shops[self.oauth.account_of(value.strip())]]
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return []
            return [s for s in self.shops.values() if s.account["subdomain"] == user and
                    hmac.compare_digest(password.encode(), self._password.encode())]
        return []

    def register(self, url, events):
        with self.lock:
            webhook = {"id": str(self._next_webhook_id), "url": url, "events": list(events),
                       "created_at": now_iso()}
            self.webhooks[webhook["id"]] = webhook
            self._next_webhook_id += 1
            self.save()
            return webhook

    def unregister(self, webhook_id):
        """Whether there was such a webhook (now removed)."""
        with self.lock:
            found = self.webhooks.pop(webhook_id, None) is not None
            self.save()
            return found

    def trigger(self, event_type, count=1, *, shape=None, format=None, account_id=None):
        """Change the shop (the first, or `account_id`'s) `count` times and deliver each event to the subscribed
        webhooks."""
        shape, format = shape or self.shape, format or self.format
        created = []
        with self.lock:
            shop = self.shops.get(str(account_id)) if account_id else self.shop
            for _ in range(count):
                resource = shop.make(event_type)
                body = envelope(event_type, resource, shop.account_id, shape=shape, format=format)
                event = {"id": len(self.events) + 1, "type": event_type, "resource_id": str(resource["id"]),
                         "account_id": shop.account_id, "created_at": now_iso()}
                self.events.append(event)
                targets = [w for w in self.webhooks.values() if event_type in w["events"]]
                deliveries = self.dispatcher.enqueue(event["id"], event_type, body, targets,
                                                     header=SIGNATURE_HEADERS[format])
                created.append({**event, "deliveries": deliveries})
            self.save()
        return created

    def stop(self):
        return self.dispatcher.stop()


def _error(status, title, detail, pointer=None):
    error = {"status": str(status), "title": title, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer} if pointer.startswith("/") else {"parameter": pointer}
    return bottle.HTTPResponse(json.dumps({"errors": [error]}), status=status,
                               headers={"Content-Type": JSONAPI})


def _json(payload, status=200):
    return bottle.HTTPResponse(json.dumps(payload), status=status, headers={"Content-Type": JSONAPI})


def _json_object(default, example):
    """The request body as a JSON object (`default` when empty); a 400 naming the expected shape otherwise."""
    try:
        document = json.loads(bottle.request.body.read() or default)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise _error(400, "Bad Request", f"the body must be a JSON object: {example}")
    return document


def _int_param(name, default, low, high):
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _error(400, "Invalid parameter", f"{name} must be a whole number from {low} to {high}", name)
    return int(raw)


def _time_param(name):
    raw = bottle.request.query.get(name)
    if not raw:
        return None
    try:
        return iso(parse_iso(raw))
    except ValueError:
        raise _error(400, "Invalid parameter", f"{name} must be an ISO-8601 time", name) from None


def _page(items, base_url):
    limit = _int_param("page[limit]", 20, 1, 100)
    offset = _int_param("page[offset]", 0, 0, 10 ** 9)
    page = items[offset:offset + limit]
    links = {}
    if offset + limit < len(items):
        query = {k: v for k, v in bottle.request.query.allitems()}
        query["page[offset]"], query["page[limit]"] = str(offset + limit), str(limit)
        links["next"] = f"{base_url}{bottle.request.path}?{urlencode(query)}"
    return page, {"count": str(len(items))}, links


def create_sandbox_app(sandbox):
    app = bottle.Bottle()

    def base_url():
        parts = bottle.request.urlparts
        return f"{parts.scheme}://{parts.netloc}"

    def guard(reads=False, basic=False):
        """The shops the request may read (HTTP Basic only where `basic`: the shop's own REST reads)."""
        request = bottle.request
        if reads:
            with sandbox.lock:
                sandbox.reads += 1
                fault = sandbox.faults.pop(0) if sandbox.faults else None
            if fault is not None:
                status, retry_after = fault
                answer = _error(status, "Too Many Requests" if status == 429 else "Unavailable", "the sandbox was told "
                                "to fail this request (POST /sandbox/faults)")
                answer.set_header("Retry-After", str(retry_after))
                raise answer
        if reads and JSONAPI not in request.get_header("Accept", ""):
            raise _error(406, "Not Acceptable", f"send the header Accept: {JSONAPI}")
        if reads and not request.get_header("User-Agent"):
            raise _error(400, "Bad Request", "send a User-Agent header naming your app and a contact")
        header = request.get_header("Authorization")
        shops = sandbox.authorised_shops(header) if basic else (
            list(sandbox.shops.values()) if sandbox.check_token(header) else [])
        if not shops:
            raise _error(401, "Unauthorized", "the credentials are missing or wrong (send Authorization: Bearer "
                         "<token>, or HTTP Basic with the store's subdomain and password)")
        return shops

    def shop_or_404(account_id):
        for shop in guard(reads=True, basic=True):
            if shop.account_id == account_id:
                return shop
        raise _error(404, "Not Found", f"no account {account_id}")

    @app.post("/v1/webhooks")
    def register():
        guard()
        document = _json_object(b"null", '{"url": ..., "events": [...]}')
        url, events = document.get("url"), document.get("events")
        if not _valid_url(url):
            return _error(422, "Invalid webhook", "url must be an absolute http(s) URL", "/url")
        if not isinstance(events, list) or not events:
            return _error(422, "Invalid webhook", "events must be a non-empty list of event types", "/events")
        unknown = [e for e in events if e not in EVENT_TYPES]
        if unknown:
            return _error(422, "Invalid webhook", f"unknown event type(s) {', '.join(map(str, unknown))}; valid: "
                          f"{', '.join(EVENT_TYPES)}", "/events")
        return _json(sandbox.register(url, events), 201)

    @app.get("/v1/webhooks")
    def list_webhooks():
        guard()
        with sandbox.lock:
            return _json({"data": list(sandbox.webhooks.values())})

    @app.delete("/v1/webhooks/<webhook_id>")
    def unregister(webhook_id):
        guard()
        if not sandbox.unregister(webhook_id):
            return _error(404, "Not Found", f"no webhook {webhook_id}")
        return bottle.HTTPResponse(status=204)

    @app.get("/v1/accounts")
    def accounts():
        account = guard(reads=True, basic=True)[0].account  # (the token's first account, or the Basic shop's)
        return _json({"data": [{"id": account["id"], "type": "accounts",
                                "attributes": {k: v for k, v in account.items() if k not in ("id", "currency", "plan")},
                                "relationships": {"currency": {"data": {"id": account["currency"],
                                                                        "type": "currencies"}}}}],
                      "meta": {"count": "1"}})

    @app.get("/v1/accounts/<account_id>/orders")
    def orders(account_id):
        shop = shop_or_404(account_id)
        since, until = _time_param("filter[updated_at_from]"), _time_param("filter[updated_at_to]")
        status = bottle.request.query.get("filter[shipping_status]")
        sort = bottle.request.query.get("sort", "-created_at")
        descending = sort.startswith("-") or bottle.request.query.get("sort_direction", "").lower() == "desc"
        field = sort.lstrip("-")
        if field not in SORTABLE:
            return _error(400, "Invalid parameter", f"sort must be one of {', '.join(SORTABLE)}", "sort")
        with sandbox.lock:
            rows = [o for o in shop.orders.values()
                    if (since is None or o["updated_at"] >= since) and (until is None or o["updated_at"] <= until)
                    and (not status or o["shipping_status"] == status)]
            rows.sort(key=lambda o: (o[field], o["id"]), reverse=descending)
            page, meta, links = _page(rows, base_url())
            documents = [jsonapi_order(o) for o in page]
        included = {(i["type"], i["id"]): i for d in documents for i in d["included"]}
        return _json({"data": [d["data"] for d in documents], "included": list(included.values()), "meta": meta,
                      "links": links})

    @app.get("/v1/accounts/<account_id>/orders/<order_id>")
    def order(account_id, order_id):
        shop = shop_or_404(account_id)
        with sandbox.lock:
            found = shop.orders.get(order_id)
            if found is None:
                return _error(404, "Not Found", f"no order {order_id}")
            return _json(jsonapi_order(found))

    @app.get("/v1/accounts/<account_id>/products")
    def products(account_id):
        shop = shop_or_404(account_id)
        with sandbox.lock:
            rows = sorted(shop.products.values(), key=lambda p: p["position"])
            page, meta, links = _page(rows, base_url())
            documents = [jsonapi_product(p) for p in page]
        return _json({"data": [d["data"] for d in documents],
                      "included": [i for d in documents for i in d["included"]], "meta": meta, "links": links})

    # the control endpoints need the token too: a web page open in the developer's browser must not be able to make
    # the sandbox send signed events (a cross-origin request cannot set Authorization without a CORS preflight,
    # which the sandbox never grants)
    @app.post("/sandbox/events")
    def trigger():
        guard()
        document = _json_object(b"{}", '{"type": ..., "count": N}')
        event_type, count = document.get("type"), document.get("count", 1)
        if event_type not in EVENT_TYPES:
            return _error(422, "Invalid event", f"type must be one of {', '.join(EVENT_TYPES)}", "/type")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TRIGGER:
            return _error(422, "Invalid event", f"count must be a whole number from 1 to {MAX_TRIGGER}", "/count")
        shape, format = document.get("shape"), document.get("format")
        if shape not in (None, *SHAPES):
            return _error(422, "Invalid event", "shape must be flat or jsonapi", "/shape")
        if format not in (None, *FORMATS):
            return _error(422, "Invalid event", "format must be docs or guide", "/format")
        account_id = document.get("account_id")
        if account_id is not None and str(account_id) not in sandbox.shops:
            return _error(422, "Invalid event", f"account_id must be one of {', '.join(sandbox.shops)}",
                          "/account_id")
        return _json({"events": sandbox.trigger(event_type, count, shape=shape, format=format,
                                                account_id=account_id)}, 202)

    @app.get("/sandbox/deliveries")
    def deliveries():
        guard()
        state = bottle.request.query.get("state") or None
        raw_ids = bottle.request.query.get("event_ids")
        try:
            event_ids = {int(x) for x in raw_ids.split(",")} if raw_ids else None
        except ValueError:
            return _error(400, "Invalid parameter", "event_ids must be comma-separated numbers", "event_ids")
        return _json({"deliveries": sandbox.dispatcher.deliveries(event_ids=event_ids, state=state),
                      "counts": sandbox.dispatcher.counts()})

    add_oauth_routes(app, sandbox)

    @app.post("/sandbox/faults")
    def faults():
        guard()
        document = _json_object(b"{}", '{"status": 429, "count": N, "retry_after": S}')
        status, count, retry_after = document.get("status", 429), document.get("count", 1), document.get("retry_after", 1)
        if status not in (429, 500, 502, 503, 504) or not isinstance(count, int) or not 1 <= count <= 100:
            return _error(422, "Invalid fault", "status must be 429 or 5xx, count a whole number from 1 to 100")
        with sandbox.lock:
            sandbox.faults.extend([(status, retry_after)] * count)
        return _json({"faults": len(sandbox.faults)}, 202)

    @app.post("/sandbox/reset")
    def reset():
        guard()
        sandbox.reset()
        return _json({"status": "reset"})

    @app.get("/sandbox/healthz")
    def healthz():
        with sandbox.lock:
            return _json({"status": "ok", "webhooks": len(sandbox.webhooks), "events": len(sandbox.events),
                          "orders": sum(len(s.orders) for s in sandbox.shops.values()),
                          "shops": len(sandbox.shops), "reads": sandbox.reads,
                          "accounts": [{"id": s.account_id, "subdomain": s.account["subdomain"],
                                        "store_name": s.account["store_name"], "currency": s.account["currency"],
                                        "orders": len(s.orders)} for s in sandbox.shops.values()],
                          "deliveries": sandbox.dispatcher.counts()})

    def error_page(error):
        bottle.response.content_type = JSONAPI
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        title = titles.get(error.status_code, "Error")
        return json.dumps({"errors": [{"status": str(error.status_code), "title": title,
                                       "detail": f"{bottle.request.method} {bottle.request.path}: {title.lower()}"}]})

    for code in (400, 404, 405, 413, 500):
        app.error(code)(error_page)
    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class SandboxServer:
    """The sandbox on a background thread: `.url`, `.stop()`."""

    def __init__(self, sandbox, host="127.0.0.1", port=0, bind_wait=0.0):
        """`bind_wait`: seconds to keep trying a port still held (by a sandbox that is stopping); a port with only
        closed connections in TIME-WAIT binds at once (SO_REUSEADDR)."""
        self.sandbox = sandbox
        give_up = time.monotonic() + bind_wait
        while True:
            try:
                self.httpd = make_server(host, port, create_sandbox_app(sandbox), server_class=_ThreadingServer,
                                         handler_class=_QuietHandler)
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE or not port or time.monotonic() >= give_up:
                    raise
                time.sleep(0.1)
        self.port = self.httpd.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bchooks-sandbox", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop serving and delivering; returns the deliveries still pending (lost with the process)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        return self.sandbox.stop()
