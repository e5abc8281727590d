"""Big Cartel's own order CSV (the admin's Orders > Download CSV), one row per order, so that tools taking that
file (label printers, migration importers) take the kit's.

The columns, exactly (`HEADER`): Number, Buyer first name, Buyer last name, Buyer email, Buyer phone number,
Date, Time, Status, Payment status, Transaction ID, Shipping status, Shipping methods, Shipping address 1,
Shipping address 2, Shipping city, Shipping state, Shipping zip, Shipping country, Currency, Items, Item count,
Item total, Total price, Total shipping, Total tax, Tax remitted by Big Cartel, Total discount, Discount code,
Source, Note, Private notes.

Where each value comes from: the orders and items frames (each order's latest state: number, email, statuses,
country, currency, items, counts and money, exact from integer cents) and, for what the frames leave out (names,
phone, address, transaction, shipping methods, note), the stored body of the event that holds that latest state
(the order row's `event_id`), read with `wire.parse_order` in either payload shape. A field the body lacks is an
empty cell; a body that cannot be read leaves those cells empty (the row is written from the frames) and is
counted in the notes. The mapping, value by value, is in docs/exports.md.
"""

import csv
from collections.abc import Iterator
from datetime import datetime, timezone, tzinfo
from typing import Any

import msgspec
import pandas as pd

from ..wire import ORDER_TYPES, parse_order, text_value
from .tables import Progress, opened

HEADER = ("Number", "Buyer first name", "Buyer last name", "Buyer email", "Buyer phone number", "Date", "Time",
          "Status", "Payment status", "Transaction ID", "Shipping status", "Shipping methods", "Shipping address 1",
          "Shipping address 2", "Shipping city", "Shipping state", "Shipping zip", "Shipping country", "Currency",
          "Items", "Item count", "Item total", "Total price", "Total shipping", "Total tax",
          "Tax remitted by Big Cartel", "Total discount", "Discount code", "Source", "Note", "Private notes")
SOURCE = "Online"
#: reading bodies one by one beats scanning the id range between them when they are this sparse
_SPARSE = 50


def plain_money(cents: Any) -> str:
    """Big Cartel's plain decimal of integer cents (`wire.money_text`'s style): 500 -> `5.0`, 1210 -> `12.1`,
    1215 -> `12.15`, -5 -> `-0.05`; empty for missing."""
    if cents is None or cents is pd.NA or cents != cents:  # (None, pd.NA, NaN)
        return ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part // 10 if part % 10 == 0 else f'{part:02d}'}"


def _text(value: Any) -> str:
    text = text_value(value)
    return "" if text is None else text


def date_time(moment: Any, zone: tzinfo = timezone.utc) -> tuple[str, str]:
    """(`2022-07-09`, `2:33 AM UTC`) of a time in `zone`; empty texts for a missing one."""
    if moment is None or pd.isna(moment):
        return "", ""
    return _local_texts(pd.Timestamp(moment).tz_convert(zone).to_pydatetime())


