"""Fulfilment: the paid orders not shipped yet, against the number of days the shop promises to ship in.

`late_orders(orders, items, promised_days, now)` is the report (its docstring: the exact rule). Callers pass the
shop's promise from the settings (`Config.load().promised_days`, BCHOOKS_PROMISED_DAYS); the function takes a
number.
"""

from typing import Any

import numpy as np
import pandas as pd

from .reports import REFUNDED

_DAY = pd.Timedelta(days=1)


def _shop_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in ("account_id", "store_name") if name in frame]


def _open(orders: pd.DataFrame) -> np.ndarray:
    """Mask of the orders to ship: `shipping_status` "unshipped", not refunded (`payment_status` not "refunded",
    and no `refunded_at` where the frame has it): the orders `open_orders` lists."""
    unshipped = (orders["shipping_status"] == "unshipped").fillna(False).to_numpy(bool)
    refunded = (orders["payment_status"] == REFUNDED).fillna(False).to_numpy(bool)
    if "refunded_at" in orders:
        refunded = refunded | orders["refunded_at"].notna().to_numpy(bool)
    return unshipped & ~refunded


def _lines(items: pd.DataFrame, orders: pd.DataFrame) -> list[str | None]:
    """Per order of `orders`: its line items as `2 × Tee (M); 1 × Pin` (by `line`), matched on (account_id,
    order_id). Column operations and one hash join: a million open orders take seconds, not minutes."""
    keys = [c for c in ("account_id", "order_id") if c in items and c in orders]
    if not len(orders) or not len(items) or not keys:
        return [None] * len(orders)
    wanted = pd.DataFrame({k: orders[k].astype(object).to_numpy() for k in keys})
    wanted["_order"] = np.arange(len(orders))
    columns = {k: items[k].astype(object).to_numpy() for k in keys}
    lines = pd.DataFrame({**columns, "_row": np.arange(len(items)),
                          "_line": items["line"].to_numpy() if "line" in items else np.zeros(len(items))})
    found = lines.merge(wanted, on=keys, how="inner")  # (missing keys match missing keys, as before)
    if not len(found):
        return [None] * len(orders)
    rows = found["_row"].to_numpy()
    name = items["product_name"].iloc[rows].astype(object) if "product_name" in items \
        else pd.Series([None] * len(rows), dtype=object)
    name = name.where(name.notna(), "?").astype(str).to_numpy(dtype=object)
    if "option_name" in items:
        option = items["option_name"].iloc[rows].astype(object)
        option = option.where(option.notna(), "").astype(str).to_numpy(dtype=object)
        with_option = option != ""
        name[with_option] = name[with_option] + " (" + option[with_option] + ")"
    quantity = pd.to_numeric(items["quantity"].iloc[rows], errors="coerce").to_numpy("float64", na_value=np.nan) \
        if "quantity" in items else np.full(len(rows), np.nan)
    count = np.array(["?" if np.isnan(q) else str(int(q)) for q in quantity], dtype=object) \
        if np.isnan(quantity).any() else np.trunc(quantity).astype(np.int64).astype(str).astype(object)
    pieces = count + " × " + name
    ranked = np.lexsort((rows, found["_line"].to_numpy(), found["_order"].to_numpy()))  # by order, line, arrival
    order = found["_order"].to_numpy()[ranked]
    pieces = pieces[ranked].tolist()
    starts = np.flatnonzero(np.append(True, order[1:] != order[:-1]))
    ends = np.append(starts[1:], len(order))
    text: list[str | None] = [None] * len(orders)
    for start, end, position in zip(starts.tolist(), ends.tolist(), order[starts].tolist()):
        text[position] = "; ".join(pieces[start:end])
    return text


def late_orders(orders: pd.DataFrame, items: pd.DataFrame | None = None, promised_days: float = 3,
                now: Any = None) -> pd.DataFrame:
    """Paid orders not shipped yet, against the promise to ship within `promised_days` days.

    Which orders: `shipping_status` "unshipped" and not refunded (`payment_status` not "refunded", and no
    `refunded_at`), the same orders as `open_orders`. Per order: `due_at` = created_at + promised_days; `age` = now -
    created_at; `late` = now > due_at; `days_late` = the days past due, counting a day begun (2 h past due: 1;
    exactly 24 h: 1; 24 h 1 min: 2), 0 when not late. An order without `created_at` has no due date: `late` False,
    `days_late`, `age` and `due_at` missing. `now`: the moment to measure at (default: the current time, UTC).

    Columns: account_id, store_name (when `orders` has them: for several shops, one frame, keyed by (account,
    order)), order_id, created_at, due_at, age, late, days_late (Int64), customer_name, item_count, currency,
    total_cents, and with `items` an `items` column (`2 × Tee (M); 1 × Pin`, the order's line items matched on
    (account_id, order_id)). Sorted late ones first, then oldest first (then order id, account); orders without
    `created_at` last."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    shop = _shop_columns(orders)
    frame = orders[_open(orders)].reset_index(drop=True)
    created = pd.to_datetime(frame["created_at"], utc=True) if len(frame) else frame["created_at"]
    due = created + pd.Timedelta(days=promised_days)
    past = now - due
    late = (past > pd.Timedelta(0)).fillna(False).to_numpy(bool)
    whole = -((-past.to_numpy("timedelta64[us]").astype("int64")) // (_DAY.value // 1000))  # ceil in days
    days_late = pd.array(np.where(late, whole, 0), dtype="Int64")
    days_late[created.isna().to_numpy(bool)] = pd.NA
    result = pd.DataFrame({**{name: frame[name] for name in shop}, "order_id": frame["order_id"],
                           "created_at": created, "due_at": due, "age": now - created, "late": late,
                           "days_late": days_late,
                           **{name: frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
                              for name in ("customer_name", "item_count", "currency", "total_cents")}})
    if items is not None:
        result["items"] = pd.Series(_lines(items, frame), dtype="str")
    keys = pd.DataFrame({"late": ~late, "undated": created.isna().to_numpy(bool),
                         "created": created.fillna(now), "order": frame["order_id"].astype(object).fillna(""),
                         "account": frame["account_id"].astype(object).fillna("\uffff") if "account_id" in frame
                         else ""})
    order = keys.sort_values(["undated", "late", "created", "order", "account"], kind="stable").index
    return result.take(order).reset_index(drop=True)


__all__ = ["late_orders"]
