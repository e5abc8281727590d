"""Customers over time: cohorts by first-order month and how many come back (`retention`), the share of a period's
customers who had ordered before (`returning_customer_rate`, Shopify's name), and the share of customers who ever
ordered twice (`repeat_purchase_rate`, the industry's name). Definitions and conventions: docs/reports.md.

A customer is an e-mail within a shop (`account_id` when the frame has it); orders without an e-mail cannot be told
apart by customer and are left out. Only orders not refunded count; those without a `created_at` are in no period
(`repeat_purchase_rate`, which needs no time, counts them).
"""

import numpy as np
import pandas as pd

from .periods import (NAT, FREQS, average, check_freq, customer_codes, distinct, first_times, kept, micros,
                      period_of, period_start, timestamps)


def _customers_orders(orders):
    """(customer codes, created microseconds, mask of the orders that count for customers)."""
    created = micros(orders["created_at"])
    customer = customer_codes(orders)
    return customer, created, kept(orders) & (created != NAT) & (customer >= 0)


def retention(orders: pd.DataFrame) -> pd.DataFrame:
    """The retention table: one row per cohort (customers whose first order was in that month, UTC), index
    `cohort` (the month's first day), column `customers` (how many), then columns 0..N: the share (0..1) of the
    cohort's customers who ordered in the Nth month after their first (column 0 is 1.0). N reaches the month of
    the latest order; a cell whose month is after it is NaN (not seen yet). Sorted by cohort."""
    customer, created, keep = _customers_orders(orders)
    if not keep.any():
        return pd.DataFrame({"customers": pd.Series(dtype="int64"), 0: pd.Series(dtype="float64")},
                            index=pd.DatetimeIndex([], dtype="datetime64[us, UTC]", name="cohort"))
    month = period_of(created, "M")
    first = first_times(customer, month, keep)  # the first month of each customer
    who, when = customer[keep], month[keep]
    cohort_of = first[who]
    start, last = int(cohort_of.min()), int(when.max())
    width = last - start + 1
    pairs = distinct(who * width + (when - cohort_of))  # each customer once per month they ordered in
    person, age = pairs // width, pairs % width
    month_of = first[person] - start  # each pair's cohort, as months after the first cohort
    cohorts = np.flatnonzero(np.bincount(month_of, minlength=width))
    position = np.zeros(width, dtype=np.int64)
    position[cohorts] = np.arange(len(cohorts))
    cohort = position[month_of]
    seen = np.bincount(cohort * width + age, minlength=len(cohorts) * width).reshape(len(cohorts), width)
    sizes = seen[:, 0]
    observable = (cohorts[:, None] + np.arange(width)[None, :]) <= (last - start)
    table = pd.DataFrame(np.where(observable, seen / sizes[:, None], np.nan), columns=list(range(width)))
    table.insert(0, "customers", sizes.astype(np.int64))
    table.index = pd.DatetimeIndex(timestamps(period_start(cohorts + start, "M")), name="cohort")
    return table


def returning_customer_rate(orders: pd.DataFrame, freq: str = "M") -> pd.DataFrame:
    """Per period of `created_at`: customers (who ordered in it), new_customers (their first order ever is in
    it), returning_customers (they had ordered before it), returning_customer_rate (returning / customers).
    Sorted by period; periods without customers have no row."""
    check_freq(freq, FREQS)
    customer, created, keep = _customers_orders(orders)
    period = period_of(created, freq)
    first = period_of(first_times(customer, created, keep), freq)
    who, when = customer[keep], period[keep]
    base = int(when.min()) if len(when) else 0
    span = int(when.max()) - base + 1 if len(when) else 1
    pairs = distinct(who * span + (when - base))
    person, slot = pairs // span, pairs % span
    customers = np.bincount(slot, minlength=span)
    returning = np.bincount(slot[first[person] < slot + base], minlength=span)
    present = np.flatnonzero(customers)
    return pd.DataFrame({"period": timestamps(period_start(present + base, freq)),
                         "customers": customers[present], "new_customers": (customers - returning)[present],
                         "returning_customers": returning[present],
                         "returning_customer_rate": average(returning[present], customers[present])})


def repeat_purchase_rate(orders: pd.DataFrame) -> float:
    """Share of customers with two or more orders not refunded (any time); 0.0 with no customers. The same as
    `repeat_rate` for one shop's orders (`repeat_rate` takes an e-mail across shops as one customer)."""
    customer = customer_codes(orders)
    keep = kept(orders) & (customer >= 0)
    counts = np.bincount(customer[keep])
    customers = int((counts > 0).sum())
    return float((counts >= 2).sum() / customers) if customers else 0.0


__all__ = ["repeat_purchase_rate", "retention", "returning_customer_rate"]
