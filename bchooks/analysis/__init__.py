"""Order analysis: the true latest state of every order as pandas frames, the reports a seller asks for, plots.

    from bchooks import EventStore, analysis
    orders, items = analysis.frames(store)      # the one entry point
    analysis.revenue(orders, "W"); analysis.summary(orders, items); analysis.plots.revenue_figure(...)

How the parts depend on each other (data flows down):

    rows.py      reading order events into rows (either envelope format and payload shape; a fast msgspec path
                 for the usual body, held equal to the general path by a property test)
    latest.py    deciding each order's latest state (newest `updated_at` wins, ties by the body's digest), the
                 frames' documented order, folding a delta into a state, tidy categoricals
    cache.py     the columnar cache beside the database (Arrow IPC segments, incremental, parallel first build)
    grouping.py  group-by on integer codes with NumPy (exact sums), used by the reports
    reports.py   revenue, top products, customers, repeat rate, countries, open orders, time to ship, summary,
                 orders by weekday and hour
    periods.py   calendar periods and customers as integers, the orders a report counts (for the two below)
    trading.py   average order value, refunds (spikes flagged), discounts and codes, this period against the last
    cohorts.py   retention by first-order month, returning customer rate, repeat purchase rate
    present.py   the reports as a person reads them (money in its currency, days and hours, percentages, dates)
    plots.py     figures of the reports, shown as pictures in Jupyter
    catalogue.py the latest state of every product option (`products(store)`) and the catalogue's health
    fulfilment.py  paid orders not shipped, against the promised days (`late_orders`)
"""

import os
from collections import namedtuple

import pandas as pd

from ..store import Store
from . import plots, present
from .catalogue import Catalogue, catalogue, products
from .cohorts import repeat_purchase_rate, retention, returning_customer_rate
from .fulfilment import late_orders
from .cache import Projection
from .latest import shop_rows, tidy_frame
from .reports import (_frame_of, customers, load_frames, money, open_orders, repeat_rate, revenue, sales_by_country,
                      shipping_times, summary, top_products, weekday_hours)
from .trading import Discounts, compare_periods, discounts, order_values, refunds

Frames = namedtuple("Frames", "orders items")


def frames(store: Store, archive: str | os.PathLike | None = None) -> Frames:
    """`Frames(orders, items)` of a store: one row per order in its latest state (sorted by `created_at`, then
    `order_id`) and one row per line item of it (in that order, then by `line`). An order is (account_id,
    order_id); both frames carry `account_id` and `store_name` (its shop's name where the store knows it: shops that
    were polled). One shop's frames: `for_shop`. Reads only what was stored since the last call (the cache beside
    the database). `archive`: an archive directory (`bchooks archive --to`) read too, so that the frames are those
    of every event, archived or stored (the cache is then built with the archive; see docs/archives.md)."""
    return Frames(*load_frames(store, archive))


def for_shop(frames: Frames | tuple, account_id: str | None) -> Frames:
    """The frames of one shop, as a store holding that shop alone gives them: its orders and their line items
    (both selected by account; categories only its own), for any report. `None`: the orders without an account,
    when the frames hold several shops (beside one shop they are that shop's)."""
    orders, items = frames
    known = orders["account_id"].dropna().unique() if "account_id" in orders else ()
    return Frames(*(tidy_frame(frame[shop_rows(frame, account_id, known)].reset_index(drop=True))
                    for frame in (orders, items)))


def by_shop(frames: Frames | tuple) -> dict:
    """{account_id: `for_shop(frames, account_id)`} for every shop in the frames, by account id (`None` last:
    orders without an account beside several shops). Any report, shop by shop:
    `{account: analysis.revenue(shop.orders) for account, shop in analysis.by_shop(frames).items()}`."""
    orders = frames[0]
    if "account_id" not in orders:
        return {None: Frames(*frames)}
    accounts: list = sorted(orders["account_id"].dropna().unique())
    if orders["account_id"].isna().any() and len(accounts) != 1:
        accounts.append(None)
    return {account: for_shop(frames, account) for account in accounts}


def orders_frame(source) -> pd.DataFrame:
    """The orders frame (`frames(store).orders`); a DataFrame is returned as is. Deprecated for a store."""
    return _frame_of(source, 0, "orders_frame")


def line_items_frame(source) -> pd.DataFrame:
    """The line items frame (`frames(store).items`); a DataFrame is returned as is. Deprecated for a store."""
    return _frame_of(source, 1, "line_items_frame")


__all__ = ["Catalogue", "Discounts", "Frames", "Projection", "by_shop", "catalogue", "compare_periods", "customers",
           "discounts", "for_shop", "frames", "late_orders", "line_items_frame", "money", "open_orders",
           "order_values", "orders_frame", "plots", "present", "products", "refunds", "repeat_purchase_rate",
           "repeat_rate", "retention", "returning_customer_rate", "revenue", "sales_by_country", "shipping_times",
           "summary", "top_products", "weekday_hours"]
