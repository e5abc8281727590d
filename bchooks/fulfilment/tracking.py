"""Tracking numbers from a file: the CSV a carrier's site or a label tool exports (ShipStation, Pirate Ship,
Shippo, Stamps.com/Endicia, EasyPost, a spreadsheet), one shipment a row, columns matched by their header.

Accepted headers (case, spaces, `_`, `-`, `.` and `#` do not matter; see `COLUMNS`):

- order (required): `Order`, `Order Number`, `Order #`, `Order No`, `Order ID`, `Number`, `Reference`, `Order
  Reference`, `Customer Reference`, `Reference 1`
- tracking number: `Tracking Number`, `Tracking #`, `Tracking No`, `Tracking`, `Tracking Code`, `Tracking ID`,
  `Waybill`, `AWB`
- carrier: `Carrier`, `Carrier Name`, `Shipping Carrier`, `Courier`, `Provider`, `Shipping Provider`, `Service
  Provider`
- tracking URL: `Tracking URL`, `Tracking Link`, `Tracking Page`, `URL`
- shop (when the file holds several): `Account`, `Account ID`, `Shop`, `Store`, `Shop ID`
- items (optional): `Items` as `LINE:QTY,LINE:QTY` (order line item ids); empty: every line
- notify (optional): `Notify`, `Notify Customer` (yes/no, true/false, 1/0)

Commas, semicolons or tabs separate the columns (found from the header); UTF-8 with or without a BOM. A bad row
is an `InputError` naming the file and its line; nothing is shipped from a file with one.
"""

import csv
import re
from pathlib import Path

from ..errors import InputError
from .shipping import Shipment

COLUMNS = {
    "order": ("order", "ordernumber", "orderno", "orderid", "number", "reference", "orderreference",
              "customerreference", "reference1", "ordernum", "ordername"),
    "tracking_number": ("trackingnumber", "trackingno", "tracking", "trackingcode", "trackingid", "waybill", "awb",
                        "trackingnum"),
    "carrier": ("carrier", "carriername", "shippingcarrier", "courier", "provider", "shippingprovider",
                "serviceprovider", "carriercode"),
    "tracking_url": ("trackingurl", "trackinglink", "trackingpage", "url"),
    "account_id": ("account", "accountid", "shop", "store", "shopid", "storeid"),
    "items": ("items", "lines", "lineitems"),
    "notify": ("notify", "notifycustomer", "notifybuyer", "emailcustomer"),
}
_YES, _NO = {"yes", "y", "true", "1", "x"}, {"no", "n", "false", "0", ""}
_ITEM = re.compile(r"^\s*([^:,\s]+)\s*:\s*(\d+)\s*$")


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower().replace("#", "number"))


def parse_items(text: str, where: str = "--items") -> tuple[tuple[str, int], ...]:
    """`LINE:QTY,LINE:QTY` as (order_line_item_id, quantity) pairs; `InputError` naming `where` otherwise."""
    items = []
    for part in [p for p in re.split(r"[,;]", text or "") if p.strip()]:
        match = _ITEM.match(part)
        if not match or int(match.group(2)) < 1:
            raise InputError(f"{where}: {part.strip()!r} is not LINE:QTY (an order line item id, a colon, a "
                             f"quantity of 1 or more)")
        items.append((match.group(1), int(match.group(2))))
    return tuple(items)


def _columns(header: list[str], path: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _key(name)
        for field, spellings in COLUMNS.items():
            if key in spellings and field not in found:
                found[field] = index
    if "order" not in found:
        shown = ", ".join(repr(h) for h in header[:12]) or "none"
        raise InputError(f"{path}, line 1: no order number column (headers found: {shown}); name it Order Number, "
                         f"Order #, Order ID or Reference")
    return found


def _flag(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InputError(f"{where}: notify must be yes or no, got {text.strip()[:20]!r}")


def read_tracking_csv(path: str | Path, account_id: str | None = None) -> list[Shipment]:
    """The shipments of a tracking CSV, in file order; `account_id` is the shop of rows without an account column
    (or an empty cell). `InputError` (naming the line) for a file that cannot be read or a bad row."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"no tracking file at {name}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text: save it as CSV (UTF-8)") from None
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror or error}") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{name} is empty: it needs a header line naming its columns") from None
    except csv.Error as error:
        raise InputError(f"{name}, line 1: {error}") from None
    columns = _columns(header, name)
    shipments = []
    try:
        for row in reader:
            where = f"{name}, line {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue

            def cell(field: str) -> str:
                index = columns.get(field)
                return row[index].strip() if index is not None and index < len(row) else ""
            order = cell("order").lstrip("#").strip()
            if not order:
                raise InputError(f"{where}: no order number")
            shop = cell("account_id") or account_id
            if not shop:
                raise InputError(f"{where}: which shop? give --shop ACCOUNT or an account column")
            url = cell("tracking_url")
            if url and not re.match(r"^https?://\S+$", url):
                raise InputError(f"{where}: the tracking URL must start with http:// or https://")
            shipments.append(Shipment(str(shop), order, cell("carrier") or None, cell("tracking_number") or None,
                                      url or None, parse_items(cell("items"), where), _flag(cell("notify"), where)))
    except csv.Error as error:
        raise InputError(f"{name}, line {reader.line_num}: {error}") from None
    return shipments
