"""A client for the Big Cartel API (and the sandbox): webhook registration, account, orders.

Reads are retried with backoff on 429/5xx and connection failures; writes never are (a registration or a shipment
must not be sent twice blindly): a write that got no answer raises `WriteUnknown`, and the caller reads the
resource before trying again. Every failure is an `ApiError` whose message a person understands; the token never appears
in messages or `repr`.
"""

import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter

from .. import __version__
from ..errors import ApiError, BchooksError, InputError
from ..secrecy import printable
from . import basic_auth
from .walks import Document, Malformed, OrderWalk, document_of, walk_products
from ..wire import EVENT_TYPES

JSONAPI = "application/vnd.api+json"
USER_AGENT = f"bchooks/{__version__} (Big Cartel webhook kit; +https://pypi.org/project/bchooks/)"


def validate_webhook(url, events):
    """Check a registration before sending it; returns the events as a list."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise InputError(f"the webhook URL must be an absolute http(s) URL, got {url!r}")
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    events = list(events or [])
    if not events:
        raise InputError(f"choose at least one event type: {', '.join(EVENT_TYPES)}")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InputError(f"unknown event type {', '.join(unknown)}; valid: {', '.join(EVENT_TYPES)}")
    return events


def _detail(reply):
    """The API's own words from a JSON:API error body, if any: printable, one line, bounded."""
    return printable(_words(reply), limit=200)


def _words(reply):
    try:
        document = reply.json()
    except ValueError:
        return ""
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list):
        parts = [str(e.get("detail") or e.get("title") or "") for e in errors if isinstance(e, dict)]
        return "; ".join(p for p in parts if p)
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return document.get("message") or document["error"]
    return ""


class Stopped(BchooksError):
    """A request was abandoned because the caller asked to stop (SIGTERM, a stop button)."""

    code = "stopped"


class WriteUnknown(ApiError):
    """A write (PATCH, POST) that got no answer (a timeout, a dropped connection) or a 5xx: whether the API made the
    change is unknown. Never retried blindly: read the resource first (`fulfilment.ship` does)."""


class TooDeep(ApiError):
    """An answer nested too deeply to read (the other resources of its page are read one by one)."""


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BODY = 64 * 1024 * 1024  # bytes: an answer larger than this is refused, never read whole


