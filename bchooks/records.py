"""Flat order and line-item records from order events, whatever the envelope format or payload shape.

`order_record(event)` reads a stored event's body and returns an `OrderRecord` (one order row and its line-item
rows) or None when the event carries no order. Money becomes integer cents (exact); timestamps stay ISO text.
"""

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .clock import iso, parse_iso

ORDER_TYPES = ("order.created", "order.updated", "order.reconciled")

MONEY = ("item_total", "discount_total", "shipping_total", "tax_total", "total")
ORDER_COLUMNS = ("order_id", "account_id", "event_id", "updated_at", "created_at", "completed_at", "currency",
                 "country", "country_name", "customer_email", "customer_name", "item_count",
                 *(f"{m}_cents" for m in MONEY), "shipping_status", "payment_status", "rank")
ITEM_COLUMNS = ("order_id", "line", "product_id", "product_name", "option_name", "quantity", "price_cents",
                "total_cents", "currency")


@dataclass(frozen=True)
class OrderRecord:
    order: dict
    items: list


def cents(value):
    """Exact integer cents of a decimal string (or number); None when absent or not money."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))


def _ref_id(relationships, name):
    data = (relationships.get(name) or {}).get("data") if isinstance(relationships.get(name), dict) else None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


def _text(value):
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _when(value):
    """Canonical ISO text (`...T12:00:00.000Z`) of a timestamp, so that text order is time order."""
    text = _text(value)
    if not text:
        return None
    try:
        return iso(parse_iso(text))
    except ValueError:
        return None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _flat(payload):
    """(order id, attributes, currency, country, [line item dicts]) of a flattened order."""
    currency = payload.get("currency")
    currency = currency.get("id") if isinstance(currency, dict) else currency
    country = payload.get("shipping_country")
    country_id = payload.get("shipping_country_id") or (country.get("id") if isinstance(country, dict) else None)
    items = []
    for item in payload.get("items") or []:
        if isinstance(item, dict):
            product = item.get("product")
            items.append({**item, "product_id": item.get("product_id") or (
                product.get("id") if isinstance(product, dict) else None)})
    return payload.get("id"), payload, currency, country_id, items


def _jsonapi(document):
    data = document["data"]
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    relationships = data.get("relationships") if isinstance(data.get("relationships"), dict) else {}
    included = [i for i in document.get("included") or [] if isinstance(i, dict)]
    wanted = (relationships.get("items") or {}).get("data") if isinstance(relationships.get("items"), dict) else None
    wanted_ids = [str(ref.get("id")) for ref in wanted or [] if isinstance(ref, dict)]
    lines = {str(i.get("id")): i for i in included if i.get("type") == "order_line_items"}
    order_lines = [lines[i] for i in wanted_ids if i in lines] if wanted_ids else list(lines.values())
    items = []
    for line in order_lines:
        line_attributes = line.get("attributes") if isinstance(line.get("attributes"), dict) else {}
        line_relationships = line.get("relationships") if isinstance(line.get("relationships"), dict) else {}
        items.append({**line_attributes, "id": line.get("id"),
                      "product_id": _ref_id(line_relationships, "product")})
    currency = _ref_id(relationships, "currency") or attributes.get("currency")
    country = _ref_id(relationships, "shipping_country") or attributes.get("shipping_country_id")
    return data.get("id"), attributes, currency, country, items


def order_record(event_id, account_id, body, body_sha256, received_at):
    """The order an order event carries, or None (not JSON, not an order, no id)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    payload = document.get("payload", document.get("data"))
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("data"), dict):
        order_id, attributes, currency, country, items = _jsonapi(payload)
    else:
        order_id, attributes, currency, country, items = _flat(payload)
    if order_id is None or isinstance(order_id, (dict, list, bool)):
        return None
    order_id = str(order_id)
    created_at = _when(attributes.get("created_at"))
    updated_at = _when(attributes.get("updated_at")) or created_at or received_at
    first, last = _text(attributes.get("customer_first_name")), _text(attributes.get("customer_last_name"))
    email = _text(attributes.get("customer_email"))
    currency = _text(currency) or "unknown"
    order = {
        "order_id": order_id, "account_id": account_id, "event_id": event_id, "updated_at": updated_at,
        "created_at": created_at, "completed_at": _when(attributes.get("completed_at")),
        "currency": currency, "country": _text(country) or "unknown",
        "country_name": _text(attributes.get("shipping_country_name")),
        "customer_email": email.strip().lower() if email else None,
        "customer_name": " ".join(p for p in (first, last) if p) or None,
        "item_count": _int(attributes.get("item_count")),
        **{f"{m}_cents": cents(attributes.get(m)) for m in MONEY},
        "shipping_status": _text(attributes.get("shipping_status")) or "unknown",
        "payment_status": _text(attributes.get("payment_status")) or "unknown",
        # newest updated_at wins; equal times are decided by the body's hash, whatever the arrival order
        "rank": f"{updated_at}|{body_sha256}",
    }
    rows = []
    for n, item in enumerate(items, start=1):
        rows.append({
            "order_id": order_id, "line": n, "product_id": _text(item.get("product_id")),
            "product_name": _text(item.get("product_name")) or "unknown",
            "option_name": _text(item.get("product_option_name")) or "",
            "quantity": _int(item.get("quantity")) or 0, "price_cents": cents(item.get("price")),
            "total_cents": cents(item.get("total")), "currency": currency,
        })
    return OrderRecord(order, rows)
