"""HMAC-SHA256 signatures over the raw body bytes, as Big Cartel signs webhooks.

Big Cartel sends the lowercase hex digest in `X-Webhook-Signature` (docs); the popular guide uses
`X-Bigcartel-Signature`. Both are accepted. Several secrets may be valid at once (rotation).
"""

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from ..errors import ConfigError, InvalidSignature, MissingSignature
from ..wire import SIGNATURE_HEADERS as HEADERS

#: header names that may carry the signature, docs first
SIGNATURE_HEADERS = tuple(HEADERS.values())
#: WSGI environ keys of those headers
SIGNATURE_ENVIRON = tuple("HTTP_" + h.upper().replace("-", "_") for h in SIGNATURE_HEADERS)
#: longest header value looked at: a few 64-character SHA-256 hex digests, comma-separated
MAX_SIGNATURE_LENGTH = 600
#: most candidates tried in one header (a repeated header arrives joined with commas)
MAX_CANDIDATES = 8
_HEX = frozenset("0123456789abcdef")


def _key(secret):
    return secret if isinstance(secret, bytes) else str(secret).encode("utf-8")


def sign(body: bytes, secret: str | bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `body` (bytes) keyed with `secret`."""
    return hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


class Verifier:
    """Holds the valid secrets; `verify` raises a `VerificationError` subclass, never anything else."""

    def __init__(self, secrets: str | bytes | Iterable[str | bytes]) -> None:
        if isinstance(secrets, (str, bytes)):
            secrets = [secrets]
        keys = tuple(_key(s) for s in secrets)
        if not keys or not all(keys):
            raise ConfigError("BCHOOKS_SECRET is not set: the receiver needs your app's client secret to verify "
                              "webhooks")
        self._keys = keys

    def __repr__(self):
        return f"Verifier(<{len(self._keys)} secret(s)>)"

    def sign(self, body: bytes) -> str:
        """Sign with the first (current) secret."""
        return hmac.new(self._keys[0], body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: str | None) -> str:
        """Check `signature` (the header value, or None when absent) against `body`, the exact bytes received.

        A header sent twice reaches a WSGI app as one value joined with commas: each comma-separated candidate is
        tried, and the body verifies when any of them matches (at most `MAX_CANDIDATES`). Returns the signature
        that matched (lowercase)."""
        if signature is None:
            raise MissingSignature("no signature: send the HMAC-SHA256 of the body in X-Webhook-Signature")
        if len(signature) > MAX_SIGNATURE_LENGTH:
            raise InvalidSignature("the signature header is too long to be a SHA-256 hex digest")
        candidates = [part.strip().lower() for part in signature.split(",")]
        candidates = [part for part in candidates if part]
        if not candidates:
            raise InvalidSignature("the signature header is empty")
        if len(candidates) > MAX_CANDIDATES:
            raise InvalidSignature(f"the signature header holds more than {MAX_CANDIDATES} signatures")
        if not all(len(part) == 64 and _HEX.issuperset(part) for part in candidates):
            raise InvalidSignature("the signature header is not a 64-character hex SHA-256 digest")
        matched = None
        for key in self._keys:
            expected = hmac.new(key, body, hashlib.sha256).hexdigest()
            for candidate in candidates:
                if hmac.compare_digest(expected, candidate):
                    matched = candidate
        if matched is None:
            raise InvalidSignature("the signature does not match the body: check the secret, and that the exact "
                                   "bytes sent were signed")
        return matched

    def verify_headers(self, body: bytes, headers: Sequence[tuple[str, str]]) -> str:
        """Verify `body` against the signature headers present (`[(name, value)]`, docs header first): it verifies
        when any of them matches. Returns the signature that verified; raises `MissingSignature` when there is none,
        else the first header's `InvalidSignature`."""
        if not headers:
            raise MissingSignature("no signature: send the HMAC-SHA256 of the body in X-Webhook-Signature")
        failures = []
        for _name, value in headers:
            try:
                return self.verify(body, value)
            except InvalidSignature as error:
                failures.append(error)
        raise failures[0]


    def verify_request(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Verify `body` with the signature headers of a request: a WSGI environ or any mapping of header names
        (case does not matter), either format's header, docs first. Returns the signature that verified."""
        if any(key in headers for key in SIGNATURE_ENVIRON):
            found = [(name, headers[key]) for name, key in zip(SIGNATURE_HEADERS, SIGNATURE_ENVIRON) if key in headers]
        else:
            lowered = {str(name).lower(): value for name, value in headers.items()}
            found = [(name, lowered[name.lower()]) for name in SIGNATURE_HEADERS if name.lower() in lowered]
        return self.verify_headers(body, found)
