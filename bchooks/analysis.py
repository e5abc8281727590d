"""Order analysis with pandas: the true latest state of every order, and the reports a seller asks for.

`orders_frame(store)` and `line_items_frame(store)` give one row per order (per line item) in its latest known
state: the newest `updated_at` wins whatever the arrival order, duplicates count once, both envelope formats and
payload shapes are read. Money is integer cents (`*_cents`, exact); reports give money as `Decimal`.
Every report takes those frames (or a store) and returns a tidy DataFrame in a documented order.
"""

from decimal import Decimal

import numpy as np
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
    return source if isinstance(source, pd.DataFrame) else _frames(source)[1]


def money(cents):
    """Exact `Decimal` of integer cents (None for missing)."""
    if cents is None or pd.isna(cents):
        return None
    return Decimal(int(cents)).scaleb(-2)


def _money_column(series):
    return series.map(money).astype(object)


def _not_refunded(frame, *columns):
    """Rows (orders or line items) of orders not refunded; only `columns` (selected before filtering: copying all
    columns of a million rows costs more than the report)."""
    subset = frame[list(columns)] if columns else frame
    return subset[(frame["payment_status"] != REFUNDED).to_numpy()]


def _paid(orders, *columns):
    return _not_refunded(orders_frame(orders), *columns)


def _int_cents(series):
    return series.to_numpy("int64", na_value=0)


def revenue(orders, freq="D"):
    """Revenue of orders not refunded, per period (`D`, `W` weeks from Monday, `M`) and currency.

    Columns: period (start, UTC), currency, orders, revenue (Decimal). Sorted by period, then currency."""
    if freq not in ("D", "W", "M"):
        raise ValueError("freq must be 'D', 'W' or 'M'")
    paid = _paid(orders, "created_at", "currency", "total_cents")
    when = paid["created_at"].dt.tz_convert(None).dt.to_period(freq)
    grouped = (pd.DataFrame({"period": when.dt.start_time.dt.tz_localize("UTC"), "currency": paid["currency"],
                             "cents": _int_cents(paid["total_cents"])})
               .groupby(["period", "currency"], observed=True)
               .agg(orders=("cents", "size"), revenue_cents=("cents", "sum")).reset_index())
    grouped["currency"] = grouped["currency"].astype(str)
    grouped["revenue"] = _money_column(grouped.pop("revenue_cents"))
    return grouped.sort_values(["period", "currency"], ignore_index=True)


