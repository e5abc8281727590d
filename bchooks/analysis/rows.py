"""Flat order and line-item rows from order events, whatever the envelope format or payload shape.

`Batch.add(...)` reads one stored event's body and appends its order (one row) and line items (rows) to column
lists; `cache.typed` turns them into raw DataFrames, one row per *event*, and `latest.resolve` then keeps the
latest state of each order. Money becomes integer cents (exact); text timestamps are kept for vectorised parsing.

`Batch.extend(rows)` does the same for many events, faster: the usual body (the docs' envelope, a flattened order
whose fields have the documented JSON types) is decoded straight into the few fields read (`msgspec`, skipping the
rest of the body); any other body, or one that fails that strict decoding, takes `add`, the general path, so both
give the same rows by construction.
"""

from itertools import chain, repeat
from operator import attrgetter
from typing import Annotated

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from ..wire import ORDER_TYPES, cents, discount_code, parse_order, text_value

__all__ = ["Batch", "ITEM_COLUMNS", "ORDER_COLUMNS", "ORDER_TYPES", "TIE_COLUMNS", "cents", "cents_column",
           "parse_order", "tie_keys"]

#: the body's whole SHA-256 as four unsigned 64-bit numbers, most significant first: between two bodies with the
#: same `updated_at`, the greater digest wins, whatever the arrival order
TIE_COLUMNS = ("rank_tie", "rank_tie_2", "rank_tie_3", "rank_tie_4")
MONEY = ("item_total", "discount_total", "shipping_total", "tax_total", "total")
ORDER_COLUMNS = ("order_id", "account_id", "event_id", "updated_at", "created_at", "completed_at", "currency",
                 "country", "country_name", "customer_email", "customer_name", "item_count",
                 *(f"{m}_cents" for m in MONEY), "shipping_status", "payment_status", "discount_code", *TIE_COLUMNS)
#: order_row: the item's row in `orders` (its order id, account, event, currency and payment status come from there)
ITEM_COLUMNS = ("order_row", "line", "product_id", "product_name", "option_name", "quantity", "price_cents",
                "total_cents")
_INT64 = (-2 ** 63, 2 ** 63 - 1)



def tie_keys(sha256_hex):
    """The four `TIE_COLUMNS` numbers of a hex SHA-256 digest."""
    return (int(sha256_hex[0:16], 16), int(sha256_hex[16:32], 16), int(sha256_hex[32:48], 16),
            int(sha256_hex[48:64], 16))


def _int(value):
    """An integer that fits a column (int64), or None."""
    if type(value) is not int:
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return value if _INT64[0] <= value <= _INT64[1] else None


# -- the usual body, decoded straight into the fields read (anything else raises and takes the general path)
_Id = str | int | None
_Money = str | int | float | None
_Count = Annotated[int, msgspec.Meta(ge=_INT64[0], le=_INT64[1])] | None  # (larger: the general path's None)


class _Ref(Struct, gc=False):
    id: _Id = None


class _Country(Struct, gc=False):
    id: _Id = None
    name: str | None = None


class _Item(Struct, gc=False):
    product_id: _Id = None
    product: _Ref | None = None
    product_name: str | None = None
    product_option_name: str | None = None
    quantity: _Count = None
    price: _Money = None
    total: _Money = None


class _Adjustment(Struct, gc=False):
    type: str | None = None
    kind: str | None = None
    adjustment_type: str | None = None
    category: str | None = None
    label: str | None = None


class _Payload(Struct, gc=False):
    id: _Id = None
    data: Raw | UnsetType = UNSET  # present: a JSON:API document (general path)
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    currency: _Ref | str | None = None
    shipping_country_id: _Id = None
    shipping_country: _Country | None = None
    shipping_country_name: str | None = None
    customer_email: str | None = None
    customer_first_name: str | None = None
    customer_last_name: str | None = None
    item_count: _Count = None
    item_total: _Money = None
    discount_total: _Money = None
    shipping_total: _Money = None
    tax_total: _Money = None
    total: _Money = None
    shipping_status: str | None = None
    payment_status: str | None = None
    items: list[_Item] | None = None
    adjustments: list[_Adjustment] | None = None


class _Document(Struct, gc=False):
    payload: _Payload | None | UnsetType = UNSET
    data: _Payload | None | UnsetType = UNSET  # the guide's envelope


_decode_usual = msgspec.json.Decoder(_Document).decode
_RUN = 1000  # usual bodies read at a time (short runs keep few decoded objects alive)


def _usual(body):
    """The flattened order of a usual body, or None (the general path decides)."""
    try:
        document = _decode_usual(body)
    except (msgspec.DecodeError, ValueError):  # (ValidationError is a DecodeError)
        return None
    payload = document.data if document.payload is UNSET else document.payload
    if type(payload) is not _Payload or payload.data is not UNSET or payload.id is None:
        return None
    return payload


def _label(value, default):
    """`text_value(value) or default` for a str, int or None."""
    if value is None:
        return default
    return (value if type(value) is str else str(value)) or default


