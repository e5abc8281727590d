"""Keeping secrets out of text: what is stored (a handler's last error), logged, printed or shown in a panel.

The process keeps one registry of the secrets it knows (`remember`): the configuration's signing secrets, token,
chat webhook URL and database password (`Config.load` remembers them), shops' passwords and tokens, an app's
client secret and the tokens it gets. `redact(text)` replaces every one of them, and the credentials of any URL
(`scheme://user:password@host`), by `[redacted]`, whatever produced the text: it runs where errors become text
(the CLI's one line, the log handlers' `RedactingFilter`, the panels' status line). `printable(text)` makes text
that came from the network (an OAuth error, an API's description) one bounded line without control characters.
"""

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s@:]*)(?P<password>:[^/\s@]*)?@")
#: the shortest value kept in the registry: shorter ones would blank ordinary words out of every message
SHORTEST = 4

_known: set[str] = set()
_known_pieces: tuple[str, ...] = ()  # what `redact` hides for them, longest first (kept ready: logs call it often)
_known_lock = threading.Lock()


def _pieces(secret):
    """The texts to hide for one secret value: itself, and for a URL its path and query too."""
    yield secret
    if "://" in secret:
        try:
            parts = urlsplit(secret)
        except ValueError:
            return
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail.strip("/")) >= 8:  # a key-bearing path, not "/" or "/hooks"
            yield tail


def url_passwords(url: str) -> tuple[str, ...]:
    """The password(s) inside a URL as written and decoded, found even when the URL does not parse (a literal `%`
    or space in it, an unclosed `[`): the text between `://user:` and the last `@` of its authority, and a
    `password=` query parameter."""
    text = str(url)
    found = []
    if "://" in text:
        rest = text.split("://", 1)[1]
        authority = rest.rsplit("@", 1)[0] if "@" in rest else ""
        if ":" in authority:
            found.append(authority.split(":", 1)[1])
        for match in re.finditer(r"[?&](?:ssl)?password=([^&#]*)", rest):
            found.append(match.group(1))
    values = [value for raw in found for value in (raw, unquote(raw), unquote(raw.replace("+", " "))) if value]
    return tuple(dict.fromkeys(values))


def remember(*values: str) -> None:
    """Add secret values to the process's registry (empty and very short ones are ignored); a URL given is a
    secret as a whole (a chat webhook's), and its password is remembered too."""
    pieces = set()
    for value in values:
        if not value:
            continue
        value = str(value)
        pieces.add(value)
        if "://" in value:
            pieces.update(url_passwords(value))
    global _known_pieces
    with _known_lock:
        _known.update(piece for piece in pieces if len(piece) >= SHORTEST)
        _known_pieces = _sorted_pieces(_known)


def _sorted_pieces(secrets):
    return tuple(sorted({piece for secret in secrets if secret and len(secret) >= SHORTEST
                         for piece in _pieces(str(secret))}, key=len, reverse=True))


def url_credentials(url: str) -> tuple[str, ...]:
    """What in an http(s) URL may be a credential: its user and password (as written and decoded) and its query's
    values (an API key in `?token=`)."""
    found = list(url_passwords(url))
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return tuple(found)
    if parts.username:
        found += [parts.username, unquote(parts.username)]
    found += [value for _, value in parse_qsl(parts.query)]
    if parts.query:
        found.append(parts.query)
    return tuple(dict.fromkeys(value for value in found if value))


def url_without_credentials(url: str) -> str:
    """An http(s) URL as it may be shown and kept: scheme, host, port and path, without user, password, query or
    fragment (`https://example.com/hooks`)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def remember_password_of(url: str) -> None:
    """Add the password inside a (database) URL to the registry, not the URL: its host and user are shown."""
    remember(*url_passwords(url))


def known() -> tuple[str, ...]:
    """The secret values remembered so far."""
    with _known_lock:
        return tuple(_known)


def forget_all() -> None:
    """Empty the registry (for tests)."""
    global _known_pieces
    with _known_lock:
        _known.clear()
        _known_pieces = ()


def _hide_credentials(match):
    """A URL's user and password hidden (a user alone may be a token), except a database user without password."""
    if match.group("password") is None and match.group("scheme").lower() in ("postgresql://", "postgres://"):
        return match.group(0)
    return f"{match.group('scheme')}{REDACTED}@"


def redact(text, secrets: Iterable[str] = ()):
    """`text` with every secret value (those given and those remembered) and every URL's credentials replaced by
    `[redacted]`."""
    if not text:
        return text
    text = _CREDENTIALS.sub(_hide_credentials, str(text))
    secrets = tuple(secrets)
    pieces = _sorted_pieces((*secrets, *known())) if secrets else _known_pieces
    for piece in pieces:
        text = text.replace(piece, REDACTED)
    return text


def printable(text, limit: int = 200) -> str:
    """Text from the network made safe to print on one line: control characters (newlines, escape sequences,
    bidirectional overrides) become spaces, runs of spaces one, and at most `limit` characters are kept."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                      for c in str(text)[:limit * 4])
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


class RedactingFilter(logging.Filter):
    """A log handler's filter that redacts every record's text (its message, arguments, traceback) of the known
    secrets before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_SECRET_PARAMETERS = {"password", "sslpassword"}


def display_url(url: str) -> str:
    """A database URL without its password (for a store's `path`, messages, logs and `state.json`); a URL that
    does not parse is shown as its scheme and host part without anything between `://` and the last `@`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        scheme, _, rest = str(url).partition("://")
        host = rest.rsplit("@", 1)[1] if "@" in rest else rest
        return redact(f"{scheme}://{host.split('?', 1)[0]}")
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, "xxxxx" if k in _SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_log_handlers() -> None:
    """Give the root logger's handlers, and the last-resort handler that prints warnings when none is set up, a
    `RedactingFilter` (once each)."""
    for handler in (*logging.getLogger().handlers, logging.lastResort):
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
