"""Keeping secrets out of text: what is stored (a handler's last error), logged, printed or shown in a panel.

`redact(text, secrets)` replaces every configured secret value with `[redacted]`; for a secret that is a URL
(the chat webhook URL carries its key in its path) its path and query are redacted wherever they appear, and the
credentials of any URL (`https://user:password@host`) are redacted whatever they are.
"""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:]*(:[^/\s@]*)?@")


def _pieces(secret):
    """The texts to hide for one secret value: itself, and for a URL its path and query too."""
    yield secret
    if "://" in secret:
        parts = urlsplit(secret)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail.strip("/")) >= 8:  # a key-bearing path, not "/" or "/hooks"
            yield tail


def redact(text, secrets=()):
    """`text` with every secret value (and every URL's credentials) replaced by `[redacted]`."""
    if not text:
        return text
    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", str(text))
    pieces = sorted({piece for secret in secrets if secret and len(secret) >= 4 for piece in _pieces(secret)},
                    key=len, reverse=True)
    for piece in pieces:
        text = text.replace(piece, REDACTED)
    return text


_SECRET_PARAMETERS = {"password", "sslpassword"}


def display_url(url: str) -> str:
    """A database URL without its password (for a store's `path`, messages, logs and `state.json`)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, "xxxxx" if k in _SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
