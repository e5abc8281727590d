"""The webhook receiver: a Bottle app that verifies the raw body and commits it before answering 2xx.

`create_app(config, store)` builds the app (no module-level app). `POST {config.path}` answers:
200 stored/duplicate, 401 missing or wrong signature, 400 not JSON, 413 too large, 422 no `type`,
503 with `Retry-After` when the store cannot write. Errors are JSON; nothing stored is ever served.
"""

import json
from typing import Any
import logging
import time

import bottle

from .. import __version__
from ..errors import (BchooksError, BodyTooLarge, InvalidEnvelope, InvalidJSON, RequestError,
                     StoreUnavailable, UnstorableEvent, VerificationError)
from ..wire import parse_envelope
from .signing import Verifier
from ..config import Config
from ..store import Store, open_store

log = logging.getLogger("bchooks.receiver")

#: the one place errors become HTTP statuses (most specific class first)
HTTP_STATUS = (
    (BodyTooLarge, 413),
    (InvalidEnvelope, 422),
    (UnstorableEvent, 422),
    (InvalidJSON, 400),
    (RequestError, 400),
    (VerificationError, 401),
    (StoreUnavailable, 503),
    (BchooksError, 500),
)

_CHUNK = 65536


def status_for(error):
    return next(status for cls, status in HTTP_STATUS if isinstance(error, cls))


def error_response(error, config):
    """The JSON answer to an error, its status from `HTTP_STATUS`; a 503 says when to retry (`Retry-After`) and
    never the store's inner details."""
    status = status_for(error)
    if isinstance(error, StoreUnavailable):
        return json_response(status, {"error": error.code, "message": "the event could not be stored; retry later"},
                             **{"Retry-After": str(config.retry_after)})
    return json_response(status, {"error": error.code, "message": str(error)})


def json_response(status, payload, **headers):
    return bottle.HTTPResponse(json.dumps(payload, separators=(",", ":")), status=status,
                               headers={"Content-Type": "application/json", **headers})


