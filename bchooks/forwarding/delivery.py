"""One stored event to one target: a POST of its exact stored bytes, signed as the target asks, retried while
the target is down or failing.

Retried: no answer (connection refused or reset, a timeout), 5xx, and 429 (the target asks to slow down). Not
retried: any other 4xx (the target answered, and will answer the same), and an event that cannot be signed in the
chosen mode. Each retry waits twice as long as the one before (`backoff`, then doubled, at most `max_backoff`);
a Standard Webhooks signature is made again for every attempt (its timestamp must be fresh).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from ..errors import BchooksError
from ..secrecy import printable, redact, url_without_credentials
from ..store import StoredEvent
from .signatures import EVENT_ID_HEADER, EVENT_TYPE_HEADER, Signer


@dataclass(frozen=True)
class Target:
    """Where events are forwarded and how: the URL (it may hold credentials: shown as `shown`), the signing
    headers, the time allowed for one answer, and the retries (their number, first wait and longest wait)."""

    url: str
    sign: Signer
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0

    @property
    def shown(self) -> str:
        """The URL without user, password or query: how it is printed, logged and kept in the store."""
        return url_without_credentials(self.url)

    def __repr__(self) -> str:
        return f"Target({self.shown!r})"

    def wait_before(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 for the first)."""
        return min(self.max_backoff, self.backoff * 2 ** (retry - 1))


@dataclass(frozen=True)
class Delivery:
    """What became of one event: the last answer's status (None when none came), how many attempts, the last
    attempt's time in milliseconds, why it failed (empty on success), and whether it could be sent at all (an
    event that cannot be signed in the target's mode is not)."""

    event_id: int
    status: int | None
    attempts: int
    latency_ms: float
    error: str = ""
    sendable: bool = True

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def final(self) -> bool:
        """Whether trying again would change nothing: an answer that is not retried, or an unsendable event."""
        return not self.sendable or not retryable(self.status)

    @property
    def reason(self) -> str:
        """How a failure is counted: its status code, or what happened instead of an answer."""
        return str(self.status) if self.status is not None else self.error


def retryable(status: int | None) -> bool:
    """Whether an attempt that ended this way is tried again: no answer, 5xx, or 429."""
    return status is None or status >= 500 or status == 429


def _describe(failure: requests.RequestException) -> str:
    if isinstance(failure, requests.Timeout):
        return "timed out"
    if isinstance(failure, requests.ConnectionError):
        return "connection failed"
    return type(failure).__name__


def attempt(session: requests.Session, target: Target, event: StoredEvent) -> tuple[int | None, float, str]:
    """One POST of the event's stored bytes; (status or None, milliseconds, error text). Never raises for the
    network or the target; `BchooksError` for an event that cannot be signed in the target's mode."""
    body = bytes(event.body)
    headers = {"Content-Type": "application/json", "User-Agent": "bchooks-forward",
               EVENT_ID_HEADER: str(event.id), EVENT_TYPE_HEADER: event.type, **target.sign(event, body)}
    started = time.perf_counter()
    try:
        reply = session.post(target.url, data=body, headers=headers, timeout=target.timeout, allow_redirects=False)
    except requests.RequestException as failure:
        return None, (time.perf_counter() - started) * 1000, _describe(failure)
    elapsed = (time.perf_counter() - started) * 1000
    error = "" if 200 <= reply.status_code < 300 else printable(redact(reply.text), 200)
    return reply.status_code, elapsed, error


def deliver(session: requests.Session, target: Target, event: StoredEvent, *, retries: int | None = None,
            stop: threading.Event | None = None,
            on_retry: Callable[[StoredEvent, int | None, str, float], None] | None = None) -> Delivery:
    """Send `event` to `target`, retrying what may pass later up to `retries` times (default the target's;
    -1: without end, the waits capped at its `max_backoff`) unless `stop` is set. `on_retry(event, status,
    error, wait)` is told before each wait."""
    retries = target.retries if retries is None else retries
    tries = 0
    while True:
        tries += 1
        try:
            status, latency, error = attempt(session, target, event)
        except BchooksError as refused:
            return Delivery(event.id, None, tries, 0.0, f"not sent: {refused}", sendable=False)
        if not retryable(status) or (retries >= 0 and tries > retries) or (stop is not None and stop.is_set()):
            return Delivery(event.id, status, tries, latency, error)
        wait = target.wait_before(tries)
        if on_retry is not None:
            on_retry(event, status, error, wait)
        if (stop or threading.Event()).wait(wait):
            return Delivery(event.id, status, tries, latency, error)
