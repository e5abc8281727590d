"""A client for the Big Cartel API (and the sandbox): webhook registration, account, orders.

Reads are retried with backoff on 429/5xx and connection failures; writes never are (a registration must not be
sent twice blindly). Every failure is an `ApiError` whose message a person understands; the token never appears
in messages or `repr`.
"""

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __version__
from .errors import ApiError, InputError
from .wire import EVENT_TYPES

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
    """The API's own words from a JSON:API error body, if any."""
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


class BigCartelClient:
    def __init__(self, api_url="https://api.bigcartel.com", token="", *, account_id="", receiver_url="",
                 timeout=10.0, retries=3, backoff=0.5, token_source="BCHOOKS_TOKEN", basic=None):
        """`token` authorises as an OAuth app (Bearer); `basic` = (store subdomain, password) as the shop itself
        (HTTP Basic, personal use). `token_source` says where the credential came from, for the message when it is
        rejected ("the token given with --token", "the token typed in the panel"...)."""
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.token_source = token_source
        self._account_id = str(account_id or "")
        self.receiver_url = receiver_url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": JSONAPI, "User-Agent": USER_AGENT})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif basic:
            self.session.auth = requests.auth.HTTPBasicAuth(*basic)
            self._token = "basic"
            if token_source == "BCHOOKS_TOKEN":
                self.token_source = f"the store password of {basic[0]}"
        reads = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                      status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                      respect_retry_after_header=True, raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=reads))
        self.session.mount("https://", HTTPAdapter(max_retries=reads))

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
    def request(self, method, path, *, webhooks=False, **kwargs):
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        if "json" in kwargs:
            kwargs.setdefault("headers", {})["Content-Type"] = JSONAPI
            kwargs["data"] = json.dumps(kwargs.pop("json"))
        try:
            reply = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise ApiError(f"the API at {self.api_url} did not answer within {self.timeout:g} s", url=url) from None
        except requests.ConnectionError:
            raise ApiError(f"cannot connect to the API at {self.api_url}: is the URL right and the server up?",
                           url=url) from None
        except requests.RequestException as error:
            raise ApiError(f"the request to {url} failed: {type(error).__name__}", url=url) from None
        if reply.ok:
            return reply
        detail = _detail(reply)
        status = reply.status_code
        if status == 401:
            credential = "store password" if self.session.auth else "access token"
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
        raise ApiError(message, status=status, details=detail, url=url)

    def _json(self, method, path, **kwargs):
        reply = self.request(method, path, **kwargs)
        try:
            return reply.json() if reply.content else None
        except ValueError:
            raise ApiError(f"the API answered {method} {path} with something that is not JSON",
                           status=reply.status_code) from None

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
                    page_size: int = 100) -> Iterator[dict]:
        """Every order updated at or after `updated_since` (up to `updated_until`), oldest update first, as a
        JSON:API document (`data` and the `included` objects it points at).

        Pages are keyed by time, not by offset: each page starts at the newest `updated_at` of the one before
        (orders already read at that very time are skipped). An order updated while the walk is under way moves to
        its end and is read there; with offsets it could slip into a page already read and be missed. Only a
        page whose orders all share one `updated_at` is followed by offset, within that time."""
        since, offset = updated_since, 0
        seen: set[tuple] = set()
        while True:
            params: dict[str, Any] = {"page[limit]": page_size, "page[offset]": offset, "sort": "updated_at",
                                      "sort_direction": "asc"}
            if since:
                params["filter[updated_at_from]"] = since
            if updated_until:
                params["filter[updated_at_to]"] = updated_until
            document = self._json("GET", f"/v1/accounts/{self.account_id}/orders", params=params)
            orders = document.get("data", [])
            index = {(i.get("type"), i.get("id")): i for i in document.get("included", [])}
            for order in orders:
                if (order.get("id"), _updated(order)) not in seen:
                    yield {"data": order, "included": related(order, index)}
            if len(orders) < page_size or not (document.get("links") or {}).get("next"):
                return
            last = _updated(orders[-1])
            if last is None or last == since:  # a whole page at one time: go on by offset within it
                offset += page_size
            else:
                since, offset = last, 0
                seen.clear()
            seen |= {(order.get("id"), last) for order in orders if _updated(order) == last}

    def iter_products(self, page_size: int = 100) -> Iterator[dict]:
        """Every product as a JSON:API document (`data` and its `included` options), by position, page by page
        (the API has no updated-since filter for products: a walk reads the catalogue)."""
        offset = 0
        while True:
            document = self._json("GET", f"/v1/accounts/{self.account_id}/products",
                                  params={"page[limit]": page_size, "page[offset]": offset})
            products = document.get("data", [])
            index = {(i.get("type"), i.get("id")): i for i in document.get("included", [])}
            for product in products:
                yield {"data": product, "included": related(product, index)}
            if len(products) < page_size or not (document.get("links") or {}).get("next"):
                return
            offset += page_size

    def get_order(self, order_id: str) -> dict:
        """One order as a JSON:API document (`data` and `included`)."""
        return self._json("GET", f"/v1/accounts/{self.account_id}/orders/{order_id}")

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


def _updated(resource):
    attributes = resource.get("attributes")
    return attributes.get("updated_at") if isinstance(attributes, dict) else None


def related(resource, index):
    """The `included` objects a JSON:API resource's relationships point at, in relationship order."""
    found = []
    for relationship in (resource.get("relationships") or {}).values():
        data = relationship.get("data") if isinstance(relationship, dict) else None
        for ref in data if isinstance(data, list) else [data] if isinstance(data, dict) else []:
            item = index.get((ref.get("type"), ref.get("id")))
            if item is not None and item not in found:
                found.append(item)
    return found
