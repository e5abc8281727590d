"""Packing lists: one printable HTML page per order, to print or save as PDF from the browser.

`packing_list_html(orders, items, order_ids, store=store)` gives the page: per order its shop, number, date, the
customer's name and shipping address, and its line items (quantity, product, option) each with an empty box to
tick while packing. The frames hold everything but the address: with `store`, the address and the customer's first
and last names are read from the stored body of the event holding the order's latest state (the order row's
`event_id`), as `bchooks export --format bigcartel` does (`exports.bigcartel_csv.body_fields`). Every text a buyer
or the shop wrote is HTML-escaped. Printing: each order ends with `page-break-after: always`, so the browser's
Print (or Save as PDF) puts one order on each sheet; no PDF library is needed.
"""

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..exports.bigcartel_csv import body_fields, date_time, stored_bodies

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #111; }
.order { page-break-after: always; break-after: page; margin-bottom: 3em; }
.order:last-child { page-break-after: auto; break-after: auto; }
.order h1 { font-size: 1.4em; margin: 0 0 0.2em; }
.order .shop { color: #555; margin: 0 0 1em; }
.order address { font-style: normal; margin: 0 0 1.2em; line-height: 1.4; }
.order table { border-collapse: collapse; width: 100%; }
.order th, .order td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #ccc; }
.order td.qty { width: 4em; }
.order td.box { width: 2em; font-size: 1.3em; }
.hint { color: #555; }
@media print { .hint { display: none; } body { margin: 0; } }
"""


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _e(value: Any) -> str:
    return html.escape(_text(value))


def _keys(orders: pd.DataFrame, order_ids: Iterable[Any]) -> list[int]:
    """Row positions of `orders` for each wanted order, in the order asked: an order id (every shop's order with
    that number) or an (account_id, order_id) pair. An order not in the frame is left out."""
    ids = orders["order_id"].astype(object).tolist()
    accounts = orders["account_id"].astype(object).tolist() if "account_id" in orders else [None] * len(ids)
    by_order: dict[str, list[int]] = {}
    by_pair: dict[tuple, list[int]] = {}
    for n, (account, order) in enumerate(zip(accounts, ids)):
        by_order.setdefault(str(order), []).append(n)
        by_pair.setdefault((None if account is None or account != account else str(account), str(order)),
                           []).append(n)
    rows: list[int] = []
    for wanted in order_ids:
        if isinstance(wanted, tuple):
            account, order = wanted
            found = by_pair.get((None if account is None else str(account), str(order)), [])
        else:
            found = by_order.get(str(wanted), [])
        rows.extend(n for n in found if n not in rows)
    return rows


def _lines(items: pd.DataFrame, account: Any, order_id: Any) -> list[tuple[str, str, str]]:
    """(quantity, product, option) of an order's line items, by `line`."""
    mine = items["order_id"].astype(object) == order_id
    if "account_id" in items and account is not None:
        mine &= items["account_id"].astype(object) == account
    chosen = items[mine.fillna(False).to_numpy(bool)]
    if "line" in chosen:
        chosen = chosen.sort_values("line", kind="stable")
    return [(_text(q), _text(name), _text(option)) for q, name, option in zip(
        chosen["quantity"].tolist() if "quantity" in chosen else [""] * len(chosen),
        chosen["product_name"].astype(object).tolist() if "product_name" in chosen else [""] * len(chosen),
        chosen["option_name"].astype(object).tolist() if "option_name" in chosen else [""] * len(chosen))]


def _address(fields: dict | None, row: dict) -> list[str]:
    """The address lines of an order: the stored body's fields, the frame's country."""
    fields = fields or {}
    place = " ".join(part for part in (fields.get("city", ""), fields.get("state", ""), fields.get("zip", ""))
                     if part)
    country = _text(row.get("country_name")) or _text(row.get("country"))
    return [line for line in (fields.get("address_1", ""), fields.get("address_2", ""), place,
                              "" if country == "unknown" else country) if line]


def _order_html(row: dict, lines: list[tuple[str, str, str]], fields: dict | None) -> str:
    name = " ".join(part for part in ((fields or {}).get("first", ""), (fields or {}).get("last", "")) if part) \
        or _text(row.get("customer_name"))
    shop = _text(row.get("store_name")) or (f"shop {_text(row.get('account_id'))}" if _text(row.get("account_id"))
                                            else "")
    date, _ = date_time(row.get("created_at") if row.get("created_at") is not None else row.get("completed_at"))
    address = "".join(f"{_e(line)}<br>" for line in _address(fields, row))
    body = "".join(f"<tr><td class='box'>&#9744;</td><td class='qty'>{_e(q)}</td><td>{_e(product)}</td>"
                   f"<td>{_e(option)}</td></tr>" for q, product, option in lines) or \
        "<tr><td colspan='4'><i>no line items stored for this order</i></td></tr>"
    return (f"<section class='order'><h1>Order #{_e(row.get('order_id'))}</h1>"
            f"<p class='shop'>{_e(shop)}{' · ' if shop and date else ''}{_e(date)}</p>"
            f"<address><b>{_e(name)}</b><br>{address}</address>"
            "<table><thead><tr><th>packed</th><th>qty</th><th>product</th><th>option</th></tr></thead>"
            f"<tbody>{body}</tbody></table></section>")


def packing_list_html(orders: pd.DataFrame, items: pd.DataFrame, order_ids: Iterable[Any],
                      store: Any = None) -> str:
    """A printable HTML page of the packing lists of `order_ids` (order ids, or (account_id, order_id) pairs when
    the frames hold several shops; in the order given), one order per printed page. `orders`, `items`: the frames
    (`analysis.frames(store)`). `store`: where to read each order's address and the customer's names from (the
    stored body of its latest state); without it the page has the frame's customer name and country only."""
    rows = orders.iloc[_keys(orders, order_ids)] if len(orders) else orders
    records = rows.to_dict("records")
    if len(items) and "order_id" in items:  # (the chosen orders' lines once, not the whole frame per order)
        items = items[items["order_id"].astype(object).isin(set(rows["order_id"].astype(object).tolist()))]
    fields: dict[int, dict | None] = {}
    if store is not None and "event_id" in rows:
        for event_id, body in stored_bodies(store, [int(e) for e in rows["event_id"].tolist()]):
            try:
                fields[event_id] = body_fields(body)
            except Exception:  # noqa: BLE001 (one unreadable body leaves that order without its address)
                fields[event_id] = None
    pages = [_order_html(row, _lines(items, row.get("account_id"), row.get("order_id")),
                         fields.get(int(row["event_id"])) if "event_id" in row else None) for row in records]
    title = f"Packing list: {len(pages)} order{'s' if len(pages) != 1 else ''}"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            "<p class='hint'>Print this page (or save it as PDF) from the browser: one order a sheet.</p>"
            + ("".join(pages) or "<p>No order chosen.</p>") + "</body></html>")


__all__ = ["packing_list_html"]