def _local_texts(local: datetime) -> tuple[str, str]:
    hour = local.hour % 12 or 12
    return (f"{local.year:04d}-{local.month:02d}-{local.day:02d}",
            f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'} {local.tzname() or ''}".rstrip())


def items_cell(lines: list[tuple]) -> str:
    """The `Items` cell: each line `product_name:X|product_option_name:Y|quantity:N|price:P|total:T` (the option
    name empty for the default option), joined by `;`. `lines`: (name, option, quantity, price cents, total cents)."""
    return ";".join(f"product_name:{_blank(name)}|product_option_name:{_blank(option)}|quantity:{_blank(quantity)}"
                    f"|price:{plain_money(price)}|total:{plain_money(total)}"
                    for name, option, quantity, price, total in lines)


def _blank(value: Any) -> str:
    return "" if value is None or value is pd.NA or value != value else str(value)


def _values(series: pd.Series) -> list:
    """A column as Python values, None for missing (integers stay integers)."""
    return [None if gone else value for value, gone in zip(series.tolist(), series.isna().tolist())]


def _local_times(orders: pd.DataFrame, zone: tzinfo) -> list[tuple[str, str]]:
    """(Date, Time) of each order: its `created_at` (else `completed_at`) in `zone`."""
    moments = orders["created_at"].fillna(orders["completed_at"]).dt.tz_convert(zone)
    return [("", "") if gone else _local_texts(moment.to_pydatetime())
            for moment, gone in zip(moments, moments.isna().tolist())]


#: what the frames write for a currency, country or status the body does not give
UNKNOWN = "unknown"


def _said(value: Any) -> str:
    """A label of the frames, empty where they hold `unknown` (the body did not say)."""
    text = _blank(value)
    return "" if text == UNKNOWN else text


# -- what the frames leave out, from the stored body
def _resources(document: Any) -> tuple[list[dict], list[dict]]:
    """(adjustments, transactions) of an order body, as dicts with `kind` and the resource's fields, in either
    payload shape (flat lists; JSON:API included resources)."""
    payload = document.get("payload", document.get("data")) if isinstance(document, dict) else None
    if not isinstance(payload, dict):
        return [], []
    if isinstance(payload.get("data"), dict):  # JSON:API: the included resources by their type
        adjustments, transactions = [], []
        for resource in payload.get("included") or ():
            if not isinstance(resource, dict) or not isinstance(resource.get("attributes"), dict):
                continue
            kind, attributes = str(resource.get("type") or ""), resource["attributes"]
            if "adjustment" in kind:
                adjustments.append({**attributes, "kind": attributes.get("kind") or kind})
            elif "transaction" in kind or "payment" in kind:
                transactions.append({**attributes, "kind": kind})
        return adjustments, transactions
    adjustments = [{**a, "kind": a.get("kind") or a.get("type")} for a in payload.get("adjustments") or ()
                   if isinstance(a, dict)] if isinstance(payload.get("adjustments"), list) else []
    transactions = [t for t in payload.get("transactions") or () if isinstance(t, dict)] \
        if isinstance(payload.get("transactions"), list) else []
    return adjustments, transactions


def _kind_is(adjustment: dict, *words: str) -> bool:
    kind = str(adjustment.get("kind") or "").lower()
    return any(word in kind for word in words)


def shipping_methods(adjustments: list[dict]) -> str:
    """`Shipment N <rate label>:<price>` for each shipping (or base rate) adjustment, joined by `;`."""
    shipments = [a for a in adjustments if _kind_is(a, "shipping", "base")]
    return ";".join(f"Shipment {n} {_text(a.get('label'))}:{_amount(a.get('amount'))}"
                    for n, a in enumerate(shipments, start=1))


def _amount(value: Any) -> str:
    from ..wire import cents
    found = cents(value)
    return "" if found is None else plain_money(found)


def body_fields(body: bytes) -> dict | None:
    """The values of one stored order body the frames leave out, or None when it cannot be read as an order."""
    parsed = parse_order(body)
    if parsed is None:
        return None
    attributes = parsed[1] if isinstance(parsed[1], dict) else {}
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        document = None
    adjustments, transactions = _resources(document)
    remitted = attributes.get("tax_remitted_by_big_cartel")
    return {
        "first": _text(attributes.get("customer_first_name")), "last": _text(attributes.get("customer_last_name")),
        "email": _text(attributes.get("customer_email")), "phone": _text(attributes.get("customer_phone_number")),
        "transaction": ";".join(_text(t.get("processor_id")) for t in transactions if _text(t.get("processor_id"))),
        "methods": shipping_methods(adjustments),
        **{key: _text(attributes.get(f"shipping_{key}"))
           for key in ("address_1", "address_2", "city", "state", "zip")},
        "remitted": remitted if isinstance(remitted, bool) else None,
        "code": _text(parsed[6]) if len(parsed) > 6 else "",  # (the discount adjustment's `[CODE] ...`)
        "note": _text(attributes.get("customer_note")),
    }


def stored_bodies(store: Any, event_ids: list[int]) -> Iterator[tuple[int, bytes]]:
    """(event id, body) of these stored events: a scan of their id range when they are dense, else one read each
    (an id the scan does not find is read alone)."""
    wanted = set(event_ids)
    if not wanted:
        return
    first, last = min(wanted), max(wanted)
    found: set[int] = set()
    if (last - first + 1) <= _SPARSE * len(wanted):
        for event_id, _account, body, _digest, _received in store.order_rows(first, last, ORDER_TYPES):
            if event_id in wanted:
                found.add(event_id)
                yield event_id, bytes(body)
    for event_id in sorted(wanted - found):
        event = store.get(event_id)
        if event is not None:
            yield event_id, bytes(event.body)


def rows(store: Any, orders: pd.DataFrame, items: pd.DataFrame, zone: tzinfo = timezone.utc,
         notes: list[str] | None = None) -> Iterator[list[str]]:
    """The data rows, one per order of `orders` in its order (values as the header names them)."""
    lines: dict[int, list[tuple]] = {}
    for event_id, name, option, quantity, price, total in zip(
            items["event_id"].tolist(), items["product_name"].tolist(), items["option_name"].tolist(),
            items["quantity"].tolist(), items["price_cents"].tolist(), items["total_cents"].tolist()):
        lines.setdefault(event_id, []).append((name, option, quantity, price, total))
    fields: dict[int, dict | None] = {}
    for event_id, stored in stored_bodies(store, [int(i) for i in orders["event_id"].tolist()]):
        try:
            fields[event_id] = body_fields(stored)
        except Exception:  # noqa: BLE001 (one body never stops the export: its cells stay empty)
            fields[event_id] = None
    unread = 0
    column = {name: _values(orders[name]) for name in (
        "order_id", "event_id", "customer_name", "customer_email", "payment_status", "shipping_status", "country",
        "currency", "item_count", "item_total_cents", "shipping_total_cents", "tax_total_cents",
        "discount_total_cents")}
    codes = _values(orders["discount_code"]) if "discount_code" in orders else [None] * len(orders)
    times = _local_times(orders, zone)
    for n in range(len(orders)):
        event_id = column["event_id"][n]
        body = fields.get(event_id)
        if body is None:
            unread += 1
            body = {"first": _blank(column["customer_name"][n])}
        item_total, shipping, tax, discount = (column[f"{name}_total_cents"][n]
                                               for name in ("item", "shipping", "tax", "discount"))
        total = None if item_total is None and shipping is None and tax is None and discount is None else \
            (item_total or 0) + (shipping or 0) + (tax or 0) - (discount or 0)
        remitted = body.get("remitted")
        yield [
            _blank(column["order_id"][n]), body.get("first", ""), body.get("last", ""),
            body.get("email") or _blank(column["customer_email"][n]), body.get("phone", ""), *times[n],
            _said(column["payment_status"][n]), _said(column["payment_status"][n]), body.get("transaction", ""),
            _said(column["shipping_status"][n]), body.get("methods", ""),
            *(body.get(key, "") for key in ("address_1", "address_2", "city", "state", "zip")),
            _said(column["country"][n]), _said(column["currency"][n]), items_cell(lines.get(event_id, [])),
            _blank(column["item_count"][n]), plain_money(item_total), plain_money(total), plain_money(shipping),
            plain_money(tax), "" if remitted is None else plain_money(tax if remitted else 0),
            plain_money(discount), _blank(codes[n]) or body.get("code", ""), SOURCE, body.get("note", ""), "",
        ]
    if unread and notes is not None:
        notes.append(f"{unread} order(s) whose stored body could not be read as an order: their names, phone, "
                     "address, transaction, shipping methods and note are empty")


def write_bigcartel_csv(store: Any, orders: pd.DataFrame, items: pd.DataFrame, out: Any,
                        zone: tzinfo = timezone.utc, progress: Progress = None,
                        notes: list[str] | None = None) -> int:
    """Big Cartel's admin order CSV of `orders` (their `items`, their stored bodies) into `out` (a path or `-`);
    `Date` and `Time` in `zone` (the store's zone; the kit does not know it: UTC unless told). The rows written."""
    count = 0
    with opened(out, binary=False) as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows(store, orders, items, zone, notes):
            writer.writerow(row)
            count += 1
            if progress and count % 1000 == 0:
                progress(1000)
    if progress and count % 1000:
        progress(count % 1000)
    return count


__all__ = ["HEADER", "body_fields", "date_time", "items_cell", "plain_money", "rows", "write_bigcartel_csv"]
