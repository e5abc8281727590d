"""How a forwarded event is signed for its target: the headers each signing mode adds to the stored bytes.

    original   the signature Big Cartel sent with the event, as stored, under the header of the event's envelope
               format (`X-Webhook-Signature`, or the guide's `X-Bigcartel-Signature`); none for events the poller
               or reconciliation stored (they came from the API, unsigned). The default: the target verifies with
               the same client secret as the receiver, and nothing is re-signed.
    bigcartel  a new HMAC-SHA256 of the bytes keyed with the target's secret, in `X-Webhook-Signature`, as Big
               Cartel (and `bchooks simulate`) sign.
    standard   Standard Webhooks (the `standardwebhooks` library): `webhook-id` (the event's stable id,
               `evt_` + its body's SHA-256: the same on every resend, for the target's deduplication),
               `webhook-timestamp` (the sending time: receivers refuse ones older than 5 minutes) and
               `webhook-signature` (`v1,<base64 HMAC>` keyed with a `whsec_...` secret).
    none       no signature header.
"""

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timezone

from ..errors import ConfigError, InputError
from ..receiving.signing import sign
from ..store import StoredEvent
from ..wire import SIGNATURE_HEADERS

MODES = ("original", "bigcartel", "standard", "none")
#: headers every forwarded request carries, whatever the signing mode
EVENT_ID_HEADER = "X-Bchooks-Event-Id"
EVENT_TYPE_HEADER = "X-Bchooks-Event-Type"

Signer = Callable[[StoredEvent, bytes], dict]


def webhook_id(event: StoredEvent) -> str:
    """The Standard Webhooks message id of a stored event: the same for every resend, from any store."""
    return f"evt_{event.body_sha256}"


def _envelope_format(body: bytes) -> str:
    """"guide" for the guide's envelope (`{"type", "data"}`), else "docs"."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "docs"
    return "guide" if isinstance(parsed, dict) and "data" in parsed and "payload" not in parsed else "docs"


def _standard_key(secret: str):
    """The `standardwebhooks.Webhook` for a `whsec_...` secret, checked now (not at the first event)."""
    from standardwebhooks import Webhook
    text = secret.removeprefix("whsec_")
    try:
        if not base64.b64decode(text + "=" * (-len(text) % 4), validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        raise ConfigError("BCHOOKS_FORWARD_SECRET is not a Standard Webhooks secret: it must be `whsec_` followed "
                          "by base64 (e.g. made with `python -c \"import base64, os; print('whsec_' + "
                          "base64.b64encode(os.urandom(24)).decode())\"`)") from None
    return Webhook(secret)


def signer(mode: str, secret: str = "") -> Signer:
    """A function giving the signature headers of one forwarded request (`event`, the exact `body`) in `mode`
    (`MODES`); `ConfigError` now for an unknown mode, or a missing or malformed secret."""
    if mode not in MODES:
        raise ConfigError(f"--sign must be one of {', '.join(MODES)}, got {mode!r}")
    if mode in ("bigcartel", "standard") and not secret:
        raise ConfigError(f"--sign {mode} needs the target's secret in BCHOOKS_FORWARD_SECRET"
                          + (" (a whsec_... secret)" if mode == "standard" else
                             " (the secret the target verifies with, e.g. your app's client secret)"))
    if mode == "original":
        def original(event, body):
            if not event.signature_header:
                return {}
            return {SIGNATURE_HEADERS[_envelope_format(body)]: event.signature_header}
        return original
    if mode == "bigcartel":
        return lambda event, body: {SIGNATURE_HEADERS["docs"]: sign(body, secret)}
    if mode == "standard":
        key = _standard_key(secret)

        def standard(event, body):
            now = datetime.now(timezone.utc)
            message_id = webhook_id(event)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("its body is not UTF-8 text, which Standard Webhooks signs") from None
            return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": key.sign(message_id, now, text)}
        return standard
    return lambda event, body: {}
