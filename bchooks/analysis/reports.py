"""The reports a seller asks for, over the frames `analysis.frames(store)` returns: each takes frames only and
returns a tidy DataFrame in a documented order. Money is integer cents in the frames (`*_cents`, exact); reports
give money as `Decimal`.

Passing a store, a `Projection` or a tuple instead of frames still works for one release, with a
`DeprecationWarning` (`_frame_of`).
"""

import warnings
from decimal import Decimal
from typing import Any


import numpy as np
import pandas as pd

from ..wire import money_of_cents
from . import grouping
from .cache import Projection
from .latest import order_keys

REFUNDED = "refunded"


def load_frames(store: Any, archive: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders, items) of a store: the latest state of every order, and its line items (`Projection.frames`), each
    row with the `store_name` of its shop where the store knows it (missing for a shop seen only through webhooks)."""
    with Projection(store, archive=archive) as projection:
        orders, items = projection.frames()
    names = store.cursors.shop_names()
    for frame in (orders, items):
        frame.insert(frame.columns.get_loc("account_id") + 1, "store_name", _store_names(frame["account_id"], names))
    return orders, items


def _store_names(accounts, names):
    """The categorical of each row's shop name (missing where unknown), from the few distinct accounts: a million
    rows are factorized once, never mapped one by one (0.04 s instead of 0.3)."""
    if not names or not len(accounts):
        return pd.Categorical.from_codes(np.full(len(accounts), -1), categories=[])
    codes, accounts_seen = pd.factorize(accounts)
    labels = [names.get(account) for account in accounts_seen]
    present = sorted({label for label in labels if label is not None})
    position = {label: n for n, label in enumerate(present)}
    lookup = np.array([position.get(label, -1) if label is not None else -1 for label in labels] + [-1])
    return pd.Categorical.from_codes(lookup[codes], categories=present)


def _frame_of(source, which, report):
    """The frame a report needs: `source` itself when it is a DataFrame; what older calls passed (a store, a
    `Projection`, an (orders, items) tuple) with a DeprecationWarning."""
    if isinstance(source, pd.DataFrame):
        return source
    warnings.warn(f"analysis.{report}() takes frames from analysis.frames(store) now; passing "
                  f"{type(source).__name__} is deprecated and stops working in the next release",
                  DeprecationWarning, stacklevel=3)
    if isinstance(source, tuple):
        return source[which]
    frames = source.frames() if isinstance(source, Projection) else load_frames(source)
    return frames[which]


def money(cents: Any) -> Decimal | None:
    """Exact `Decimal` of integer cents (None for missing)."""
    if cents is None or pd.isna(cents):
        return None
    return money_of_cents(int(cents))


def _int_cents(series):
    return series.to_numpy("int64", na_value=0)


def _money_array(cents):
    return pd.Series([money(c) for c in cents], dtype=object)


def _kept(frame):
    """Mask of the rows (orders or line items) of orders not refunded."""
    status = frame["payment_status"]
    if isinstance(status.dtype, pd.CategoricalDtype):  # compare codes: no string work on millions of rows
        labels = status.cat.categories
        return status.cat.codes.to_numpy() != (labels.get_loc(REFUNDED) if REFUNDED in labels else -2)
    return (status != REFUNDED).to_numpy()


_DAY_US = 86_400_000_000


def _periods(created, freq):
    """(period number, period start as datetime64[us]) for int64 microseconds since the epoch."""
    days = created // _DAY_US
    if freq == "D":
        return days, days * _DAY_US
    if freq == "W":  # 1970-01-01 was a Thursday: weeks from Monday
        weeks = (days + 3) // 7
        return weeks, (weeks * 7 - 3) * _DAY_US
    months = created.astype("datetime64[us]").astype("datetime64[M]").view("int64")
    return months, months.astype("datetime64[M]").astype("datetime64[us]").view("int64")


def revenue(orders: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Revenue of orders not refunded, per period (`D`, `W` weeks from Monday, `M`) and currency.

    Columns: period (start, UTC), currency, orders, revenue (Decimal). Sorted by period, then currency; the frame's
    `attrs["freq"]` is `freq`."""
    if freq not in ("D", "W", "M"):
        raise ValueError("freq must be 'D', 'W' or 'M'")
    orders = _frame_of(orders, 0, "revenue")
    keep = _kept(orders) & orders["created_at"].notna().to_numpy()
    created = orders["created_at"].to_numpy("datetime64[us]").view("int64")[keep]
    period, start = _periods(created, freq)
    currency, currencies = grouping.codes(orders["currency"])
    currency = currency[keep]
    base = int(period.min()) if len(period) else 0
    groups = grouping.Groups((period - base, int(period.max() - base) + 1 if len(period) else 0),
                             (currency, len(currencies)))
    result = pd.DataFrame({
        "period": pd.to_datetime(groups.max(start), unit="us", utc=True),
        "currency": grouping.labels_of(currencies, groups.keys[1]),
        "orders": groups.size(),
        "revenue": _money_array(groups.sum(_int_cents(orders["total_cents"])[keep])),
    })
    order = np.lexsort((grouping.ranks(currencies, groups.keys[1]), groups.keys[0]))
    result = result.take(order).reset_index(drop=True)
    result.attrs["freq"] = freq  # (how `present` names the periods: `Week of 1 Dec 2025`)
    return result


