"""Flat order and line-item rows from order events, whatever the envelope format or payload shape.

`Batch.add(...)` reads one stored event's body and appends its order (one row) and line items (rows) to column
lists; `Batch.frames()` turns them into raw DataFrames, one row per *event*. `projection.resolve` then keeps the
latest state of each order. Money becomes integer cents (exact); text timestamps are kept for vectorised parsing.
"""

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ORDER_TYPES = ("order.created", "order.updated", "order.reconciled")
MONEY = ("item_total", "discount_total", "shipping_total", "tax_total", "total")
ORDER_COLUMNS = ("order_id", "account_id", "event_id", "updated_at", "created_at", "completed_at", "currency",
                 "country", "country_name", "customer_email", "customer_name", "item_count",
                 *(f"{m}_cents" for m in MONEY), "shipping_status", "payment_status", "rank_tie")
ITEM_COLUMNS = ("order_id", "event_id", "line", "product_id", "product_name", "option_name", "quantity",
                "price_cents", "total_cents", "currency", "payment_status")
_DIGITS = frozenset("0123456789")

try:  # 3x faster on order bodies; plain json is the fallback (and reads what orjson refuses, e.g. NaN)
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = json.loads


def _loads(body):
    try:
        return _fast_loads(body)
    except ValueError:
        return json.loads(body)


def cents(value):
    """Exact integer cents of a decimal string (or number); None when absent or not money."""
    if isinstance(value, str):
        whole, _, fraction = value.partition(".")
        digits = whole[1:] if whole[:1] == "-" else whole
        if digits and len(fraction) <= 2 and _DIGITS.issuperset(digits) and _DIGITS.issuperset(fraction):
            amount = int(digits) * 100 + int(fraction.ljust(2, "0") or 0)
            return -amount if whole[:1] == "-" else amount
    elif value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))


def _text(value):
    if type(value) is str:
        return value
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _int(value):
    if type(value) is int:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ref_id(relationships, name):
    relationship = relationships.get(name)
    data = relationship.get("data") if isinstance(relationship, dict) else None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


def _flat(payload):
    """(order id, attributes, currency, country, [line item dicts]) of a flattened order."""
    currency = payload.get("currency")
    if isinstance(currency, dict):
        currency = currency.get("id")
    country = payload.get("shipping_country_id")
    if not country:
        shipping_country = payload.get("shipping_country")
        country = shipping_country.get("id") if isinstance(shipping_country, dict) else None
    items = [i for i in payload.get("items") or () if isinstance(i, dict)]
    for item in items:
        if not item.get("product_id") and isinstance(item.get("product"), dict):
            item["product_id"] = item["product"].get("id")
    return payload.get("id"), payload, currency, country, items


def _jsonapi(document):
    data = document["data"]
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    relationships = data.get("relationships") if isinstance(data.get("relationships"), dict) else {}
    included = [i for i in document.get("included") or () if isinstance(i, dict)]
    wanted = relationships.get("items", {}).get("data") if isinstance(relationships.get("items"), dict) else None
    wanted_ids = [str(ref.get("id")) for ref in wanted or () if isinstance(ref, dict)]
    lines = {str(i.get("id")): i for i in included if i.get("type") == "order_line_items"}
    order_lines = [lines[i] for i in wanted_ids if i in lines] if wanted_ids else list(lines.values())
    items = []
    for line in order_lines:
        line_attributes = line.get("attributes") if isinstance(line.get("attributes"), dict) else {}
        line_relationships = line.get("relationships") if isinstance(line.get("relationships"), dict) else {}
        items.append({**line_attributes, "product_id": _ref_id(line_relationships, "product")})
    currency = _ref_id(relationships, "currency") or attributes.get("currency")
    country = _ref_id(relationships, "shipping_country") or attributes.get("shipping_country_id")
    return data.get("id"), attributes, currency, country, items


def parse_order(body):
    """(order id, attributes, currency, country, items) of an order event's body, or None."""
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


_MONEY_TEXT = r"^-?\d{1,13}(\.\d{1,2})?$"


def cents_column(values):
    """Integer cents (nullable Int64) of a list of money values, exact: vectorised (pyarrow) for the usual
    decimal strings ("45.0", "45.55"), `cents()` one by one for anything else."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    text = pa.array([v if type(v) is str else None for v in values], type=pa.string())
    usual = pc.fill_null(pc.match_substring_regex(text, _MONEY_TEXT), False)
    # at most 13 integer digits: x * 100 is exact enough in a double for rounding to give the cents back
    number = pc.if_else(usual, text, pa.scalar("0", pa.string()))
    exact = pc.cast(pc.round(pc.multiply(pc.cast(number, pa.float64()), 100.0)), pa.int64())
    result = pd.Series(pc.if_else(usual, exact, pa.scalar(None, pa.int64())).to_pandas(types_mapper={
        pa.int64(): pd.Int64Dtype()}.get), dtype="Int64")
    for index in pc.indices_nonzero(pc.invert(usual)).to_pylist():
        if values[index] is not None:
            result.iat[index] = cents(values[index])
    return result


class Batch:
    """Column lists of order rows and item rows, one order row per event added."""

    def __init__(self):
        self.orders = {column: [] for column in ORDER_COLUMNS}
        self.items = {column: [] for column in ITEM_COLUMNS}
        # bound appends, in column order: this loop runs once per stored order event
        self._order = [self.orders[column].append for column in ORDER_COLUMNS]
        self._item = [self.items[column].append for column in ITEM_COLUMNS]

    def __len__(self):
        return len(self.orders["order_id"])

    def add(self, event_id, account_id, body, body_sha256, received_at):
        """Append the order an event carries; False when it carries none (not JSON, no order id)."""
        parsed = parse_order(body)
        if parsed is None:
            return False
        order_id, attributes, currency, country, items = parsed
        order_id = str(order_id)
        get = attributes.get
        created = _text(get("created_at"))
        first, last = _text(get("customer_first_name")), _text(get("customer_last_name"))
        email = _text(get("customer_email"))
        currency = _text(currency) or "unknown"
        payment = _text(get("payment_status")) or "unknown"
        values = (
            order_id, account_id, event_id, _text(get("updated_at")) or created or received_at, created,
            _text(get("completed_at")), currency, _text(country) or "unknown", _text(get("shipping_country_name")),
            email.strip().lower() if email else None, " ".join(p for p in (first, last) if p) or None,
            _int(get("item_count")), get("item_total"), get("discount_total"), get("shipping_total"),
            get("tax_total"), get("total"),  # money: converted to cents column by column (`cents_column`)
            _text(get("shipping_status")) or "unknown", payment,
            int(body_sha256[:15], 16),  # equal updated_at: the body's hash decides, whatever the arrival order
        )
        for append, value in zip(self._order, values):
            append(value)
        for line, item in enumerate(items, start=1):
            iget = item.get
            values = (order_id, event_id, line, _text(iget("product_id")), _text(iget("product_name")) or "unknown",
                      _text(iget("product_option_name")) or "", _int(iget("quantity")) or 0, iget("price"),
                      iget("total"), currency, payment)
            for append, value in zip(self._item, values):
                append(value)
        return True
