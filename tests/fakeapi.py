"""An emulation of Big Cartel's read API written from its documentation, answering badly on purpose: a real HTTP
server process for the poller's fault tests (`python tests/fakeapi.py` prints its port, then serves until killed).

One shop (account "1"). The test loads its orders and products and the faults with `POST /_control`:
  cap                largest page the API honours (default 100)
  included           list answers carry `included` (default true)
  links              answers carry links.next and meta.count (default true)
  exclusive_from     `filter[updated_at_from]` is exclusive (default inclusive)
  hooks              [{"resource": "orders"|"products", "offset": N, "do": {...}}]: before answering the first
                     list request of that resource at offset >= N, do it: {"update": ID, "at": TIME} or
                     {"delete": ID}
  redirect           answer every request 302 to this base URL (another host)
  retry_after        answer every request 429 with this Retry-After
  trickle            seconds between two bytes of every answer's body
  repeat             the orders list answers the same full page with links.next, whatever the offset
  raw_orders         JSON texts listed first among the orders, as they are (malformed resources)
  products_answer    a raw JSON text answered for the products list instead of the catalogue
  orders_answer      a raw JSON text answered for the orders list
`GET /_control/log` lists the requests' paths and queries.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATE = {"orders": {}, "products": [], "options": {}, "log": [], "fired": set()}
LOCK = threading.Lock()


def _time(text):
    return text.replace("Z", "+00:00")


def _sorted_orders():
    return sorted(STATE["orders"].values(), key=lambda o: (o["attributes"]["updated_at"], o["id"]))


def _fire(resource, offset):
    for number, hook in enumerate(STATE["options"].get("hooks", [])):
        if hook["resource"] == resource and offset >= hook["offset"] and number not in STATE["fired"]:
            STATE["fired"].add(number)
            do = hook["do"]
            if "update" in do:
                STATE["orders"][do["update"]]["attributes"]["updated_at"] = do["at"]
            if "delete" in do:
                STATE["products"] = [p for p in STATE["products"] if p["id"] != do["delete"]]


class Raw:
    """A resource in the list as raw JSON text (malformed on purpose), at its place."""

    def __init__(self, text):
        self.text = text


def _included(resources):
    out = []
    for resource in resources:
        if isinstance(resource, dict):
            out.extend(resource.get("_included", []))
    return out


def _public(resource):
    return {k: v for k, v in resource.items() if k != "_included"} if isinstance(resource, dict) else resource


def _list(resource, rows, query, base):
    options = STATE["options"]
    limit = min(int(query.get("page[limit]", ["20"])[0]), options.get("cap", 100))
    offset = int(query.get("page[offset]", ["0"])[0])
    page = rows[offset:offset + limit]
    answer = {"data": [_public(r) for r in page]}
    if options.get("included", True):
        answer["included"] = _included(page)
    if options.get("links", True):
        answer["meta"] = {"count": str(len(rows))}
        answer["links"] = {}
        if offset + limit < len(rows):
            answer["links"]["next"] = f"{base}?page[offset]={offset + limit}&page[limit]={limit}"
    return answer


def _reply(status, body, headers=()):
    return status, body, list(headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        trickle = STATE["options"].get("trickle")
        if trickle and not self.path.startswith("/_control"):
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(trickle)
        else:
            self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        document = json.loads(self.rfile.read(length))
        with LOCK:
            STATE["orders"] = {o["id"]: o for o in document.get("orders", [])}
            STATE["products"] = list(document.get("products", []))
            STATE["options"] = document.get("options", {})
            STATE["fired"] = set()
            STATE["log"] = []
        self._answer(200, {"ok": True})

    def do_GET(self):  # noqa: N802
        with LOCK:
            status, body, headers = self._read()
        self._answer(status, body, headers)

    def _read(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/_control/log":
            return _reply(200, {"log": STATE["log"]})
        if parts.path == "/_control/state":
            if True:
                return _reply(200, {"orders": STATE["orders"], "products": STATE["products"]})
        if True:
            STATE["log"].append(self.path)
            options = STATE["options"]
            if options.get("redirect"):
                return _reply(302, b"", [("Location", options["redirect"] + self.path)])
            if options.get("retry_after") is not None:
                return _reply(429, {"errors": [{"title": "slow down"}]},
                                    [("Retry-After", str(options["retry_after"]))])
            segments = parts.path.strip("/").split("/")
            if segments == ["v1", "accounts"]:
                return _reply(200, {"data": [{"id": "1", "type": "accounts",
                                                    "attributes": {"store_name": "Fake", "subdomain": "fake"}}]})
            if segments[:3] != ["v1", "accounts", "1"] or len(segments) < 4:
                return _reply(404, {"errors": [{"title": "Not found"}]})
            offset = int(query.get("page[offset]", ["0"])[0])
            if segments[3] == "orders" and len(segments) == 4:
                if "orders_answer" in options:
                    return _reply(200, options["orders_answer"].encode())
                _fire("orders", offset)
                rows = _sorted_orders()
                since = query.get("filter[updated_at_from]", [None])[0]
                if since:
                    exclusive = options.get("exclusive_from", False)
                    rows = [o for o in rows if (_time(o["attributes"]["updated_at"]) > _time(since) if exclusive
                                                else _time(o["attributes"]["updated_at"]) >= _time(since))]
                if options.get("repeat"):
                    answer = {"data": [_public(o) for o in rows[:int(query["page[limit]"][0])]],
                              "included": _included(rows), "links": {"next": "again"}}
                    return _reply(200, answer)
                raw = [Raw(text) for text in options.get("raw_orders", []) if not since]  # (dated before any cursor)
                answer = _list("orders", raw + rows, query, parts.path)
                if raw:
                    data = ",".join(r.text if isinstance(r, Raw) else json.dumps(r) for r in answer["data"])
                    answer["data"] = []
                    return _reply(200, json.dumps(answer).replace('"data": []', f'"data": [{data}]', 1).encode())
                return _reply(200, answer)
            if segments[3] == "orders" and len(segments) == 5:
                order = STATE["orders"].get(segments[4])
                if order is None:
                    return _reply(404, {"errors": [{"title": "Not found"}]})
                return _reply(200, {"data": _public(order), "included": order.get("_included", [])})
            if segments[3] == "products" and len(segments) == 4:
                if "products_answer" in options:
                    return _reply(200, options["products_answer"].encode())
                _fire("products", offset)
                return _reply(200, _list("products", STATE["products"], query, parts.path))
            if segments[3] == "products" and len(segments) == 5:
                for product in STATE["products"]:
                    if product["id"] == segments[4]:
                        return _reply(200, {"data": _public(product), "included": product.get("_included", [])})
                return _reply(404, {"errors": [{"title": "Not found"}]})
        return _reply(404, {"errors": [{"title": "Not found"}]})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
