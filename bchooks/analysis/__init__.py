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
    reports.py   revenue, top products, customers, repeat rate, countries, open orders, time to ship, summary
    plots.py     figures of the reports, shown as pictures in Jupyter
"""

from collections import namedtuple

import pandas as pd

from ..store import Store
from . import plots
from .cache import Projection
from .reports import (_frame_of, customers, load_frames, money, open_orders, repeat_rate, revenue, sales_by_country,
                      shipping_times, summary, top_products)

Frames = namedtuple("Frames", "orders items")


def frames(store: Store) -> Frames:
    """`Frames(orders, items)` of a store: one row per order in its latest state (sorted by `created_at`, then
    `order_id`) and one row per line item of it (in that order, then by `line`). An order is (account_id,
    order_id); `store_name` names its shop where the store knows it (shops that were polled). Reads only what was
    stored since the last call (the cache beside the database)."""
    return Frames(*load_frames(store))


def for_shop(frames: Frames, account_id: str) -> Frames:
    """The frames of one shop (orders of `account_id` and their line items), for any report."""
    orders, items = frames
    mine = orders[(orders["account_id"] == str(account_id)).to_numpy()].reset_index(drop=True)
    return Frames(mine, items[items["event_id"].isin(mine["event_id"]).to_numpy()].reset_index(drop=True))


def by_shop(frames: Frames) -> dict:
    """{account_id: the frames of that shop}: any report, shop by shop (`{a: revenue(f.orders) for a, f in ...}`)."""
    accounts = frames[0]["account_id"].dropna().unique()
    return {account: for_shop(frames, account) for account in sorted(accounts)}


def orders_frame(source) -> pd.DataFrame:
    """The orders frame (`frames(store).orders`); a DataFrame is returned as is. Deprecated for a store."""
    return _frame_of(source, 0, "orders_frame")


def line_items_frame(source) -> pd.DataFrame:
    """The line items frame (`frames(store).items`); a DataFrame is returned as is. Deprecated for a store."""
    return _frame_of(source, 1, "line_items_frame")


__all__ = ["Frames", "Projection", "by_shop", "customers", "for_shop", "frames", "line_items_frame", "money", "open_orders", "orders_frame",
           "plots", "repeat_rate", "revenue", "sales_by_country", "shipping_times", "summary", "top_products"]