def _product_id(item):
    product_id = item.product_id
    if not product_id and item.product is not None:
        product_id = item.product.id
    return product_id if product_id is None or type(product_id) is str else str(product_id)


_MONEY_TEXT = r"^-?\d{1,13}(\.\d{1,2})?$"


def cents_column(values):
    """Integer cents (nullable Int64) of a list of money values, exact: vectorised (pyarrow) for the usual
    decimal strings ("45.0", "45.55"), `cents()` one by one for anything else."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    try:  # all text (or missing): one conversion in C
        text = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
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
        order_id, attributes, currency, country, country_name, items, code = parsed
        order_id = str(order_id)
        get = attributes.get
        created = text_value(get("created_at"))
        first, last = text_value(get("customer_first_name")), text_value(get("customer_last_name"))
        email = text_value(get("customer_email"))
        values = (
            order_id, account_id, event_id, text_value(get("updated_at")) or created or received_at, created,
            text_value(get("completed_at")), text_value(currency) or "unknown", text_value(country) or "unknown",
            country_name,
            email.strip().lower() if email else None, " ".join(p for p in (first, last) if p) or None,
            _int(get("item_count")), get("item_total"), get("discount_total"), get("shipping_total"),
            get("tax_total"), get("total"),  # money: converted to cents column by column (`cents_column`)
            text_value(get("shipping_status")) or "unknown", text_value(get("payment_status")) or "unknown", code,
            *tie_keys(body_sha256),  # equal updated_at: the body's hash decides, whatever the arrival order
        )
        for append, value in zip(self._order, values):
            append(value)
        row = len(self) - 1
        for line, item in enumerate(items, start=1):
            iget = item.get
            values = (row, line, text_value(iget("product_id")), text_value(iget("product_name")) or "unknown",
                      text_value(iget("product_option_name")) or "", _int(iget("quantity")) or 0, iget("price"),
                      iget("total"))
            for append, value in zip(self._item, values):
                append(value)
        return True

    def extend(self, rows):
        """`add` for many (event_id, account_id, body, body_sha256, received_at) rows, in their order; returns how
        many carried an order. Runs of usual bodies are read column by column."""
        added, run = 0, []
        for row in rows:
            payload = _usual(row[2])
            if payload is not None:
                run.append((row, payload))
                if len(run) == _RUN:
                    added += self._extend_usual(run)
                    run = []
                continue
            if run:
                added += self._extend_usual(run)
                run = []
            added += self.add(*row)
        return added + (self._extend_usual(run) if run else 0)

    def _extend_usual(self, run):
        """Exactly what `add` appends for these (row, decoded payload) pairs (see `add` for each rule)."""
        rows = [row for row, _ in run]
        payloads = [payload for _, payload in run]
        field = {name: list(map(attrgetter(name), payloads)) for name in _Payload.__struct_fields__}
        ids, created = field["id"], field["created_at"]
        countries = [p.shipping_country_id or (p.shipping_country.id if p.shipping_country is not None else None)
                     for p in payloads]
        columns = (
            [i if type(i) is str else str(i) for i in ids], [row[1] for row in rows], [row[0] for row in rows],
            [u or c or row[4] for u, c, row in zip(field["updated_at"], created, rows)], created,
            field["completed_at"],
            [_label(c.id if type(c) is _Ref else c, "unknown") for c in field["currency"]],
            [_label(c, "unknown") for c in countries],
            [name or (p.shipping_country.name if p.shipping_country is not None else None) or None
             for name, p in zip(field["shipping_country_name"], payloads)],
            [e.strip().lower() if e else None for e in field["customer_email"]],
            [(first + " " + last if first and last else first or last or None)
             for first, last in zip(field["customer_first_name"], field["customer_last_name"])],
            field["item_count"], field["item_total"], field["discount_total"], field["shipping_total"],
            field["tax_total"], field["total"], [s or "unknown" for s in field["shipping_status"]],
            [s or "unknown" for s in field["payment_status"]],
            [discount_code((a.type or a.kind or a.adjustment_type or a.category, a.label) for a in adjustments or ())
             for adjustments in field["adjustments"]],
            *(list(column) for column in zip(*(tie_keys(row[3]) for row in rows))),
        )
        first_row = len(self)
        for name, values in zip(ORDER_COLUMNS, columns):
            self.orders[name].extend(values)
        lists = [items or () for items in field["items"]]
        counts = list(map(len, lists))
        items = list(chain.from_iterable(lists))
        item = {name: list(map(attrgetter(name), items)) for name in _Item.__struct_fields__}
        columns = (
            list(chain.from_iterable(map(repeat, range(first_row, first_row + len(rows)), counts))),
            list(chain.from_iterable(range(1, n + 1) for n in counts)), list(map(_product_id, items)),
            [n or "unknown" for n in item["product_name"]], [n or "" for n in item["product_option_name"]],
            [q or 0 for q in item["quantity"]], item["price"], item["total"],
        )
        for name, values in zip(ITEM_COLUMNS, columns):
            self.items[name].extend(values)
        return len(run)