def retry_after(reply) -> float | None:
    """The seconds a `Retry-After` header asks for (a number of seconds or an HTTP date), None without one."""
    value = (reply.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import datetime, timezone
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


class BigCartelClient:
    def __init__(self, api_url="https://api.bigcartel.com", token="", *, account_id="", receiver_url="",
                 timeout=10.0, retries=3, backoff=0.5, token_source="BCHOOKS_TOKEN", basic=None, deadline=None,
                 max_retry_after=60.0, stop=None):
        """`token` authorises as an OAuth app (Bearer); `basic` = (store subdomain, password) as the shop itself
        (HTTP Basic, personal use). `token_source` says where the credential came from, for the message when it is
        rejected ("the token given with --token", "the token typed in the panel"...).

        Every request ends within `deadline` seconds (default: three times `timeout`), however slowly the server
        answers; a read is tried `retries` more times on a connection failure, 429 or 5xx, waiting `backoff`
        doubling, or what `Retry-After` asks up to `max_retry_after` seconds (a longer wait fails the request).
        Setting the `stop` event (a `threading.Event`) ends any request or wait within about a tenth of a second
        with `Stopped`."""
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.token_source = token_source
        self._account_id = str(account_id or "")
        self.receiver_url = receiver_url
        self.timeout = timeout
        self.deadline = float(deadline) if deadline else 3 * timeout
        self.retries, self.backoff, self.max_retry_after = retries, backoff, max_retry_after
        self.stop = stop or threading.Event()
        self.session = requests.Session()
        self.session.headers.update({"Accept": JSONAPI, "User-Agent": USER_AGENT})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif basic:
            self.session.auth = basic_auth(*basic)
            self._token = "basic"
            if token_source == "BCHOOKS_TOKEN":
                self.token_source = f"the subdomain {basic[0]} and its store password"
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.mount("https://", HTTPAdapter(max_retries=0))

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> "BigCartelClient":
        return cls(config.api_url, config.token, account_id=config.account_id, receiver_url=config.webhook_url,
                   **kwargs)

    def __repr__(self):
        return f"BigCartelClient({self.api_url!r}, account_id={self._account_id or None!r})"

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transport
    def _wait(self, seconds):
        if self.stop.wait(seconds):
            raise Stopped("stopped while waiting to retry a request to the API")

    def _send(self, method, url, kwargs):
        """One attempt, on a thread of its own so that the caller can keep its deadline and hear a stop: the
        response with its body read, or the exception the attempt raised."""
        box: dict[str, Any] = {}
        done, abandoned = threading.Event(), threading.Event()

        def attempt():
            try:
                reply = self.session.request(method, url, timeout=self.timeout, stream=True, allow_redirects=False,
                                             **kwargs)
                chunks, size = [], 0
                try:
                    for chunk in reply.iter_content(65536):
                        if abandoned.is_set():
                            return
                        size += len(chunk)
                        if size > MAX_BODY:
                            box["error"] = ApiError(f"the API's answer to {method} {urlsplit(url).path} is larger "
                                                    f"than {MAX_BODY // 2 ** 20} MB: not read", url=url)
                            return
                        chunks.append(chunk)
                finally:
                    reply.close()
                reply._content, reply._content_consumed = b"".join(chunks), True
                box["reply"] = reply
            except BaseException as error:  # (handed to the caller's thread)
                box["error"] = error
            finally:
                done.set()
        started = time.monotonic()
        threading.Thread(target=attempt, name="bchooks-api-request", daemon=True).start()
        while not done.wait(0.05):
            if self.stop.is_set():
                abandoned.set()
                raise Stopped(f"stopped during a request to the API at {self.api_url}")
            if time.monotonic() - started > self.deadline:
                abandoned.set()
                raise requests.Timeout()
        if "error" in box:
            raise box["error"]
        return box["reply"]

    def request(self, method, path, *, webhooks=False, **kwargs):
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        if "json" in kwargs:
            kwargs.setdefault("headers", {})["Content-Type"] = JSONAPI
            kwargs["data"] = json.dumps(kwargs.pop("json"))
        tries = 1 + (self.retries if method in ("GET", "HEAD") else 0)
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                reply = self._send(method, url, kwargs)
            except requests.Timeout:
                if method not in ("GET", "HEAD"):
                    raise WriteUnknown(f"the API at {self.api_url} did not answer {method} {urlsplit(url).path} "
                                       f"within {self.deadline:g} s: the change may or may not have been made (read "
                                       f"it back before trying again)", url=url) from None
                if last:
                    raise ApiError(f"the API at {self.api_url} did not answer within {self.deadline:g} s",
                                   url=url) from None
                self._wait(self.backoff * 2 ** attempt)
                continue
            except requests.ConnectionError as error:
                if method not in ("GET", "HEAD") and not isinstance(error, requests.exceptions.ConnectTimeout) \
                        and "refused" not in str(error).lower():
                    raise WriteUnknown(f"the connection to the API at {self.api_url} broke during {method} "
                                       f"{urlsplit(url).path}: the change may or may not have been made (read it back "
                                       f"before trying again)", url=url) from None
                if last:
                    raise ApiError(f"cannot connect to the API at {self.api_url}: is the URL right and the server "
                                   f"up?", url=url) from None
                self._wait(self.backoff * 2 ** attempt)
                continue
            except requests.RequestException as error:
                raise ApiError(f"the request to {urlsplit(url).path} failed: {type(error).__name__}",
                               url=url) from None
            if reply.status_code in RETRY_STATUSES and not last:
                wait = retry_after(reply)
                if wait is not None and wait > self.max_retry_after:
                    raise ApiError(f"the API answered {reply.status_code} to {method} {urlsplit(url).path} and asked "
                                   f"to wait {wait:,.0f} s, more than the {self.max_retry_after:g} s this kit waits "
                                   f"(BCHOOKS_MAX_RETRY_AFTER): try again later", status=reply.status_code, url=url)
                self._wait(self.backoff * 2 ** attempt if wait is None else wait)
                continue
            break
        if 300 <= reply.status_code < 400:  # (never followed: another host would get no credentials, and its
            # unauthenticated answer must never be taken for the shop's)
            target = urlsplit(reply.headers.get("Location") or "")
            raise ApiError(f"the API answered {reply.status_code} to {method} {urlsplit(url).path}, redirecting to "
                           f"{target.scheme or 'a'}://{target.netloc or 'the same host'}: redirects are not followed; "
                           f"set the API URL to where it points", status=reply.status_code, url=url)
        if reply.ok:
            return reply
        detail = _detail(reply)
        status = reply.status_code
        if status == 401:
            credential = "subdomain or store password" if self.session.auth else "access token"
            message = (f"the API rejected the {credential} (401): check {self.token_source}" if self._token else
                       "the API needs an access token (401): set BCHOOKS_TOKEN")
        elif webhooks and status in (404, 405):
            message = (f"{self.api_url} offers no webhook registration ({status}): set your app's webhook URL in "
                       f"Big Cartel instead, to {self.receiver_url or 'your receiver URL'}; every event type arrives "
                       f"there (filter with handlers)")
        elif status == 404:
            message = f"not found (404): {method} {urlsplit(url).path}" + (f": {detail}" if detail else "")
        else:
            message = f"the API answered {status} to {method} {urlsplit(url).path}" + (f": {detail}" if detail else "")
        if status >= 500 and method not in ("GET", "HEAD"):
            raise WriteUnknown(message + " (the change may or may not have been made)", status=status,
                               details=detail, url=url)
        raise ApiError(message, status=status, details=detail, url=url)

    def _json(self, method, path, **kwargs):
        reply = self.request(method, path, **kwargs)
        try:
            return json.loads(reply.content) if reply.content else None
        except (ValueError, UnicodeDecodeError):
            raise ApiError(f"the API answered {method} {urlsplit(path).path} with something that is not JSON",
                           status=reply.status_code) from None
        except RecursionError:
            raise TooDeep(f"the API's answer to {method} {urlsplit(path).path} is nested too deeply to read",
                           status=reply.status_code) from None

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """A GET answer's JSON (None when empty); `ApiError` for any failure."""
        return self._json("GET", path, **kwargs)

    # -- webhooks
    def register_webhook(self, url: str, events: str | Iterable[str]) -> dict:
        events = validate_webhook(url, events)
        return self._json("POST", "/v1/webhooks", webhooks=True, json={"url": url, "events": events})

    def list_webhooks(self) -> list[dict]:
        document = self._json("GET", "/v1/webhooks", webhooks=True)
        if isinstance(document, dict):
            document = document.get("data", document.get("webhooks", []))
        return list(document or [])

    def unregister_webhook(self, webhook_id: str) -> None:
        if not str(webhook_id).strip():
            raise InputError("give the id of the webhook to unregister (see `bchooks webhooks`)")
        self.request("DELETE", f"/v1/webhooks/{webhook_id}", webhooks=False)

    def unregister_all(self, url: str | None = None) -> int:
        """Remove every webhook (only those pointing at `url`, when given); returns how many."""
        removed = 0
        for webhook in self.list_webhooks():
            if url is None or webhook.get("url") == url:
                self.unregister_webhook(webhook["id"])
                removed += 1
        return removed

    # -- reads
    def account(self) -> dict:
        document = self._json("GET", "/v1/accounts")
        data = document.get("data") if isinstance(document, dict) else None
        if not data:
            raise ApiError("the API returned no account for this token")
        return data[0]

    @property
    def account_id(self):
        if not self._account_id:
            self._account_id = str(self.account()["id"])
        return self._account_id

    def iter_orders(self, *, updated_since: str | None = None, updated_until: str | None = None,
                    page_size: int = 100, on_malformed: Malformed | None = None) -> Iterator[dict]:
        """Every order updated at or after `updated_since` (up to `updated_until`), oldest update first, as a
        JSON:API document (`data` and the `included` objects it points at); `walks.OrderWalk` says how no order is
        skipped. A malformed order goes to `on_malformed(kind, where, reason)` and the walk goes on."""
        for document in self.walk_orders(updated_since=updated_since, updated_until=updated_until,
                                         page_size=page_size, on_malformed=on_malformed):
            yield document.body

    def walk_orders(self, *, updated_since: str | None = None, updated_until: str | None = None,
                    page_size: int = 100, on_malformed: Malformed | None = None) -> Iterator[Document]:
        """As `iter_orders`, as `walks.Document`s (which say whether their relationships were all included)."""
        return iter(OrderWalk(self, f"/v1/accounts/{self.account_id}/orders", since=updated_since,
                              until=updated_until, page_size=page_size, on_malformed=on_malformed or _ignore))

    def iter_products(self, page_size: int = 100, on_malformed: Malformed | None = None) -> Iterator[dict]:
        """Every product as a JSON:API document (`data` and its `included` options), by position, page by page
        (the API has no updated-since filter for products: a walk reads the catalogue)."""
        for document in self.walk_products(page_size, on_malformed):
            yield document.body

    def walk_products(self, page_size: int = 100, on_malformed: Malformed | None = None) -> Iterator[Document]:
        return walk_products(self, f"/v1/accounts/{self.account_id}/products", page_size, on_malformed or _ignore)

    def get_order(self, order_id: str) -> dict:
        """One order as a JSON:API document (`data` and `included`)."""
        return self._json("GET", f"/v1/accounts/{self.account_id}/orders/{quote(str(order_id), safe='')}")

    def order_document(self, order_id: str) -> Document:
        """One order, checked (`ApiError` when malformed or not found)."""
        return document_of(self.get_order(order_id), "order")

    def product_document(self, product_id: str) -> Document:
        """One product, checked (`ApiError` when malformed; status 404 when the API has no such product)."""
        return document_of(self._json("GET", f"/v1/accounts/{self.account_id}/products/"
                                             f"{quote(str(product_id), safe='')}"), "product")

    # -- writes (never retried: `WriteUnknown` when no answer came)
    def update_order(self, order_id: str, attributes: dict) -> dict:
        """Change an order (`shipping_status`, the customer's name and e-mail, the shipping address fields):
        `PATCH .../orders/{id}`; the order's JSON:API document as the API answers it. A 4xx is an `ApiError` with
        the API's own words on one line."""
        path = f"/v1/accounts/{self.account_id}/orders/{quote(str(order_id), safe='')}"
        return self._json("PATCH", path, json={"data": {"id": str(order_id), "type": "orders",
                                                        "attributes": dict(attributes)}})

    def create_shipment(self, order_id: str, *, items: Iterable[tuple[str, int]], carrier: str | None = None,
                        tracking_number: str | None = None, tracking_url: str | None = None,
                        notify_customer: bool = False) -> dict:
        """Ship lines of an order (`items`: (order_line_item_id, quantity) pairs) with a carrier and tracking:
        `POST .../orders/{id}/shipments`; the API's answer (the shipment)."""
        attributes: dict[str, Any] = {"notify_customer": bool(notify_customer),
                                      "items": [{"order_line_item_id": str(line), "quantity": int(quantity)}
                                                for line, quantity in items]}
        attributes.update({k: v for k, v in (("carrier", carrier), ("tracking_number", tracking_number),
                                             ("tracking_url", tracking_url)) if v})
        path = f"/v1/accounts/{self.account_id}/orders/{quote(str(order_id), safe='')}/shipments"
        return self._json("POST", path, json={"data": {"type": "shipments", "attributes": attributes}})

    # -- the sandbox's own controls (not part of Big Cartel's API)
    def sandbox_trigger(self, event_type, count=1, *, shape=None, format=None):
        document = {"type": event_type, "count": count}
        document.update({k: v for k, v in (("shape", shape), ("format", format)) if v})
        return self._json("POST", "/sandbox/events", json=document)["events"]

    def sandbox_deliveries(self, event_ids=None):
        params = {"event_ids": ",".join(map(str, event_ids))} if event_ids else None
        return self._json("GET", "/sandbox/deliveries", params=params)["deliveries"]


def receiver_health(webhook_url, timeout=5.0):
    """The receiver's `/healthz` answer (found beside its webhook URL); `ApiError` when it is down."""
    parts = urlsplit(webhook_url)
    url = f"{parts.scheme}://{parts.netloc}/healthz"
    try:
        reply = requests.get(url, timeout=timeout)
    except requests.RequestException:
        raise ApiError(f"the receiver at {parts.scheme}://{parts.netloc} is not answering: is it running?",
                       url=url) from None
    try:
        document = reply.json()
    except ValueError:
        document = None
    if not reply.ok or not isinstance(document, dict) or "events" not in document:
        raise ApiError(f"the receiver at {parts.scheme}://{parts.netloc} answered {reply.status_code} to /healthz"
                       + (f": {document.get('message')}" if isinstance(document, dict) and "message" in document
                          else ""), status=reply.status_code, url=url)
    return document


def _ignore(kind: str, where: str, reason: str) -> None:
    pass
