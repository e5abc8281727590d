"""How trading went: average order value, refunds, discounts, this period against the last. Each report takes the
orders frame (`analysis.frames(store).orders`, or one shop's: `analysis.for_shop`) and returns a tidy DataFrame,
money as exact `Decimal` with a `currency` column (money is never added across currencies). The exact definitions,
and where they follow or differ from Shopify, BigCommerce and WooCommerce: docs/reports.md.

Shared rules: the period of an order is its `created_at` in UTC (`D`, `W` weeks from Monday, `M`, `Q`, `Y`; orders
without `created_at` are in no period); an order counts unless its payment status is `refunded` (the rule of
`revenue`); a missing amount counts as 0; only periods with something to show get a row.
"""

from collections import namedtuple
from typing import Any

import numpy as np
import pandas as pd

from . import grouping
from .periods import (NAT, average, average_money, cents, check_freq, currency_codes, customer_codes, distinct,
                      first_times, kept, micros, micros_of, money_column, period_of, period_start, refunded, timestamps)

Discounts = namedtuple("Discounts", "summary codes")


def _period_groups(period, currency, currencies, keep, freq):
    """(groups, sort order, head frame with `period` and `currency`) of the `keep` rows by (period, currency)."""
    chosen = period[keep]
    base = int(chosen.min()) if len(chosen) else 0
    span = int(chosen.max()) - base + 1 if len(chosen) else 0
    groups = grouping.Groups((np.where(keep, period - base, 0), span), (currency, len(currencies)), keep=keep)
    order = np.lexsort((grouping.ranks(currencies, groups.keys[1]), groups.keys[0]))
    head = pd.DataFrame({"period": timestamps(period_start(groups.keys[0][order] + base, freq)),
                         "currency": grouping.labels_of(currencies, groups.keys[1][order])})
    return groups, order, head


def order_values(orders: pd.DataFrame, freq: str = "M", include_refunded: bool = False) -> pd.DataFrame:
    """Average order value and items per order, per period of `created_at` and currency.

    Counts every order not refunded (`include_refunded=True`: every order, Shopify's gross convention).
    Columns: period (start, UTC), currency, orders, revenue (sum of `total`: items - discount + shipping + tax),
    aov (revenue / orders), goods_revenue (items - discount: no shipping, no tax), goods_aov (goods_revenue /
    orders: the basis Shopify and BigCommerce call AOV), items (sum of `item_count`), items_per_order (items /
    orders whose `item_count` is known; NaN when none is). Averages are rounded to the cent, halves up. Sorted by
    period, then currency."""
    check_freq(freq)
    created = micros(orders["created_at"])
    keep = (created != NAT) & (np.ones(len(orders), dtype=bool) if include_refunded else kept(orders))
    currency, currencies = currency_codes(orders)
    groups, order, result = _period_groups(period_of(created, freq), currency, currencies, keep, freq)
    count = groups.size()[order]
    revenue = groups.sum(cents(orders, "total_cents"))[order]
    goods = groups.sum(cents(orders, "item_total_cents") - cents(orders, "discount_total_cents"))[order]
    item_count = orders["item_count"] if "item_count" in orders else pd.Series(pd.NA, index=orders.index,
                                                                               dtype="Int64")
    known = item_count.notna().to_numpy()
    items = groups.sum(item_count.to_numpy("int64", na_value=0))[order]
    result["orders"] = count
    result["revenue"] = money_column(revenue)
    result["aov"] = average_money(revenue, count)
    result["goods_revenue"] = money_column(goods)
    result["goods_aov"] = average_money(goods, count)
    result["items"] = items
    result["items_per_order"] = average(items, groups.sum(known.astype(np.int64))[order])
    return result


def _refund_times(orders, by):
    """When each order's refund is dated: `refunded_at` (falling back to `updated_at`, the time its latest state was
    seen, when the frame has no `refunded_at` or it is missing) or the order's `created_at`."""
    if by == "created_at":
        return micros(orders["created_at"])
    updated = micros(orders["updated_at"]) if "updated_at" in orders else np.full(len(orders), NAT)
    if "refunded_at" not in orders:
        return updated
    at = micros(orders["refunded_at"])
    return np.where(at != NAT, at, updated)


def _flags(rates, counts, currency, min_orders, sigmas, min_periods):
    """Periods whose rate is above mean + `sigmas` standard deviations (ddof=1) of the rates of the same currency's
    OTHER periods, counting only periods with at least `min_orders` orders, and needing `min_periods` others."""
    qualifies = counts >= min_orders
    rate = np.where(qualifies, np.nan_to_num(rates), 0.0)
    slot = currency + 1
    size = int(slot.max()) + 1 if len(slot) else 0
    n = np.bincount(slot, qualifies.astype(np.float64), size)[slot]
    total = np.bincount(slot, rate, size)[slot]
    squares = np.bincount(slot, rate * rate, size)[slot]
    others = n - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (total - rate) / others
        variance = (squares - rate * rate - others * mean * mean) / (others - 1)
    sd = np.sqrt(np.clip(np.nan_to_num(variance), 0, None))
    return qualifies & (others >= min_periods) & (rate > mean + sigmas * sd)


