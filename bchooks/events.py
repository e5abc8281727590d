"""Webhook envelopes: the event catalog and parsing of verified bodies.

Two envelope formats are accepted: the docs' `{"account_id", "type", "payload"}` and the guide's
`{"type", "data"}`. The payload may be a flattened resource (`{"id", "updated_at", ...}`) or a JSON:API document
(`{"data": {"id", "type", "attributes": {...}}, "included": [...]}`). Unknown event types are kept.
"""

import json
import sys
from dataclasses import dataclass

from .errors import InvalidEnvelope, InvalidJSON

#: every event type Big Cartel documents, in the docs' order
EVENT_TYPES = (
    "account.updated",
    "account.closed",
    "account.deauthorized",
    "account.plan.upgraded",
    "account.plan.downgraded",
    "order.created",
    "order.updated",
    "product.created",
    "product.updated",
    "product.deleted",
)


#: how deep a body may safely nest: Python's parser gives up near its recursion limit (about 950 levels in a
#: server thread), SQLite's JSON functions at 1,000
MAX_DEPTH = 500


@dataclass(frozen=True)
class Envelope:
    type: str
    account_id: str | None
    resource_id: str | None
    updated_at: str | None
    payload: object
    format: str | None  # "docs", "guide", or None when the body has neither "payload" nor "data"
    shape: str | None  # "flat", "jsonapi", "scalar", or None


def storable_text(text):
    """`text` as it can be stored in a text column: a lone surrogate (what a JavaScript string cut inside an emoji
    serialises to, `"\\ud83d"`) cannot be written as UTF-8, so it is kept as its escape, the six characters
    `\\ud83d`; all other text is returned as is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("ascii" if text.isascii() else "utf-8")
    return text


def _ident(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return storable_text(str(value))


def _resource(payload):
    """(resource id, updated_at, shape) of a payload in either shape."""
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, dict) and ("attributes" in data or "type" in data):
            attributes = data.get("attributes")
            updated = attributes.get("updated_at") if isinstance(attributes, dict) else None
            return _ident(data.get("id")), updated if isinstance(updated, str) else None, "jsonapi"
        updated = payload.get("updated_at")
        return _ident(payload.get("id")), updated if isinstance(updated, str) else None, "flat"
    if _ident(payload) is not None:
        return _ident(payload), None, "scalar"
    return None, None, None


#: what the receiver accepts, said in every 400 about the body
ACCEPTED = "a JSON object (RFC 8259) in UTF-8 without a byte-order mark"


def _no_constant(name):
    raise InvalidJSON(f"the body holds {name}, which JSON does not allow: send {ACCEPTED}")


def decode_body(body):
    """Parse a body as strict JSON: UTF-8 only (no UTF-16/32, no byte-order mark), no NaN or Infinity. Every
    refusal is an `InvalidJSON` that says what is wrong, so that every stored body is one SQLite's JSON functions
    read (`SELECT json_extract(body, '$.type') FROM events` works on every row)."""
    if body[:3] == b"\xef\xbb\xbf":
        raise InvalidJSON(f"the body starts with a byte-order mark: send {ACCEPTED}")
    if b"\x00" in body:  # never in JSON text; in every UTF-16 or UTF-32 body
        raise InvalidJSON(f"the body holds NUL bytes (UTF-16 or UTF-32?): send {ACCEPTED}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJSON(f"the body is not UTF-8 (byte {error.start} cannot be decoded): send {ACCEPTED}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidJSON("the body is nested too deeply (arrays or objects hundreds of levels deep): keep it "
                          f"under {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise InvalidJSON(f"the body is not valid JSON ({error.msg} at line {error.lineno} column "
                          f"{error.colno}): send {ACCEPTED}") from None
    except ValueError as error:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        if "digits" in str(error):
            raise InvalidJSON(f"the body holds an integer of more than {sys.get_int_max_str_digits()} digits: "
                              f"send numbers of usual size") from None
        raise InvalidJSON(f"the body is not valid JSON: send {ACCEPTED}") from None


def parse_envelope(body):
    """Parse the verified body bytes into an `Envelope`; raise `InvalidJSON` or `InvalidEnvelope`."""
    document = decode_body(body)
    return envelope_from(document)


def envelope_from(document):
    if not isinstance(document, dict):
        raise InvalidEnvelope("the body must be a JSON object with a string field 'type'")
    event_type = document.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEnvelope("the body has no string field 'type'")
    if storable_text(event_type) != event_type:
        raise InvalidEnvelope("the field 'type' is not valid Unicode text (it holds a lone surrogate escape such as "
                              "\\ud83d)")
    if "payload" in document:
        fmt, payload = "docs", document["payload"]
    elif "data" in document:
        fmt, payload = "guide", document["data"]
    else:
        fmt, payload = None, None
    resource_id, updated_at, shape = _resource(payload)
    return Envelope(
        type=event_type,
        account_id=_ident(document.get("account_id")),
        resource_id=resource_id,
        updated_at=updated_at,
        payload=payload,
        format=fmt,
        shape=shape,
    )