def top_products(items, orders=None, by="revenue", n=10, options=False):
    """The `n` best products (or product options) of orders not refunded. (`orders` is not needed any more: each
    line item carries its order's payment status; it is accepted so that older calls keep working.)

    by="revenue": one row per product and currency (money cannot be added across currencies);
    by="units": one row per product. Columns: product_name[, option_name][, currency], units, orders[, revenue].
    Sorted by the chosen measure, descending, then by name."""
    if by not in ("revenue", "units"):
        raise ValueError("by must be 'revenue' or 'units'")
    keys = ["product_name"] + (["option_name"] if options else []) + (["currency"] if by == "revenue" else [])
    rows = _not_refunded(line_items_frame(items), *keys, "quantity", "total_cents", "event_id")
    groups = rows.groupby(keys, observed=True, sort=False).ngroup().to_numpy()
    count = int(groups.max()) + 1 if len(groups) else 0
    events = rows["event_id"].to_numpy()
    span = int(events.max()) + 1 if len(events) else 1
    # orders per group: distinct (group, event) pairs, counted on integers (event_id identifies an order's state)
    pairs = pd.unique(groups.astype("int64") * span + events)
    first = _reduce_by(groups, np.arange(len(groups)), count, "min")
    grouped = rows.iloc[first][keys].reset_index(drop=True)
    grouped["units"] = _reduce_by(groups, rows["quantity"].to_numpy(), count)
    grouped["orders"] = np.bincount(pairs // span, minlength=count)
    grouped["revenue_cents"] = _reduce_by(groups, _int_cents(rows["total_cents"]), count)
    for key in keys:
        grouped[key] = grouped[key].astype(str)
    measure = "revenue_cents" if by == "revenue" else "units"
    grouped = grouped.sort_values([measure, *keys], ascending=[False] + [True] * len(keys), ignore_index=True)
    grouped = grouped.head(n)
    if by == "revenue":
        grouped["revenue"] = _money_column(grouped["revenue_cents"])
    return grouped.drop(columns="revenue_cents")


def _reduce_by(groups, values, count, how="sum"):
    """Exact per-group `how` (sum, min, max) of int64 `values`, by group number 0..count-1."""
    reduced = getattr(pd.Series(values).groupby(groups), how)()
    return reduced.reindex(range(count), fill_value=0).to_numpy()


def customers(orders):
    """One row per customer (by email) and currency: name, orders, first and last order, lifetime value
    (`lifetime_value_cents`, exact integer cents). Sorted by currency, lifetime value descending, then email."""
    paid = _paid(orders, "customer_email", "currency", "customer_name", "created_at", "total_cents")
    paid = paid[paid["customer_email"].notna().to_numpy()]
    email = paid["customer_email"].cat.codes.to_numpy().astype("int64")
    currency = paid["currency"].cat.codes.to_numpy().astype("int64")
    groups, keys = pd.factorize(email * (len(paid["currency"].cat.categories) + 1) + currency)
    count = len(keys)
    first = _reduce_by(groups, np.arange(len(paid)), count, "min")
    created = paid["created_at"].to_numpy("datetime64[us]").view("int64")
    last_row = _reduce_by(groups, np.arange(len(paid)), count, "max")  # sorted by created_at: the newest row
    first_at = _reduce_by(groups, created, count, "min")
    last_at = _reduce_by(groups, created, count, "max")
    result = pd.DataFrame({
        "customer_email": paid["customer_email"].to_numpy()[first],
        "currency": paid["currency"].astype(str).to_numpy()[first],
        "customer_name": paid["customer_name"].to_numpy()[last_row],
        "orders": np.bincount(groups, minlength=count),
        "first_order": pd.to_datetime(first_at, unit="us", utc=True),
        "last_order": pd.to_datetime(last_at, unit="us", utc=True),
        "lifetime_value_cents": _reduce_by(groups, _int_cents(paid["total_cents"]), count),
    })
    result["customer_email"] = result["customer_email"].astype(str)
    return result.sort_values(["currency", "lifetime_value_cents", "customer_email"], ascending=[True, False, True],
                              ignore_index=True)


def repeat_rate(orders):
    """Share of customers (by email) with two or more orders not refunded; 0.0 with no customers."""
    email = _paid(orders, "customer_email")["customer_email"]
    counts = np.bincount(email.cat.codes.to_numpy()[email.notna().to_numpy()] if len(email) else [],
                         minlength=1)
    customers = int((counts > 0).sum())
    return float((counts >= 2).sum() / customers) if customers else 0.0


def sales_by_country(orders):
    """Orders and revenue per shipping country and currency, sorted by orders descending, then country."""
    paid = _paid(orders, "country", "currency", "country_name", "total_cents")
    paid = paid.assign(total_cents=_int_cents(paid["total_cents"]))
    grouped = (paid.groupby(["country", "currency"], observed=True)
               .agg(country_name=("country_name", "first"), orders=("total_cents", "size"),
                    revenue_cents=("total_cents", "sum")).reset_index())
    grouped[["country", "currency"]] = grouped[["country", "currency"]].astype(str)
    grouped = grouped.sort_values(["orders", "country", "currency"], ascending=[False, True, True],
                                  ignore_index=True)
    grouped["revenue"] = _money_column(grouped.pop("revenue_cents"))
    return grouped


def _open(orders):
    frame = _paid(orders, "order_id", "created_at", "customer_name", "currency", "total_cents", "shipping_status")
    return frame[(frame["shipping_status"] == "unshipped").to_numpy()]


def open_orders(orders, now=None):
    """Paid orders not shipped yet, oldest first: order_id, created_at, age, customer_name, currency, total_cents."""
    frame = _open(orders)  # orders_frame is sorted by created_at, then order_id: already oldest first
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return pd.DataFrame({"order_id": frame["order_id"], "created_at": frame["created_at"],
                         "age": now - frame["created_at"], "customer_name": frame["customer_name"],
                         "currency": frame["currency"], "total_cents": frame["total_cents"]}).reset_index(drop=True)


def shipping_times(orders):
    """Shipped orders with the time from order to the first event that showed them shipped; slowest first."""
    frame = orders_frame(orders)
    frame = frame[["order_id", "created_at", "shipped_at"]][frame["shipped_at"].notna().to_numpy()]
    result = pd.DataFrame({"order_id": frame["order_id"], "created_at": frame["created_at"],
                           "shipped_at": frame["shipped_at"],
                           "time_to_ship": frame["shipped_at"] - frame["created_at"]})
    return result.sort_values(["time_to_ship", "order_id"], ascending=[False, True], ignore_index=True)


def summary(source):
    """Headline numbers in one call: a one-column DataFrame indexed by metric."""
    orders, items = _frames(source) if not isinstance(source, pd.DataFrame) else (source, None)
    paid = _paid(orders, "customer_email", "currency", "total_cents")
    shipped = shipping_times(orders)["time_to_ship"]
    rows = {
        "orders": len(orders),
        "refunded orders": int((orders["payment_status"] == REFUNDED).sum()),
        "open orders (unshipped)": len(_open(orders)),
        "customers": int(np.unique(paid["customer_email"].cat.codes.to_numpy()[paid["customer_email"].notna()
                                                                                .to_numpy()]).size),
        "repeat customer rate": round(repeat_rate(orders), 4),
        "median time to ship": shipped.median() if len(shipped) else None,
        "first order": orders["created_at"].min() if len(orders) else None,
        "last order": orders["created_at"].max() if len(orders) else None,
    }
    if items is not None:
        rows["units sold"] = int(_not_refunded(items, "quantity")["quantity"].sum())
    totals = pd.Series(_int_cents(paid["total_cents"])).groupby(paid["currency"].astype(str).to_numpy()).sum()
    for currency, cents in totals.sort_index().items():
        rows[f"revenue {currency}"] = money(cents)
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).rename_axis("metric")


__all__ = ["customers", "line_items_frame", "money", "open_orders", "orders_frame",
           "repeat_rate", "revenue", "sales_by_country", "shipping_times", "summary", "top_products"]