def refunds(orders: pd.DataFrame, freq: str = "M", by: str = "refunded_at", min_orders: int = 20,
            sigmas: float = 2.0, min_periods: int = 3) -> pd.DataFrame:
    """Refunds per period and currency: how many orders were placed, how many refunded, the rate and the amount.

    An order is refunded when its latest payment status is `refunded`; its amount is its whole `total` (API v1
    shows no partial refunds). `by="refunded_at"` (default) dates a refund when it happened (`refunded_at`; where
    missing, the order's `updated_at`); `by="created_at"` dates it with its order. Columns: period, currency,
    orders (placed in the period, refunded or not), refunded (refunds dated in the period), refund_rate (refunded /
    orders; NaN without orders), refunded_amount (Decimal), flagged (the rate is unusually high: the period has at
    least `min_orders` orders and its rate is above the mean plus `sigmas` sample standard deviations of the rates
    of the same currency's other periods with at least `min_orders` orders, of which there are at least
    `min_periods`). Sorted by period, then currency."""
    check_freq(freq)
    if by not in ("refunded_at", "created_at"):
        raise ValueError("by must be 'refunded_at' or 'created_at'")
    created = micros(orders["created_at"])
    when = _refund_times(orders, by)
    placed, back = created != NAT, refunded(orders) & (when != NAT)
    currency, currencies = currency_codes(orders)
    both = np.concatenate((placed, back))
    period = np.concatenate((period_of(created, freq), period_of(when, freq)))
    groups, order, result = _period_groups(period, np.concatenate((currency, currency)), currencies, both, freq)
    is_refund = np.concatenate((np.zeros(len(orders), dtype=np.int64), np.ones(len(orders), dtype=np.int64)))
    count = groups.sum(1 - is_refund)[order]
    refunds_count = groups.sum(is_refund)[order]
    amount = groups.sum(np.concatenate((np.zeros(len(orders), dtype=np.int64), cents(orders, "total_cents"))))
    result["orders"] = count
    result["refunded"] = refunds_count
    result["refund_rate"] = average(refunds_count, count)
    result["refunded_amount"] = money_column(amount[order])
    result["flagged"] = _flags(result["refund_rate"].to_numpy(), count, groups.keys[1][order], min_orders, sigmas,
                               min_periods)
    return result


def discounts(orders: pd.DataFrame, freq: str | None = None) -> Discounts:
    """Discounts among the orders not refunded: `Discounts(summary, codes)`.

    An order is discounted when its `discount_total` is above 0 or it carries a `discount_code`. `summary`, per
    currency (and period of `created_at` with `freq`): orders, discounted_orders, discounted_share,
    discount_amount, revenue (sum of `total`), revenue_with_discount and revenue_without_discount (the revenue of
    the discounted orders, and of the others), revenue_before_discounts (revenue + discount_amount). `codes`, per
    code and currency (and period): discount_code (missing: discounted orders without a code), orders,
    discount_amount, revenue; sorted by currency, orders descending, then code, the row without a code last."""
    if freq is not None:
        check_freq(freq)
    created = micros(orders["created_at"])
    keep = kept(orders) & ((created != NAT) if freq else True)
    discount = cents(orders, "discount_total_cents")
    total = cents(orders, "total_cents")
    code, codes = (grouping.codes(orders["discount_code"]) if "discount_code" in orders
                   else (np.full(len(orders), -1), pd.Index([], dtype=object)))
    code = code.astype(np.int64)
    discounted = (discount > 0) | (code >= 0)
    currency, currencies = currency_codes(orders)
    period = period_of(created, freq) if freq else np.zeros(len(orders), dtype=np.int64)
    groups, order, summary = _period_groups(period, currency, currencies, keep, freq or "D")
    count = groups.size()[order]
    with_discount = groups.sum(np.where(discounted, total, 0))[order]
    amount = groups.sum(np.where(discounted, discount, 0))[order]
    summary["orders"] = count
    summary["discounted_orders"] = groups.sum(discounted.astype(np.int64))[order]
    summary["discounted_share"] = average(summary["discounted_orders"].to_numpy(), count)
    summary["discount_amount"] = money_column(amount)
    revenue = groups.sum(total)[order]
    summary["revenue"] = money_column(revenue)
    summary["revenue_with_discount"] = money_column(with_discount)
    summary["revenue_without_discount"] = money_column(revenue - with_discount)
    summary["revenue_before_discounts"] = money_column(revenue + amount)
    chosen = keep & discounted
    base = int(period[chosen].min()) if chosen.any() else 0
    span = int(period[chosen].max()) - base + 1 if chosen.any() else 0
    by_code = grouping.Groups((np.where(chosen, period - base, 0), span), (currency, len(currencies)),
                              (code, len(codes)), keep=chosen)
    per_period, per_currency, per_code = by_code.keys
    used = by_code.size()
    rank = np.lexsort((grouping.ranks(codes, per_code), -used, per_code < 0, grouping.ranks(currencies, per_currency),
                       per_period))
    table = pd.DataFrame({"period": timestamps(period_start(per_period[rank] + base, freq or "D")),
                          "discount_code": grouping.labels_of(codes, per_code[rank]),
                          "currency": grouping.labels_of(currencies, per_currency[rank]),
                          "orders": used[rank],
                          "discount_amount": money_column(by_code.sum(discount)[rank]),
                          "revenue": money_column(by_code.sum(total)[rank])})
    if freq is None:
        summary, table = summary.drop(columns="period"), table.drop(columns="period")
    return Discounts(summary, table)