def top_products(items: pd.DataFrame, orders: Any = None, by: str = "revenue", n: int = 10,
                 options: bool = False) -> pd.DataFrame:
    """The `n` best products (or product options) of orders not refunded. (`orders` is deprecated: each line
    item carries its order's payment status.)

    by="revenue": one row per product and currency (money cannot be added across currencies);
    by="units": one row per product. Columns: product_name[, option_name][, currency], units, orders[, revenue].
    Sorted by the chosen measure, descending, then by name."""
    if by not in ("revenue", "units"):
        raise ValueError("by must be 'revenue' or 'units'")
    items = _frame_of(items, 1, "top_products")
    if orders is not None:
        warnings.warn("analysis.top_products() needs no orders frame any more (each line item carries its order's "
                      "payment status): drop the second argument; it stops being accepted in the next release",
                      DeprecationWarning, stacklevel=2)
    names = ["product_name"] + (["option_name"] if options else []) + (["currency"] if by == "revenue" else [])
    keep = _kept(items)
    columns = [grouping.codes(items[name]) for name in names]
    groups = grouping.Groups(*((found, len(labels)) for found, labels in columns), keep=keep)
    grouped = pd.DataFrame({name: groups.keys[k] for k, name in enumerate(names)})
    grouped["units"] = groups.sum(items["quantity"].to_numpy("int64", na_value=0))
    grouped["orders"] = groups.distinct(items["event_id"].to_numpy("int64"))
    grouped["revenue_cents"] = groups.sum(_int_cents(items["total_cents"]))
    ranked = [grouping.ranks(labels, grouped[name].to_numpy()) for name, (_, labels) in zip(names, columns)]
    measure = grouped["revenue_cents" if by == "revenue" else "units"].to_numpy()
    grouped = grouped.take(np.lexsort((*reversed(ranked), -measure))[:n]).reset_index(drop=True)
    for name, (_, labels) in zip(names, columns):
        grouped[name] = grouping.labels_of(labels, grouped[name].to_numpy())
    if by == "revenue":
        grouped["revenue"] = _money_array(grouped["revenue_cents"])
    return grouped.drop(columns="revenue_cents")


def customers(orders: pd.DataFrame) -> pd.DataFrame:
    """One row per customer (by email) and currency: name, orders, first and last order, lifetime value
    (`lifetime_value_cents`, exact integer cents, of orders not refunded). Sorted as a person asks, most valuable
    first: lifetime value descending, then email, then currency (money is never added across currencies, so the
    cents of different currencies are compared as numbers here: split by shop for one currency). Orders without an
    e-mail form one row per currency whose `customer_email` and `customer_name` are missing, after every customer
    (by lifetime value descending, then currency)."""
    orders = _frame_of(orders, 0, "customers")
    keep = _kept(orders)
    (email, emails), (currency, currencies) = (grouping.codes(orders[name]) for name in ("customer_email", "currency"))
    groups = grouping.Groups((email, len(emails)), (currency, len(currencies)), keep=keep)
    created = orders["created_at"].to_numpy("datetime64[us]").view("int64")
    known = created != np.iinfo(np.int64).min  # NaT
    ltv = groups.sum(_int_cents(orders["total_cents"]))
    anonymous = groups.keys[0] < 0
    order = np.lexsort((grouping.ranks(currencies, groups.keys[1]), grouping.ranks(emails, groups.keys[0]), -ltv,
                        anonymous))
    first_at = groups.min(np.where(known, created, np.iinfo(np.int64).max))[order]
    last_at = groups.max(created)[order]
    # sorted by created_at: the newest row carries the latest name (none for orders without an e-mail)
    names = orders["customer_name"].take(groups.last_row()[order]).reset_index(drop=True)
    result = pd.DataFrame({
        "customer_email": grouping.labels_of(emails, groups.keys[0][order]),
        "currency": grouping.labels_of(currencies, groups.keys[1][order]),
        "customer_name": names.where(~anonymous[order]),
        "orders": groups.size()[order],
        "first_order": pd.to_datetime(np.where(first_at == np.iinfo(np.int64).max, last_at, first_at),
                                      unit="us", utc=True),
        "last_order": pd.to_datetime(last_at, unit="us", utc=True),
        "lifetime_value_cents": ltv[order],
    })
    return result


