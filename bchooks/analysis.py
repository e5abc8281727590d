"""Order analysis with pandas: the true latest state of every order, and the reports a seller asks for.

`orders_frame(store)` and `line_items_frame(store)` give one row per order (per line item) in its latest known
state: the newest `updated_at` wins whatever the arrival order, duplicates count once, both envelope formats and
payload shapes are read. Money is integer cents (`*_cents`, exact); reports give money as `Decimal`.
Every report takes those frames (or a store) and returns a tidy DataFrame in a documented order.
"""

from decimal import Decimal

import pandas as pd

from .projection import Projection

REFUNDED = "refunded"


def _frames(source):
    if isinstance(source, tuple):
        return source
    if isinstance(source, Projection):
        return source.frames()
    with Projection(source) as projection:
        return projection.frames()


def orders_frame(source):
    """One row per order in its latest state, sorted by `created_at`, then `order_id`."""
    return source if isinstance(source, pd.DataFrame) else _frames(source)[0]


def line_items_frame(source):
    """One row per line item of each order's latest state, in the order of `orders_frame`, then by `line`."""
    return _frames(source)[1]


def money(cents):
    """Exact `Decimal` of integer cents (None for missing)."""
    if cents is None or pd.isna(cents):
        return None
    return Decimal(int(cents)).scaleb(-2)


def _money_column(series):
    return series.map(money).astype(object)


def _paid(orders):
    return orders[orders["payment_status"] != REFUNDED]


def revenue(orders, freq="D"):
    """Revenue of orders not refunded, per period (`D`, `W` weeks from Monday, `M`) and currency.

    Columns: period (start, UTC), currency, orders, revenue (Decimal). Sorted by period, then currency."""
    if freq not in ("D", "W", "M"):
        raise ValueError("freq must be 'D', 'W' or 'M'")
    paid = _paid(orders_frame(orders))
    when = paid["created_at"].dt.tz_convert(None).dt.to_period(freq)
    grouped = (paid.assign(period=when.dt.start_time.dt.tz_localize("UTC"))
               .groupby(["period", "currency"], observed=True)
               .agg(orders=("order_id", "size"), revenue_cents=("total_cents", "sum")).reset_index())
    grouped["currency"] = grouped["currency"].astype(str)
    grouped["revenue"] = _money_column(grouped.pop("revenue_cents"))
    return grouped.sort_values(["period", "currency"], ignore_index=True)


def _with_status(items, orders=None):
    return items[items["payment_status"] != REFUNDED]


def top_products(items, orders, by="revenue", n=10, options=False):
    """The `n` best products (or product options) of orders not refunded.

    by="revenue": one row per product and currency (money cannot be added across currencies);
    by="units": one row per product. Columns: product_name[, option_name][, currency], units, orders[, revenue].
    Sorted by the chosen measure, descending, then by name."""
    if by not in ("revenue", "units"):
        raise ValueError("by must be 'revenue' or 'units'")
    rows = _with_status(line_items_frame(items) if not isinstance(items, pd.DataFrame) else items, orders)
    keys = ["product_name"] + (["option_name"] if options else []) + (["currency"] if by == "revenue" else [])
    grouped = rows.groupby(keys, observed=True).agg(units=("quantity", "sum"), orders=("order_id", "nunique"),
                                                    revenue_cents=("total_cents", "sum")).reset_index()
    if "currency" in grouped:
        grouped["currency"] = grouped["currency"].astype(str)
    measure = "revenue_cents" if by == "revenue" else "units"
    grouped = grouped.sort_values([measure, *keys], ascending=[False] + [True] * len(keys), ignore_index=True)
    grouped = grouped.head(n)
    if by == "revenue":
        grouped["revenue"] = _money_column(grouped["revenue_cents"])
    return grouped.drop(columns="revenue_cents")


