"""HMAC-SHA256 signatures over the raw body bytes, as Big Cartel signs webhooks.

Big Cartel sends the lowercase hex digest in `X-Webhook-Signature` (docs); the popular guide uses
`X-Bigcartel-Signature`. Both are accepted. Several secrets may be valid at once (rotation).
"""

import hashlib
import hmac

from .errors import ConfigError, InvalidSignature, MissingSignature

#: header names that may carry the signature, docs first
SIGNATURE_HEADERS = ("X-Webhook-Signature", "X-Bigcartel-Signature")
#: WSGI environ keys of those headers
SIGNATURE_ENVIRON = tuple("HTTP_" + h.upper().replace("-", "_") for h in SIGNATURE_HEADERS)
#: longest header value looked at; a SHA-256 hex digest is 64 characters
MAX_SIGNATURE_LENGTH = 256
_HEX = frozenset("0123456789abcdef")


def _key(secret):
    return secret if isinstance(secret, bytes) else str(secret).encode("utf-8")


def sign(body, secret):
    """Lowercase hex HMAC-SHA256 of `body` (bytes) keyed with `secret`."""
    return hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


class Verifier:
    """Holds the valid secrets; `verify` raises a `VerificationError` subclass, never anything else."""

    def __init__(self, secrets):
        if isinstance(secrets, (str, bytes)):
            secrets = [secrets]
        keys = tuple(_key(s) for s in secrets)
        if not keys or not all(keys):
            raise ConfigError("BCHOOKS_SECRET is not set: the receiver needs your app's client secret to verify "
                              "webhooks")
        self._keys = keys

    def __repr__(self):
        return f"Verifier(<{len(self._keys)} secret(s)>)"

    def sign(self, body):
        """Sign with the first (current) secret."""
        return hmac.new(self._keys[0], body, hashlib.sha256).hexdigest()

    def verify(self, body, signature):
        """Check `signature` (the header value, or None when absent) against `body`, the exact bytes received."""
        if signature is None:
            raise MissingSignature("no signature: send the HMAC-SHA256 of the body in X-Webhook-Signature")
        if len(signature) > MAX_SIGNATURE_LENGTH:
            raise InvalidSignature("the signature header is too long to be a SHA-256 hex digest")
        candidate = signature.strip().lower()
        if not candidate:
            raise InvalidSignature("the signature header is empty")
        if len(candidate) != 64 or not _HEX.issuperset(candidate):
            raise InvalidSignature("the signature header is not a 64-character hex SHA-256 digest")
        matched = False
        for key in self._keys:
            expected = hmac.new(key, body, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise InvalidSignature("the signature does not match the body: check the secret, and that the exact "
                                   "bytes sent were signed")


def signatures_from_environ(environ):
    """[(header name, value)] of the signature headers present in a WSGI environ, docs header first."""
    return [(name, environ[key]) for name, key in zip(SIGNATURE_HEADERS, SIGNATURE_ENVIRON) if key in environ]
