"""Big Cartel's wire format, in one place: event types and their families, the envelopes, payload shapes, the
signature header of each format, order fields, money, and canonical JSON.

Two envelope formats are accepted: the docs' `{"account_id", "type", "payload"}` and the guide's
`{"type", "data"}`. The payload may be a flattened resource (`{"id", "updated_at", ...}`) or a JSON:API document
(`{"data": {"id", "type", "attributes": {...}}, "included": [...]}`). Unknown event types are kept. Money is a
decimal string (`"45.0"`), read as exact integer cents. The receiver, the sender, the handlers, analysis and
reconciliation all read the format through this module (analysis also has a fast path for the usual order body,
held equal to `parse_order` by a property test).
"""

import json
import re
import sys
from typing import Any
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import msgspec

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


#: the order events, whatever their source: webhooks, and the API's copies stored by reconciliation and polling
ORDER_TYPES = ("order.created", "order.updated", "order.reconciled")
PRODUCT_TYPES = ("product.created", "product.updated", "product.deleted")
RECONCILED = "order.reconciled"  # the type of an order stored from the API by reconciliation
#: the signature header of each envelope format (the docs' first)
SIGNATURE_HEADERS = {"docs": "X-Webhook-Signature", "guide": "X-Bigcartel-Signature"}
FORMATS = tuple(SIGNATURE_HEADERS)
SHAPES = ("flat", "jsonapi")


@dataclass(frozen=True)
class Envelope:
    type: str
    account_id: str | None
    resource_id: str | None
    updated_at: str | None
    payload: object
    format: str | None  # "docs", "guide", or None when the body has neither "payload" nor "data"
    shape: str | None  # "flat", "jsonapi", "scalar", or None


def storable_text(text: str) -> str:
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


def decode_body(body: bytes) -> Any:
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


def parse_envelope(body: bytes) -> Envelope:
    """Parse the verified body bytes into an `Envelope`; raise `InvalidJSON` or `InvalidEnvelope`."""
    document = decode_body(body)
    return envelope_from(document)


def envelope_from(document: Any) -> Envelope:
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


# -- JSON, as Big Cartel and JavaScript write it
def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON that survives a JavaScript `JSON.stringify` round trip unchanged. A document holding a
    lone surrogate (valid in JSON as an escape, not as UTF-8) is written with every non-ASCII character escaped."""
    try:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, separators=(",", ":")).encode("ascii")


# -- money: decimal strings ("45.0") and exact integer cents
_DIGITS = frozenset("0123456789")
_INT64_MAX = 2 ** 63 - 1
_MAX_MONEY = Decimal(_INT64_MAX) / 100 - 1
CENT = Decimal("0.01")


def round_cents(amount: Decimal | int | str) -> Decimal:
    """`amount` rounded half up to whole cents, as a Decimal."""
    return Decimal(amount).quantize(CENT, ROUND_HALF_UP)


def money_text(amount: Decimal | int | str) -> str:
    """Big Cartel's decimal-string money: `45.0`, `45.5`, `45.55`."""
    text = f"{round_cents(amount):.2f}"
    return text[:-1] if text.endswith("0") else text


def money_of_cents(cents_value: int) -> Decimal:
    """The exact Decimal of integer cents: 4550 -> Decimal('45.50')."""
    return Decimal(int(cents_value)).scaleb(-2)


def _loads(body):
    try:  # 3x faster than json on order bodies; json reads what msgspec refuses (NaN, a BOM, lone surrogates)
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        return json.loads(body)


def cents(value: Any) -> int | None:
    """Exact integer cents of a decimal string (or number); None when absent or not money."""
    if isinstance(value, str):
        whole, _, fraction = value.partition(".")
        digits = whole[1:] if whole[:1] == "-" else whole
        if digits and len(fraction) <= 2 and _DIGITS.issuperset(digits) and _DIGITS.issuperset(fraction):
            whole_cents = int(digits) * 100 + int(fraction.ljust(2, "0") or 0)
            if whole_cents <= _INT64_MAX:
                return -whole_cents if whole[:1] == "-" else whole_cents
            return None
    elif value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= _MAX_MONEY:  # (cents must fit an int64 column)
        return None
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))



# -- order fields, from either payload shape
def text_value(value):
    """A field's value as text: strings as they are, numbers written out, objects and lists None."""
    if type(value) is str:
        return value
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _list(value):
    return value if isinstance(value, list) else ()


def _ref_id(relationships, name):
    relationship = relationships.get(name)
    data = relationship.get("data") if isinstance(relationship, dict) else None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


_CODE = re.compile(r"^\s*\[([^\]]+)\]")