def customers(orders):
    """One row per customer (by email) and currency: orders, first and last order, lifetime value.

    Sorted by currency, lifetime value descending, then email."""
    paid = _paid(orders_frame(orders))
    paid = paid[paid["customer_email"].notna()]
    grouped = (paid.sort_values("created_at").groupby(["customer_email", "currency"], observed=True)
               .agg(customer_name=("customer_name", "last"), orders=("order_id", "size"),
                    first_order=("created_at", "min"), last_order=("created_at", "max"),
                    value_cents=("total_cents", "sum")).reset_index())
    grouped["currency"] = grouped["currency"].astype(str)
    grouped = grouped.sort_values(["currency", "value_cents", "customer_email"], ascending=[True, False, True],
                                  ignore_index=True)
    grouped["lifetime_value"] = _money_column(grouped.pop("value_cents"))
    return grouped


def repeat_rate(orders):
    """Share of customers (by email) with two or more orders not refunded; 0.0 with no customers."""
    counts = _paid(orders_frame(orders))["customer_email"].value_counts()
    return float((counts >= 2).mean()) if len(counts) else 0.0


def sales_by_country(orders):
    """Orders and revenue per shipping country and currency, sorted by orders descending, then country."""
    paid = _paid(orders_frame(orders))
    grouped = (paid.groupby(["country", "currency"], observed=True)
               .agg(country_name=("country_name", "first"), orders=("order_id", "size"),
                    revenue_cents=("total_cents", "sum")).reset_index())
    grouped[["country", "currency"]] = grouped[["country", "currency"]].astype(str)
    grouped = grouped.sort_values(["orders", "country", "currency"], ascending=[False, True, True],
                                  ignore_index=True)
    grouped["revenue"] = _money_column(grouped.pop("revenue_cents"))
    return grouped


def open_orders(orders, now=None):
    """Paid orders not shipped yet, oldest first: order_id, created_at, age, customer, currency, total."""
    frame = _paid(orders_frame(orders))
    frame = frame[frame["shipping_status"] == "unshipped"]
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    result = pd.DataFrame({"order_id": frame["order_id"], "created_at": frame["created_at"],
                           "age": now - frame["created_at"], "customer_name": frame["customer_name"],
                           "currency": frame["currency"].astype(str), "total": _money_column(frame["total_cents"])})
    return result.sort_values(["created_at", "order_id"], ignore_index=True)


def shipping_times(orders):
    """Shipped orders with the time from order to the first event that showed them shipped; slowest first."""
    frame = orders_frame(orders)
    frame = frame[frame["shipped_at"].notna()]
    result = pd.DataFrame({"order_id": frame["order_id"], "created_at": frame["created_at"],
                           "shipped_at": frame["shipped_at"], "time_to_ship": frame["shipped_at"] - frame["created_at"]})
    return result.sort_values(["time_to_ship", "order_id"], ascending=[False, True], ignore_index=True)


def summary(source):
    """Headline numbers in one call: a one-column DataFrame indexed by metric."""
    orders, items = _frames(source) if not isinstance(source, pd.DataFrame) else (source, None)
    paid = _paid(orders)
    shipped = shipping_times(orders)["time_to_ship"]
    rows = {
        "orders": len(orders),
        "refunded orders": int((orders["payment_status"] == REFUNDED).sum()),
        "open orders (unshipped)": len(open_orders(orders, now=pd.Timestamp(0, tz="UTC"))),
        "customers": int(paid["customer_email"].nunique()),
        "repeat customer rate": round(repeat_rate(orders), 4),
        "median time to ship": shipped.median() if len(shipped) else None,
        "first order": orders["created_at"].min() if len(orders) else None,
        "last order": orders["created_at"].max() if len(orders) else None,
    }
    if items is not None:
        rows["units sold"] = int(_with_status(items, orders)["quantity"].sum())
    for currency, cents in paid.groupby("currency", observed=True)["total_cents"].sum().sort_index().items():
        rows[f"revenue {currency}"] = money(cents)
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).rename_axis("metric")


__all__ = ["customers", "line_items_frame", "money", "open_orders", "orders_frame",
           "repeat_rate", "revenue", "sales_by_country", "shipping_times", "summary", "top_products"]