def repeat_rate(orders: pd.DataFrame) -> float:
    """Share of customers (by email) with two or more orders not refunded; 0.0 with no customers. Orders without an
    e-mail cannot be told apart by customer and are left out of the rate (`summary` counts them)."""
    orders = _frame_of(orders, 0, "repeat_rate")
    keep = _kept(orders) & orders["customer_email"].notna().to_numpy()
    email, emails = grouping.codes(orders["customer_email"])
    counts = np.bincount(email[keep], minlength=len(emails))
    customers = int((counts > 0).sum())
    return float((counts >= 2).sum() / customers) if customers else 0.0


def sales_by_country(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders and revenue per shipping country and currency, sorted by orders descending, then country."""
    orders = _frame_of(orders, 0, "sales_by_country")
    keep = _kept(orders)
    (country, countries), (currency, currencies) = (grouping.codes(orders[name]) for name in ("country", "currency"))
    groups = grouping.Groups((country, len(countries)), (currency, len(currencies)), keep=keep)
    result = pd.DataFrame({
        "country": grouping.labels_of(countries, groups.keys[0]),
        "currency": grouping.labels_of(currencies, groups.keys[1]),
        "country_name": orders["country_name"].take(groups.first_row()).reset_index(drop=True),
        "orders": groups.size(),
        "revenue_cents": groups.sum(_int_cents(orders["total_cents"])),
    })
    result = result.sort_values(["orders", "country", "currency"], ascending=[False, True, True],
                                ignore_index=True)
    result["revenue"] = _money_array(result.pop("revenue_cents"))
    return result


def _shop_columns(orders):
    """The columns naming an order's shop that `orders` has (two shops may use the same order numbers)."""
    return [name for name in ("account_id", "store_name") if name in orders]


def open_orders(orders: pd.DataFrame, now: Any = None) -> pd.DataFrame:
    """Paid orders not shipped yet, oldest first: account_id, store_name, order_id, created_at, age, customer_name,
    currency, total_cents (the shop's columns when the frame has them)."""
    orders = _frame_of(orders, 0, "open_orders")  # sorted by created_at, then order_id: already oldest first
    shop = _shop_columns(orders)
    frame = orders[[*shop, "order_id", "created_at", "customer_name", "currency", "total_cents"]]
    frame = frame[_kept(orders) & (orders["shipping_status"] == "unshipped").to_numpy()]
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return pd.DataFrame({**{name: frame[name] for name in shop}, "order_id": frame["order_id"],
                         "created_at": frame["created_at"], "age": now - frame["created_at"],
                         "customer_name": frame["customer_name"], "currency": frame["currency"],
                         "total_cents": frame["total_cents"]}).reset_index(drop=True)


def shipping_times(orders: pd.DataFrame) -> pd.DataFrame:
    """Shipped orders with the time from order to the first event that showed them shipped; slowest first (then
    by order id and account). Columns: account_id, store_name (when the frame has them), order_id, created_at,
    shipped_at, time_to_ship."""
    frame = _frame_of(orders, 0, "shipping_times")
    shop = _shop_columns(frame)
    frame = frame[[*shop, "order_id", "created_at", "shipped_at"]][frame["shipped_at"].notna().to_numpy()]
    result = pd.DataFrame({**{name: frame[name] for name in shop}, "order_id": frame["order_id"],
                           "created_at": frame["created_at"], "shipped_at": frame["shipped_at"],
                           "time_to_ship": frame["shipped_at"] - frame["created_at"]})
    keys = ["time_to_ship", "order_id", *shop[:1]]
    return result.sort_values(keys, ascending=[False, *[True] * (len(keys) - 1)], ignore_index=True)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def weekday_hours(orders: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """Orders placed per weekday and hour of the day: every order with a `created_at` (refunded ones too: this is
    when people buy), its time read in `tz` (an IANA name such as `"America/New_York"`; default UTC, the frames'
    time). Index `weekday` (`Mon` to `Sun`), columns the hours 0 to 23, integer counts (zero where none)."""
    created = _frame_of(orders, 0, "weekday_hours")["created_at"].dropna()
    stamps = pd.DatetimeIndex(created)
    local = (stamps if stamps.tz is not None else stamps.tz_localize("UTC")).tz_convert(tz)  # (naive: UTC)
    cells = np.bincount(local.day_of_week.to_numpy() * 24 + local.hour.to_numpy(), minlength=7 * 24)
    return pd.DataFrame(cells.reshape(7, 24), index=pd.Index(WEEKDAYS, name="weekday"), columns=range(24))


def _duration_text(value):
    """A duration as a person writes it: `18 h 35 min`, `3 d 4 h`, `12 min`, `45 s`."""
    seconds = int(pd.Timedelta(value).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{secs} s"


def _moment_text(value):
    """`2026-11-30 14:02 UTC`, from the parts (strftime refuses years before 1: a body may say `"-3.10"`)."""
    if value is None or pd.isna(value):
        return None
    t = pd.Timestamp(value)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d} UTC"


def _of_orders(items, orders):
    """Mask of the line items of `orders`, joined on (account_id, order_id): by `event_id` when both frames carry
    it (each line item carries the event that set its order's state, one (account, order) of one store)."""
    if "event_id" in items and "event_id" in orders:
        return np.isin(items["event_id"].to_numpy("int64"), orders["event_id"].to_numpy("int64"))
    if "order_id" not in items or "order_id" not in orders:  # (frames built by hand: nothing to join on)
        return np.ones(len(items), dtype=bool)
    columns = [c for c in ("account_id", "order_id") if c in items and c in orders]
    own, theirs = order_keys(orders[columns], items[columns])
    return np.isin(theirs, own)


def summary(orders: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Headline numbers in one call, written for a person: a one-column DataFrame indexed by metric. Counts are
    integers, revenue exact `Decimal` per currency, the repeat rate a percentage (`53.6%`), times as text
    (`18 h 35 min`, `2026-11-30 14:02 UTC`); the reports have the same figures as numbers. `units sold` counts the
    line items of `orders` only (joined on (account, order)), whatever other items `items` holds."""
    if not isinstance(orders, pd.DataFrame):  # (older calls: a store, a Projection, or an (orders, items) tuple)
        orders, items = _frame_of(orders, 0, "summary"), _frame_of(orders, 1, "summary")
    keep = _kept(orders)
    email, emails = grouping.codes(orders["customer_email"])
    counts = np.bincount(email[keep & (email >= 0)], minlength=len(emails))
    shipped = orders["shipped_at"].notna().to_numpy() & orders["created_at"].notna().to_numpy()
    time_to_ship = (orders["shipped_at"].to_numpy("datetime64[us]")[shipped]
                    - orders["created_at"].to_numpy("datetime64[us]")[shipped])
    rows = {
        "orders": len(orders),
        "refunded orders": int((~keep).sum()),
        "open orders (unshipped)": int((keep & (orders["shipping_status"] == "unshipped").to_numpy()).sum()),
        "customers": int((counts > 0).sum()),
        "orders without customer e-mail": int((keep & (email < 0)).sum()),
        "repeat customer rate": f"{100 * (counts >= 2).sum() / (counts > 0).sum() if counts.any() else 0:.1f}%",
        "median time to ship": _duration_text(pd.Series(time_to_ship).median()) if len(time_to_ship) else None,
        "first order": _moment_text(orders["created_at"].min()) if len(orders) else None,
        "last order": _moment_text(orders["created_at"].max()) if len(orders) else None,
    }
    if items is not None:  # (only the line items of these orders: `orders` may be one shop's, or filtered)
        mine = _kept(items) & _of_orders(items, orders)
        rows["units sold"] = int(items["quantity"].to_numpy("int64", na_value=0)[mine].sum())
    currency, currencies = grouping.codes(orders["currency"])
    groups = grouping.Groups((currency[keep], len(currencies)))
    cents = groups.sum(_int_cents(orders["total_cents"])[keep])
    totals = dict(zip(grouping.labels_of(currencies, groups.keys[0]), cents))
    for name in sorted(totals, key=lambda label: (pd.isna(label), "" if pd.isna(label) else label)):
        rows[f"revenue {name}"] = money(totals[name])
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).rename_axis("metric")


__all__ = ["customers", "load_frames", "money", "open_orders", "repeat_rate", "revenue", "sales_by_country",
           "shipping_times", "summary", "top_products", "weekday_hours"]