_METRICS = ("orders", "revenue", "aov", "customers", "new_customers", "returning_customers")


def _windows(freq, now, to_date):
    """((start, end), (start, end)) in microseconds of this period and the previous one."""
    at = micros_of(now)
    current = int(period_of(np.array([at]), freq)[0])
    starts = period_start(np.array([current - 2, current - 1, current]), freq).tolist()
    if to_date:
        return (starts[2], at), (starts[1], min(starts[1] + at - starts[2], starts[2]))
    return (starts[1], starts[2]), (starts[0], starts[1])


def _window_figures(created, keep, currency, ncurrencies, total, customer, first, start, end):
    """Per currency code (index+1; slot 0 = missing), in [start, end): orders, revenue cents, customers, new ones."""
    inside = keep & (created >= start) & (created < end)
    slot = currency + 1
    size = ncurrencies + 1
    count = np.bincount(slot[inside], minlength=size)
    revenue = np.bincount(slot[inside], total[inside], size).astype(np.int64)
    named = inside & (customer >= 0)
    pairs = distinct(customer[named] * size + slot[named])
    who, where = pairs // size, pairs % size
    people = np.bincount(where, minlength=size)
    new = np.bincount(where[first[who] >= start], minlength=size)
    return count, revenue, people, new


def compare_periods(orders: pd.DataFrame, freq: str = "M", now: Any = None, to_date: bool = False) -> pd.DataFrame:
    """This period against the previous one, per currency: orders, revenue, aov, customers, new_customers and
    returning_customers, each with its change.

    By default "this period" is the last complete one before `now` (default: the current time; a month run on
    1 March compares February with January); `to_date=True` compares the period so far (its start to `now`) with
    the same length of time from the start of the previous period (never past that period's end). Orders and money
    as in `order_values` (orders not refunded, by `created_at`); a customer (an e-mail in a shop) is new when their
    first order ever not refunded falls in the window, returning when it fell before it. Columns: currency, metric,
    current, previous (int, or Decimal for money; None for the AOV of no orders), change (current - previous),
    relative_change (change / previous as a fraction; NaN when previous is 0 or None), current_start,
    current_end, previous_start, previous_end (UTC; ends exclusive). Rows by currency, then metric in that order;
    currencies without orders in either window have no rows."""
    check_freq(freq)
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    (start, end), (previous_start, previous_end) = _windows(freq, now, to_date)
    created = micros(orders["created_at"])
    keep = kept(orders) & (created != NAT)
    currency, currencies = currency_codes(orders)
    total = cents(orders, "total_cents")
    customer = customer_codes(orders)
    first = first_times(customer, created, keep & (customer >= 0))
    figures = [_window_figures(created, keep, currency, len(currencies), total, customer, first, *window)
               for window in ((start, end), (previous_start, previous_end))]
    present = np.flatnonzero(figures[0][0] + figures[1][0])
    present = present[np.argsort(grouping.ranks(currencies, present - 1), kind="stable")]
    rows = []
    for slot in present:
        values = []
        for count, revenue, people, new in figures:
            money = money_column([revenue[slot]])[0]
            aov = average_money(np.array([revenue[slot]]), np.array([count[slot]]))[0]
            values.append((int(count[slot]), money, aov, int(people[slot]), int(new[slot]),
                           int(people[slot] - new[slot])))
        label = grouping.labels_of(currencies, np.array([slot - 1]))[0]
        for metric, current, previous in zip(_METRICS, *values):
            change = None if current is None or previous is None else current - previous
            relative = float(change / previous) if change is not None and previous else np.nan
            rows.append((label, metric, current, previous, change, relative))
    result = pd.DataFrame(rows, columns=["currency", "metric", "current", "previous", "change", "relative_change"])
    result = result.astype({"current": object, "previous": object, "change": object,
                            "relative_change": "float64"})
    result["currency"] = result["currency"].astype("str")
    for name, moment in (("current_start", start), ("current_end", end), ("previous_start", previous_start),
                         ("previous_end", previous_end)):
        result[name] = pd.Timestamp(moment, unit="us", tz="UTC")
    return result


__all__ = ["Discounts", "compare_periods", "discounts", "order_values", "refunds"]
