"""A local Big Cartel: the webhook registration contract, the REST reads, and signed event delivery.

`Sandbox` (sandbox_model.py) holds the state (simulated `Shop`s, registered webhooks, a delivery `Dispatcher`);
`create_sandbox_app(sandbox)` is its Bottle app; `SandboxServer` serves it on a thread. Errors are JSON:API
`{"errors": [{"status", "title", "detail", "source"}]}`. Orders can be changed and shipped (`PATCH
.../orders/{id}`, `POST .../orders/{id}/shipments`: `sandbox_writes.py`), each change delivered as the order's
`order.updated`. Each shop sells in one currency and may start with a year
of history (`history`: orders a year); with a `state` file, shops, webhooks, events and app tokens are saved there
after each change and come back when a sandbox starts with it (`sandbox_state.py`); deliveries still pending are
lost with the process.
"""

import errno
import json
import threading
import time
from socketserver import ThreadingMixIn
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle

from ..clock import iso, parse_iso
from ..wire import EVENT_TYPES, FORMATS, SHAPES
from .sandbox_model import CURRENCIES, DEFAULT_TOKEN, Sandbox
from .sandbox_oauth import _valid_url, add_oauth_routes
from .sandbox_writes import Invalid, add_shipment, update_order
from .shop import jsonapi_order, jsonapi_plan, jsonapi_product

__all__ = ["CURRENCIES", "DEFAULT_TOKEN", "Sandbox", "SandboxServer", "create_sandbox_app"]

JSONAPI = "application/vnd.api+json"
MAX_TRIGGER = 10000
SORTABLE = ("created_at", "updated_at", "completed_at")


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
        """The account, its `plan` relationship, and with `include=plan` the `plans` resource (its caps)."""
        account = guard(reads=True, basic=True)[0].account  # (the token's first account, or the Basic shop's)
        plan = jsonapi_plan(account["plan"])
        document = {"data": [{"id": account["id"], "type": "accounts",
                              "attributes": {k: v for k, v in account.items() if k not in ("id", "currency", "plan")},
                              "relationships": {"currency": {"data": {"id": account["currency"], "type": "currencies"}},
                                                "plan": {"data": {"id": plan["id"], "type": "plans"}}}}],
                    "meta": {"count": "1"}}
        if "plan" in bottle.request.query.get("include", "").split(","):
            document["included"] = [plan]
        return _json(document)

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

    def one(account_id, kind, resource_id, document):
        """One order or product of a shop as its JSON:API document; 404 when the shop has none of that id."""
        shop = shop_or_404(account_id)
        with sandbox.lock:
            found = getattr(shop, f"{kind}s").get(resource_id)
            if found is None:
                return _error(404, "Not Found", f"no {kind} {resource_id}")
            return _json(document(found))

    @app.get("/v1/accounts/<account_id>/orders/<order_id>")
    def order(account_id, order_id):
        return one(account_id, "order", order_id, jsonapi_order)

    @app.get("/v1/accounts/<account_id>/products")
    def products(account_id):
        shop = shop_or_404(account_id)
        with sandbox.lock:
            rows = sorted(shop.products.values(), key=lambda p: p["position"])
            page, meta, links = _page(rows, base_url())
            documents = [jsonapi_product(p) for p in page]
        return _json({"data": [d["data"] for d in documents],
                      "included": [i for d in documents for i in d["included"]], "meta": meta, "links": links})

    @app.get("/v1/accounts/<account_id>/products/<product_id>")
    def product(account_id, product_id):
        return one(account_id, "product", product_id, jsonapi_product)

    def write(account_id, order_id, change):
        """An API write to one order: 401 without valid credentials, 404 for an unknown shop or order, 400 (a
        JSON:API error naming the attribute) for a bad body; the change made, the answer held back when the
        sandbox was told to delay writes (POST /sandbox/faults with "delay")."""
        shops = guard(basic=True)
        shop = next((s for s in shops if s.account_id == account_id), None)
        if shop is None:
            return _error(404, "Not Found", f"no account {account_id}")
        try:
            document = json.loads(bottle.request.body.read() or b"null")
        except ValueError:
            document = None

        def checked(order, shipments, now):
            try:
                return change(order, shipments, document, now)
            except Invalid as error:
                raise _error(400, "Invalid attribute", error.detail, error.pointer) from None
        answer = sandbox.change_order(shop, order_id, checked)
        if answer is None:
            return _error(404, "Not Found", f"no order {order_id}")
        with sandbox.lock:
            delay = sandbox.write_delays.pop(0) if sandbox.write_delays else 0
        if delay:
            time.sleep(delay)
        return answer

    @app.route("/v1/accounts/<account_id>/orders/<order_id>", method="PATCH")
    def patch_order(account_id, order_id):
        def change(order, shipments, document, now):
            update_order(order, document, now)
            return _json(jsonapi_order(order))
        return write(account_id, order_id, change)

    @app.post("/v1/accounts/<account_id>/orders/<order_id>/shipments")
    def ship(account_id, order_id):
        def change(order, shipments, document, now):
            return _json({"data": add_shipment(order, shipments, document, now)}, 201)
        return write(account_id, order_id, change)

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

    @app.get("/sandbox/shipments")
    def shipments():
        """Every shipment made through the API, per shop and order (to count them)."""
        guard()
        with sandbox.lock:
            return _json({"shipments": [{"account_id": shop.account_id, "order_id": order_id, **shipment}
                                        for shop in sandbox.shops.values()
                                        for order_id, made in shop.shipments.items() for shipment in made]})

    @app.post("/sandbox/faults")
    def faults():
        """The next `count` REST reads answer `status` (429 or 5xx) with `retry_after`; or, with `delay` (seconds),
        the next `count` writes are made at once but answered only after that long (a slow API, a timeout)."""
        guard()
        document = _json_object(b"{}", '{"status": 429, "count": N, "retry_after": S} or {"delay": S, "count": N}')
        if "delay" in document:
            delay, count = document["delay"], document.get("count", 1)
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 < delay <= 600 \
                    or isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
                return _error(422, "Invalid fault", "delay must be seconds from 0 to 600, count a whole number "
                              "from 1 to 100")
            with sandbox.lock:
                sandbox.write_delays.extend([float(delay)] * count)
            return _json({"write_delays": len(sandbox.write_delays)}, 202)
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
