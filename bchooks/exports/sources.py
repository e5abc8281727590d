"""What each export holds: the tables a store gives (orders, items, customers, products, events), selected by shop
and time, exactly as the analysis frames hold them (money in integer cents, times as UTC datetimes).

    orders     `analysis.frames(store).orders`, created at or after `since`
    items      the line items of those orders (`frames.items`, joined on each order's winning event)
    customers  `analysis.customers(orders)` of those orders
    products   `analysis.products(store)` (when this bchooks has it), updated at or after `since`
    events     the stored events as they are (id, received_at, type, account_id, resource_id, body as text),
               received at or after `since`, read in batches
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from ..errors import InputError

#: the tables an export may hold, in the order `all` writes them (products only when the analysis has it)
TABLES = ("orders", "items", "customers", "products", "events")
#: the tables `all` writes into one workbook (the events' bodies are left to an export of their own)
ALL = ("orders", "items", "customers", "products")
EVENT_BATCH = 10_000


def available_tables() -> tuple[str, ...]:
    """The tables this bchooks can export (`products` needs `analysis.products`)."""
    from .. import analysis
    return tuple(name for name in TABLES if name != "products" or hasattr(analysis, "products"))


@dataclass(frozen=True)
class Selection:
    """Which rows an export holds: one shop's (`shop`, an account id; None: every shop) from `since` (an aware
    datetime; None: all time)."""

    since: datetime | None = None
    shop: str | None = None

    def stamp(self) -> pd.Timestamp | None:
        return None if self.since is None else pd.Timestamp(self.since).tz_convert("UTC")


def _shops(orders: pd.DataFrame) -> list[str]:
    return sorted(str(a) for a in orders["account_id"].dropna().unique()) if "account_id" in orders else []


def order_frames(store: Any, selection: Selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders, items) of the selection: one shop's (`analysis.for_shop`; an account the store does not hold is an
    `InputError` naming those it holds), orders created at or after `since`, and their line items."""
    from .. import analysis
    frames = analysis.frames(store)
    if selection.shop is not None:
        known = _shops(frames.orders)
        if selection.shop not in known:
            raise InputError(f"no shop {selection.shop} in the store (its shops: {', '.join(known) or 'none'})")
        frames = analysis.for_shop(frames, selection.shop)
    orders, items = frames
    since = selection.stamp()
    if since is not None:
        orders = orders[(orders["created_at"] >= since).to_numpy(dtype=bool, na_value=False)].reset_index(drop=True)
        items = items[items["event_id"].isin(orders["event_id"])].reset_index(drop=True)
    return orders, items


def products_frame(store: Any, selection: Selection) -> pd.DataFrame:
    """`analysis.products(store)` of the selection (its shop; updated at or after `since`)."""
    from .. import analysis
    if not hasattr(analysis, "products"):
        raise InputError("this bchooks has no products table yet (analysis.products)")
    products = analysis.products(store)
    if selection.shop is not None:
        products = products[(products["account_id"] == selection.shop).to_numpy(dtype=bool, na_value=False)]
    since = selection.stamp()
    if since is not None:
        products = products[(products["updated_at"] >= since).to_numpy(dtype=bool, na_value=False)]
    return products.reset_index(drop=True)


def table_frame(store: Any, name: str, selection: Selection) -> pd.DataFrame:
    """The frame of one table but `events` (see `event_frames`)."""
    from .. import analysis
    if name == "products":
        return products_frame(store, selection)
    orders, items = order_frames(store, selection)
    if name == "orders":
        return orders
    if name == "items":
        return items
    if name == "customers":
        return analysis.customers(orders)
    raise InputError(f"unknown table {name!r}; tables: {', '.join(available_tables())}")


#: the columns of the events table, with their types (the same in every batch: a Parquet file has one schema)
EVENT_COLUMNS = {"id": "int64", "received_at": "datetime64[us, UTC]", "type": "str", "account_id": "str",
                 "resource_id": "str", "body": "str"}


def event_frames(store: Any, selection: Selection, batch: int = EVENT_BATCH) -> Iterator[pd.DataFrame]:
    """The stored events of the selection, in id order, as frames of at most `batch` rows: received at or after
    `since`, of one shop (its `account_id`). The body is its text (stored bodies are UTF-8; a byte that is not is
    shown as U+FFFD)."""
    from ..clock import iso
    since = iso(selection.since) if selection.since is not None else None
    rows: list[tuple] = []
    for event in store.iter_events(since=since, batch=batch):
        if selection.shop is not None and event.account_id != selection.shop:
            continue
        rows.append((event.id, event.received_at, event.type, event.account_id, event.resource_id,
                     bytes(event.body).decode("utf-8", "replace")))
        if len(rows) >= batch:
            yield _event_frame(rows)
            rows = []
    if rows:
        yield _event_frame(rows)


def _event_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True, format="ISO8601", errors="coerce")
    return frame.astype(EVENT_COLUMNS)


def empty_events() -> pd.DataFrame:
    """The events table with no rows (its columns and types)."""
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in EVENT_COLUMNS.items()})
