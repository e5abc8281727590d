"""Delivering alerts: one notification an evaluation through apprise (`bchooks.notify.send`), within a bounded
time, and the heartbeat: a plain GET of a push URL while all is well. Neither ever raises: a failure comes back
as one line without any secret."""

import logging
from collections.abc import Callable
from typing import Any

from ..errors import BchooksError
from ..secrecy import printable, redact

log = logging.getLogger("bchooks.alerts")

#: the longest one evaluation's notification may take, in seconds (apprise abandons services still going)
SEND_TIMEOUT = 20.0
#: seconds the heartbeat's GET may take
PING_TIMEOUT = 5.0

Sender = Callable[[str, str, str], Any]


def apprise_sender(urls: str, timeout: float | None = None) -> Sender:
    """A sender to the apprise URLs of BCHOOKS_NOTIFY_URLS: `send(urls, title, body)`, each send given up after
    `timeout` seconds (default SEND_TIMEOUT)."""
    def send(urls: str, title: str, body: str) -> Any:
        from .. import notify
        return notify.send(urls, title, body, timeout=SEND_TIMEOUT if timeout is None else timeout)
    return send


def deliver(send: Sender, urls: str, title: str, body: str) -> str | None:
    """Send; None when every place was reached, else what went wrong in one redacted line."""
    try:
        send(urls, title, body)
    except BchooksError as error:
        return printable(redact(str(error)), 500)
    except Exception as error:  # noqa: BLE001 (a channel's defect must never stop the evaluations)
        return printable(redact(f"{type(error).__name__}: {error}"), 500)
    return None


def ping(url: str, timeout: float = PING_TIMEOUT) -> str | None:
    """GET the heartbeat URL; None when it answered 2xx or 3xx, else why not (never the URL: it holds a token)."""
    import requests
    try:
        answer = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as error:
        return f"the heartbeat URL could not be reached ({type(error).__name__})"
    if answer.status_code >= 400:
        return f"the heartbeat URL answered {answer.status_code}"
    return None