def read_body(environ, limit):
    """The raw request body; `BodyTooLarge` as soon as it is known to exceed `limit` bytes."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH", "").strip()
    if declared:
        if not declared.isdigit():
            raise RequestError("the Content-Length header is not a number")
        length = int(declared)
        if length > limit:
            raise BodyTooLarge(f"the body is {length} bytes; the limit is {limit}")
    elif environ.get("wsgi.input_terminated"):
        length = None  # chunked: read to the end, but never more than limit + 1
    else:
        return b""
    parts, size = [], 0
    while length is None or size < length:
        want = _CHUNK if length is None else min(_CHUNK, length - size)
        chunk = stream.read(want)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is more than {limit} bytes, the limit")
    if length is not None and size < length:
        raise RequestError("the body ended before Content-Length bytes arrived")
    return b"".join(parts)


def create_app(config: Config, store: Store | None = None, *, appender: Any = None, verifier: Verifier | None = None,
               store_events: bool = True, metrics: Any = None, metrics_endpoint: Any = None) -> "AccessLog":
    """The receiver as a WSGI app. `store` defaults to the config's database; `appender` (default: the store)
    takes the verified events, e.g. a `committer.GroupCommitter` around the store. `metrics` (a
    `bchooks.metrics.ReceiverMetrics`) counts the webhook requests; `metrics_endpoint` (a `MetricsEndpoint`) is
    served at `config.metrics`.

    `store_events=False` is for measurement only (`serve --no-store`): verified events are answered 200 with
    `"stored": false` and not kept."""
    verifier = verifier or Verifier(config.secrets)
    store = store if store is not None else open_store(config)
    appender = appender if appender is not None else store
    app = bottle.Bottle()
    app.config["bchooks.store"] = store

    def reject(error, environ, size):
        try:
            store.record_rejection(error.code, path=environ.get("PATH_INFO"), remote_addr=environ.get("REMOTE_ADDR"),
                                   size=size)
        except BchooksError as failure:
            log.warning("could not record a rejection: %s", failure)
        environ["bchooks.reason"] = error.code
        return error_response(error, config)

    @app.post(config.path)
    def receive():
        environ = bottle.request.environ
        size = None
        try:
            body = read_body(environ, config.max_body)
            size = len(body)
            signature = verifier.verify_request(body, environ)
            envelope = parse_envelope(body)
        except (RequestError, VerificationError) as error:
            if size is None and isinstance(error, BodyTooLarge):
                size = int(environ.get("CONTENT_LENGTH") or 0) or None
            return reject(error, environ, size)
        environ["bchooks.event_type"] = envelope.type
        if not store_events:
            environ["bchooks.outcome"] = "verified"
            return json_response(200, {"status": "verified", "stored": False})
        try:
            result = appender.append(body, envelope, signature_header=signature,
                                  remote_addr=environ.get("REMOTE_ADDR"))
        except BchooksError as error:  # (503 for a store that cannot write now, 422 for an unstorable row)
            environ["bchooks.reason"] = error.code
            log.error("not stored, answered %d: %s", status_for(error), error)
            return error_response(error, config)
        environ["bchooks.event_id"] = result.id
        environ["bchooks.outcome"] = "duplicate" if result.duplicate else "stored"
        return json_response(200, {"status": "duplicate" if result.duplicate else "stored", "id": result.id})

    @app.route("/healthz", method=["GET", "HEAD"])
    def healthz():
        try:  # (on the read connection: a writer holding its turn does not delay the answer)
            count = store.count()
        except BchooksError as error:
            return json_response(503, {"status": "unavailable", "store": error.code, "message": str(error)})
        problem = store.check_files(timeout=0)
        if problem:
            log.error("health check: %s", problem)
            return json_response(503, {"status": "unavailable", "store": "files_changed", "message": problem,
                                       "events": count})
        return json_response(200, {"status": "ok", "store": "ok", "version": __version__, "events": count,
                                   "engine": store.engine, "schema": store.schema_version(), "path": config.path})

    def error_page(error):
        bottle.response.content_type = "application/json"
        if error.status_code == 404:
            body = {"error": "not_found", "message": f"no such endpoint: {bottle.request.path}"}
        elif error.status_code == 405:
            bottle.response.set_header("Allow", error.headers.get("Allow", "") if error.headers else "")
            body = {"error": "method_not_allowed",
                    "message": f"{bottle.request.method} is not allowed on {bottle.request.path}"}
        else:
            if error.traceback:
                log.error("internal error on %s %s\n%s", bottle.request.method, bottle.request.path, error.traceback)
            body = {"error": "internal_error", "message": "the receiver failed; see its log"}
        return json.dumps(body, separators=(",", ":"))

    if metrics_endpoint is not None and config.metrics:
        @app.route(config.metrics, method=["GET", "HEAD"])
        def metrics_page():
            status, headers, body = metrics_endpoint.answer(bottle.request.environ)
            return bottle.HTTPResponse(body, status=status, headers=dict(headers))

    for code in (400, 404, 405, 413, 500):
        app.error(code)(error_page)
    return AccessLog(app, observe=metrics.observe_request if metrics is not None else None)


def _printable(text, limit=100):
    """Sender-controlled text made safe for one log line."""
    return str(text).encode("unicode_escape").decode("ascii")[:limit]


class AccessLog:
    """WSGI middleware: one log line per request (method, path, status, event type, id, duration), and the same to
    `observe(environ, status, seconds)` (the metrics) when given."""

    def __init__(self, app, observe=None):
        self.app = app
        self.observe = observe

    @property
    def store(self):
        return self.app.config["bchooks.store"]

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, recording_start_response)
        finally:
            if self.observe is not None:
                try:
                    self.observe(environ, seen.get("status", "500"), time.perf_counter() - started)
                except Exception as error:  # (a metric never fails a request)
                    log.warning("metrics: not recorded: %s", error)
            log.info("%s %s %s type=%s id=%s%s %.1fms", environ.get("REQUEST_METHOD"),
                     _printable(environ.get("PATH_INFO")), seen.get("status", "-"),
                     _printable(environ.get("bchooks.event_type", "-")),
                     environ.get("bchooks.event_id", "-"),
                     f" reason={environ['bchooks.reason']}" if "bchooks.reason" in environ else "",
                     (time.perf_counter() - started) * 1000)
