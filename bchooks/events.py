"""Webhook envelopes: the event catalog and parsing of verified bodies.

Two envelope formats are accepted: the docs' `{"account_id", "type", "payload"}` and the guide's
`{"type", "data"}`. The payload may be a flattened resource (`{"id", "updated_at", ...}`) or a JSON:API document
(`{"data": {"id", "type", "attributes": {...}}, "included": [...]}`). Unknown event types are kept.
"""

import json
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


@dataclass(frozen=True)
class Envelope:
    type: str
    account_id: str | None
    resource_id: str | None
    updated_at: str | None
    payload: object
    format: str | None  # "docs", "guide", or None when the body has neither "payload" nor "data"
    shape: str | None  # "flat", "jsonapi", "scalar", or None


def _ident(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


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


def decode_body(body):
    """Parse JSON bytes; anything that is not JSON raises `InvalidJSON`."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidJSON("the body is not valid UTF-8 JSON") from None


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