def _is_discount(kind, label):
    """Whether an adjustment is a discount: its type (or kind) says so; without any type, a label opening with a
    bracketed code (`[SUMMER15] 15% off`) does."""
    if kind is not None:
        return "discount" in str(kind).lower()
    return type(label) is str and _CODE.match(label) is not None


def discount_code(adjustments: Any) -> str | None:
    """The discount code of an order from its adjustments, [(type or kind, label)]: Big Cartel writes it in the
    discount adjustment's label, `"[FREESHIPPING] Free shipping discount"` gives `FREESHIPPING`. The first discount
    carrying a code wins; None without one."""
    for kind, label in adjustments:
        if _is_discount(kind, label) and type(label) is str:
            found = _CODE.match(label)
            if found and found.group(1).strip():
                return found.group(1).strip()
    return None


def _kind(entry):
    """An adjustment's type, from the fields public clients use for it (None: not said)."""
    for name in ("type", "kind", "adjustment_type", "category"):
        value = entry.get(name)
        if type(value) is str and value:
            return value
    return None


def _flat(payload):
    """(order id, attributes, currency, country, country name, [line item dicts], discount code) of a flattened
    order."""
    currency = payload.get("currency")
    if isinstance(currency, dict):
        currency = currency.get("id")
    shipping_country = payload.get("shipping_country")
    shipping_country = shipping_country if isinstance(shipping_country, dict) else {}
    country = payload.get("shipping_country_id")
    if not country:
        country = shipping_country.get("id")
    country_name = text_value(payload.get("shipping_country_name")) or text_value(shipping_country.get("name"))
    items = [i for i in _list(payload.get("items")) if isinstance(i, dict)]
    for item in items:
        if not item.get("product_id") and isinstance(item.get("product"), dict):
            item["product_id"] = item["product"].get("id")
    adjustments = [a for a in _list(payload.get("adjustments")) if isinstance(a, dict)]
    code = discount_code((_kind(a), a.get("label")) for a in adjustments)
    return payload.get("id"), payload, currency, country, country_name, items, code


def _jsonapi(document):
    data = document["data"]
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    relationships = data.get("relationships") if isinstance(data.get("relationships"), dict) else {}
    included = [i for i in _list(document.get("included")) if isinstance(i, dict)]
    wanted = relationships.get("items", {}).get("data") if isinstance(relationships.get("items"), dict) else None
    wanted_ids = [str(ref.get("id")) for ref in _list(wanted) if isinstance(ref, dict)]
    lines = {str(i.get("id")): i for i in included if i.get("type") == "order_line_items"}
    order_lines = [lines[i] for i in wanted_ids if i in lines] if wanted_ids else list(lines.values())
    items = []
    for line in order_lines:
        line_attributes = line.get("attributes") if isinstance(line.get("attributes"), dict) else {}
        line_relationships = line.get("relationships") if isinstance(line.get("relationships"), dict) else {}
        items.append({**line_attributes, "product_id": _ref_id(line_relationships, "product")})
    currency = _ref_id(relationships, "currency") or attributes.get("currency")
    country = _ref_id(relationships, "shipping_country") or attributes.get("shipping_country_id")
    country_name = text_value(attributes.get("shipping_country_name"))
    if not country_name and country is not None:  # the recorded real shape: the name only in `included`
        for resource in included:
            resource_attributes = resource.get("attributes")
            if (resource.get("type") == "countries" and str(resource.get("id")) == str(country)
                    and isinstance(resource_attributes, dict)):
                country_name = text_value(resource_attributes.get("name"))
                break
    return data.get("id"), attributes, currency, country, country_name, items, _jsonapi_code(included)


def _jsonapi_code(included):
    """The discount code among a JSON:API order's included adjustments (`order_adjustments`, `discounts`...: the
    resource's type or its attributes' type tells a discount)."""
    adjustments = []
    for resource in included:
        kind, attributes = text_value(resource.get("type")) or "", resource.get("attributes")
        if not isinstance(attributes, dict) or not ("adjust" in kind or "discount" in kind):
            continue
        adjustments.append((kind if "discount" in kind else _kind(attributes), attributes.get("label")))
    return discount_code(adjustments)


def parse_order(body: bytes) -> tuple | None:
    """(order id, attributes, currency, country, country name, items, discount code) of an order event's body, or
    None."""
    try:
        document = _loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    payload = document.get("payload", document.get("data"))
    if not isinstance(payload, dict):
        return None
    parsed = _jsonapi(payload) if isinstance(payload.get("data"), dict) else _flat(payload)
    if parsed[0] is None or isinstance(parsed[0], (dict, list, bool)):
        return None
    return parsed


