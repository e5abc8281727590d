"""Notifications: a title, a few lines and attachments sent to every place `BCHOOKS_NOTIFY_URLS` names, through
apprise (e-mail, Slack, Discord, Telegram, ntfy...: one URL a place, see https://github.com/caronc/apprise/wiki).

    from bchooks import notify
    notify.send(config.notify_urls, "Weekly digest", "Revenue: $1,200.00", attachments=["digest.html"])

Apprise URLs hold passwords and tokens. Before anything is tried, each URL, its password and every part apprise
itself masks when it shows the URL are remembered as secrets (`secrecy.remember`), so every message the process
prints or logs is redacted. Apprise's own log never reaches the process's log or stderr: what it says about a
failure comes back inside the `NotifyError`, with the service's name and its URL as apprise masks it.
"""

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import ConfigError, InputError, NotifyError
from ..secrecy import redact, remember

__all__ = ["NotifyError", "check_urls", "send", "split_urls"]

#: the longest a whole send may take, in seconds (each service also has its own connect timeout)
SEND_TIMEOUT = 120.0
#: a comma starts a new URL only where a `scheme://` follows it (an e-mail URL's `to=a@x.com,b@y.com` stays whole)
_SEPARATOR = re.compile(r"\s+|,\s*(?=[a-zA-Z][a-zA-Z0-9+.-]*://)")
_WORDS = re.compile(r"[/?&=#@,;\s]+")


def split_urls(text: str | Iterable[str]) -> list[str]:
    """The apprise URLs of a setting: separated by spaces or commas (a comma followed by a `scheme://`); a list is
    taken as it is (empty entries dropped)."""
    parts = _SEPARATOR.split(text) if isinstance(text, str) else list(text)
    return [part.strip().rstrip(",") for part in parts if part and part.strip().rstrip(",")]


def _words(url: str) -> set[str]:
    """The pieces of a URL as apprise writes it (decoded), and each piece's parts around `:`."""
    words = {unquote(word) for word in _WORDS.split(url.split("://", 1)[-1]) if word}
    return words | {part for word in words for part in word.split(":")}


def _quiet_apprise() -> None:
    """Keep apprise's log out of the process's handlers and out of the last-resort stderr handler."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _apprise() -> Any:
    """apprise, its log kept off stderr (and without the DeprecationWarning of the `imghdr` its e-mail plugin
    imports when first used, on the Pythons that still have it)."""
    import contextlib
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        with contextlib.suppress(ImportError):
            import imghdr  # noqa: F401
        try:
            import apprise
        except ImportError:
            raise ConfigError("sending notifications needs apprise: pip install 'bchooks[digest]'") from None
    _quiet_apprise()
    return apprise


def check_urls(urls: str | Iterable[str]) -> list[Any]:
    """The apprise services of these URLs, their secrets remembered first. A URL apprise cannot read is a
    `ConfigError` naming its position and scheme only; no URL at all is a `ConfigError` too."""
    apprise = _apprise()
    found = split_urls(urls)
    remember(*found)
    if not found:
        raise ConfigError("no notification URL: set BCHOOKS_NOTIFY_URLS to one or more apprise URLs (see "
                          "docs/digest.md)")
    services = []
    for number, url in enumerate(found, start=1):
        service = apprise.Apprise.instantiate(url)
        if service is None:
            scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
            raise ConfigError(f"BCHOOKS_NOTIFY_URLS: URL {number} ({scheme[:20]}://...) is not one apprise can use: "
                              "check its scheme and parts against apprise's wiki")
        shown = _words(service.url(privacy=True))
        remember(*(word for word in _words(service.url()) if word not in shown))
        services.append(service)
    return services


def _shown(result: Any) -> str:
    """A service as a message names it: its name and its URL as apprise masks it, without user and query."""
    url = re.sub(r"://[^/@]*@", "://", str(result.url).split("?", 1)[0])  # (no user: it may be a token)
    return redact(f"{result.name} ({url})")


def _reason(result: Any) -> str:
    """What apprise said about a failed service: its last warning or error, else its status."""
    said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    return redact(said[-1]) if said else result.status.name.lower().replace("_", " ")


def send(urls: str | Iterable[str], title: str, body: str, attachments: Iterable[str | os.PathLike] = (),
         timeout: float = SEND_TIMEOUT) -> list[str]:
    """Send `title` and `body` (plain text) with `attachments` (files) to every URL; every service is tried, all
    within `timeout` seconds (a service still going then counts as failed).
    Returns the services reached (name and masked URL); raises `NotifyError` naming each service that failed and
    what it said (never a secret), `ConfigError` for URLs apprise cannot read, `InputError` for a missing file."""
    apprise = _apprise()
    services = check_urls(urls)
    files = [Path(path) for path in attachments]
    for path in files:
        if not path.is_file():
            raise InputError(f"cannot attach {path}: no such file")
    sender = apprise.Apprise()
    for service in services:
        sender.add(service)
    outcome = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
                            attach=[str(path) for path in files] or None, timeout=timeout)
    results = list(outcome)
    reached = [_shown(result) for result in results if result]
    failed = [f"{_shown(result)}: {_reason(result)}" for result in results if not result]
    if not results:
        failed = [f"nothing was sent ({outcome.status.name.lower()})"]
    if failed:
        sent = f" (sent to {', '.join(reached)})" if reached else ""
        raise NotifyError(redact(f"could not notify {'; '.join(failed)}{sent}"), reached=reached, failed=failed)
    return reached
