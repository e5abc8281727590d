"""`/metrics`: the token check, and the exposition of every worker's counts with the store's gauges.

`MetricsEndpoint.answer(environ)` is one scrape; the receiver serves it on its own port (`BCHOOKS_METRICS`), or
`MetricsServer` serves it on an address of its own from `serve`'s main process (`BCHOOKS_METRICS_ADDRESS`), beside
the workers, off the public path. With `BCHOOKS_METRICS_TOKEN` set, only `Authorization: Bearer <token>` is
answered; anything else gets a 401 in the receiver's JSON form. The output holds counts, statuses, error codes and
shops' account ids: never a secret, a path or a URL.
"""

import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..errors import CannotServe
from .directory import MetricsDirectory
from .gauges import StoreGauges

log = logging.getLogger("bchooks.metrics")

Answer = tuple[int, list[tuple[str, str]], bytes]


def _json(status: int, code: str, message: str, **headers: str) -> Answer:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    return status, [("Content-Type", "application/json"), *headers.items()], body


def authorized(environ: dict, token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (always, when no token is set)."""
    if not token:
        return True
    scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class MetricsEndpoint:
    """One scrape: the workers' files in `directory` summed (or `instruments`' own registry, in one process), the
    store's gauges read now, behind `token`."""

    def __init__(self, store: Any, *, token: str = "", directory: MetricsDirectory | None = None,
                 instruments: Any = None, gauges: StoreGauges | None = None) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        self.token = token
        self.directory = directory
        self.registry = CollectorRegistry(auto_describe=False)
        if directory is not None:
            MultiProcessCollector(self.registry, path=directory.path)
        elif instruments is not None and instruments.registry is not None:
            self.registry = instruments.registry
        self.gauges = gauges or StoreGauges(store)
        self.registry.register(self.gauges)

    def __repr__(self) -> str:
        return f"MetricsEndpoint(directory={self.directory!r}, token={'set' if self.token else 'none'})"

    def answer(self, environ: dict) -> Answer:
        """(status, headers, body) of a GET of the metrics."""
        if not authorized(environ, self.token):
            return _json(401, "unauthorized", "the metrics need Authorization: Bearer <BCHOOKS_METRICS_TOKEN>",
                         **{"WWW-Authenticate": 'Bearer realm="bchooks metrics"'})
        from prometheus_client.exposition import choose_encoder
        if self.directory is not None:
            self.directory.sweep()
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        try:
            body = encoder(self.registry)
        except FileNotFoundError:  # a dead worker's file dropped between listing and reading it: read them again
            body = encoder(self.registry)
        return 200, [("Content-Type", content_type)], body


def metrics_app(endpoint: MetricsEndpoint, path: str) -> Callable:
    """A WSGI app answering `endpoint` at `path` (GET, HEAD) and 404/405 in JSON elsewhere."""

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        if environ.get("PATH_INFO") != path:
            status, headers, body = _json(404, "not_found", f"the metrics are at {path}")
        elif environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, headers, body = _json(405, "method_not_allowed", "the metrics answer GET",
                                          Allow="GET, HEAD")
        else:
            status, headers, body = endpoint.answer(environ)
        reasons = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
        start_response(f"{status} {reasons.get(status, '')}".strip(), [*headers,
                                                                         ("Content-Length", str(len(body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of a `host:port` setting (an IPv6 host written in brackets)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class MetricsServer:
    """The metrics on an address of their own, served by threads of `serve`'s main process (prometheus_client's
    own WSGI server class); `stop()` ends it."""

    def __init__(self, endpoint: MetricsEndpoint, address: str, path: str) -> None:
        from prometheus_client.exposition import ThreadingWSGIServer
        host, port = split_address(address)

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self.httpd: WSGIServer = make_server(host, port, metrics_app(endpoint, path), Server,
                                                 handler_class=_Quiet)
        except OSError as error:
            raise CannotServe(f"cannot serve the metrics on {address}: {error.strerror or error}") from None
        self.url = f"http://{address}{path}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="bchooks-metrics-server", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r})"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
