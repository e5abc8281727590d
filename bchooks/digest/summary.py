"""The digest's few lines: how the last week (or month) went against the one before, what waits to be shipped, the
best seller. Each line is computed from the reports of `bchooks.analysis` by one small function of `LINES`: to add
a line, add a function.

Periods are calendar periods in UTC, as `analysis.revenue` cuts them: weeks from Monday 00:00, months from the 1st.
The digest reports the last period that has ended at `now` (a digest made on Monday morning reports the week that
ended at midnight) against the period before it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any, NamedTuple

import pandas as pd

from .. import analysis
from ..errors import InputError
from .tables import amount_text, duration_text

#: the periods a digest covers, and `analysis.revenue`'s frequency for each
PERIODS = {"week": "W", "month": "M"}


@dataclass(frozen=True)
class Span:
    """The period a digest reports (`start` to `end`, end excluded, UTC), the one before it (`previous` to `start`),
    the start of the history its revenue plot shows (`since`: a year before `end`), and `now`."""

    period: str
    start: pd.Timestamp
    end: pd.Timestamp
    previous: pd.Timestamp
    since: pd.Timestamp
    now: pd.Timestamp

    @property
    def freq(self) -> str:
        """`analysis.revenue`'s frequency of the period (`W` or `M`)."""
        return PERIODS[self.period]

    @property
    def label(self) -> str:
        """`week of 23 Nov 2026` or `November 2026`."""
        return f"week of {_day(self.start)}" if self.period == "week" else f"{self.start:%B %Y}"

    @property
    def before(self) -> str:
        """How the lines name the period before: `week before` or `month before`."""
        return f"{self.period} before"


def _day(moment: pd.Timestamp) -> str:
    return f"{moment.day} {moment:%b %Y}"


def moment(value: Any = None) -> pd.Timestamp:
    """`value` (ISO-8601 text, a datetime, None for now) as a UTC Timestamp; text that is no time is an
    `InputError`."""
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise InputError(f"not a time: {str(value)[:40]!r} (ISO-8601, e.g. 2026-11-30T08:00:00Z)") from error
    if pd.isna(stamp):
        raise InputError(f"not a time: {str(value)[:40]!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def span(period: str = "week", now: Any = None) -> Span:
    """The `Span` a digest made at `now` (default: now) reports: the last whole calendar `period` (`week` or
    `month`) before it."""
    if period not in PERIODS:
        raise InputError(f"the period is week or month, not {str(period)[:20]!r}")
    now = moment(now)
    if period == "week":
        current = (now - pd.Timedelta(days=now.weekday())).normalize()
        start, previous = current - pd.Timedelta(weeks=1), current - pd.Timedelta(weeks=2)
    else:
        current = now.normalize().replace(day=1)
        start, previous = current - pd.DateOffset(months=1), current - pd.DateOffset(months=2)
    return Span(period, start, current, previous, current - pd.DateOffset(years=1), now)


def between(frames: Any, start: Any, end: Any) -> analysis.Frames:
    """The orders placed from `start` to `end` (end excluded; `start` None: from the first) and their line items
    (joined by the event that set each order's state: one (account, order))."""
    orders, items = frames
    created = orders["created_at"]
    chosen = orders[((created >= start) if start is not None else created.notna()) & (created < end)]
    chosen = chosen.reset_index(drop=True)
    mine = items["event_id"].isin(chosen["event_id"]).to_numpy()
    return analysis.Frames(chosen, items[mine].reset_index(drop=True))


def shop_label(frames: Any) -> str | None:
    """The shop the frames hold, as a title names it: its name where the store knows it, else `shop ACCOUNT`; None
    for several shops (or none)."""
    orders = frames[0]
    accounts = orders["account_id"].dropna().unique() if "account_id" in orders else []
    if len(accounts) != 1:
        return None
    names = orders["store_name"].dropna().unique() if "store_name" in orders else []
    return str(names[0]) if len(names) == 1 else f"shop {accounts[0]}"


class Line(NamedTuple):
    """One line of the summary: its label, its text, and the exact value(s) behind it."""

    label: str
    text: str
    value: Any


class Periods(NamedTuple):
    """What each line function gets: the frames of this period, of the period before, and of every order placed
    before `now`; the span; the promised days to ship."""

    this: analysis.Frames
    last: analysis.Frames
    placed: analysis.Frames
    span: Span
    promised_days: int


def _change(this: Decimal | int, last: Decimal | int) -> str:
    """`+23.4%` against the period before (nothing to compare with when it had none)."""
    return "" if not last else f", {(Decimal(this) - Decimal(last)) / Decimal(last):+.1%}"


def _per_currency(frames: analysis.Frames, span: Span, start: pd.Timestamp) -> dict:
    """{currency: (orders, revenue)} of the orders placed in the period from `start` (`analysis.revenue`'s)."""
    table = analysis.revenue(frames.orders, span.freq)
    rows = table[table["period"] == start]
    return {str(row.currency): (int(row.orders), row.revenue) for row in rows.itertuples()}


def _average(orders: int, revenue: Decimal) -> Decimal | None:
    """Revenue per order, to the cent (half up); None without orders."""
    return (revenue / orders).quantize(Decimal("0.01"), ROUND_HALF_UP) if orders else None


def _currencies(periods: Periods) -> list[str]:
    return sorted({str(c) for c in periods.placed.orders["currency"].dropna().unique()})


def revenue_lines(periods: Periods) -> list[Line]:
    """Three lines against the period before, from `analysis.revenue` (orders not refunded, dated when they were
    placed, counted at their total: items less discounts, with shipping and tax): revenue per currency; orders (of
    every currency); the average order per currency, revenue over orders to the cent (half up)."""
    span = periods.span
    this, last = (_per_currency(periods.placed, span, start) for start in (span.start, span.previous))
    currencies = _currencies(periods)
    if not currencies:
        return [Line("Revenue", "no orders yet", {})]
    lines = []
    for currency in currencies:
        amount, before = (found.get(currency, (0, Decimal(0)))[1] for found in (this, last))
        label = "Revenue" if len(currencies) == 1 else f"Revenue ({currency})"
        text = (f"{amount_text(amount, currency)} ({span.before}: {amount_text(before, currency)}"
                f"{_change(amount, before)})")
        lines.append(Line(label, text, (amount, before)))
    orders = [sum(count for count, _ in found.values()) for found in (this, last)]
    lines.append(Line("Orders", f"{orders[0]} ({span.before}: {orders[1]}{_change(*orders)})", tuple(orders)))
    for currency in currencies:
        average, before = (_average(*found.get(currency, (0, Decimal(0)))) for found in (this, last))
        label = "Average order" if len(currencies) == 1 else f"Average order ({currency})"
        shown = [amount_text(value, currency) if value is not None else "no orders" for value in (average, before)]
        change = _change(average, before) if average is not None and before is not None else ""
        lines.append(Line(label, f"{shown[0]} ({span.before}: {shown[1]}{change})", (average, before)))
    return lines


def waiting_lines(periods: Periods) -> list[Line]:
    """Paid orders placed before `now` and not shipped (`analysis.open_orders`), and how many of them are late:
    waiting longer than the promised days."""
    waiting = analysis.open_orders(periods.placed.orders, now=periods.span.now)
    promised = pd.Timedelta(days=periods.promised_days)
    late = waiting[waiting["age"] > promised]
    if waiting.empty:
        return [Line("Waiting to ship", "nothing: every paid order is shipped", (0, 0))]
    oldest, days = waiting.iloc[0], periods.promised_days
    text = (f"{len(waiting)} paid order{'s' if len(waiting) != 1 else ''} not shipped, {len(late) or 'none'} late "
            f"(over {days} day{'s' if days != 1 else ''}); oldest #{oldest['order_id']}, "
            f"waiting {duration_text(oldest['age'])}")
    return [Line("Waiting to ship", text, (len(waiting), len(late)))]


def top_product_lines(periods: Periods) -> list[Line]:
    """The product with the most units sold in orders placed this period and not refunded
    (`analysis.top_products(by="units")`)."""
    best = analysis.top_products(periods.this.items, by="units", n=1)
    if best.empty:
        return [Line("Top product", "no sales this period", None)]
    row = best.iloc[0]
    units, orders = int(row["units"]), int(row["orders"])
    text = f"{row['product_name']}: {units} sold in {orders} order{'s' if orders != 1 else ''}"
    return [Line("Top product", text, (str(row["product_name"]), units))]


#: the summary's lines, in order: each function takes `Periods` and returns its `Line`s
LINES: tuple[Callable[[Periods], list[Line]], ...] = (revenue_lines, waiting_lines, top_product_lines)


@dataclass(frozen=True)
class Summary:
    """The digest's headline: a title and a few lines (`text()` for a message, an HTML table in a notebook), and
    the span they report."""

    title: str
    lines: tuple[Line, ...]
    span: Span

    def values(self) -> dict[str, Any]:
        """{label: exact value} of every line."""
        return {line.label: line.value for line in self.lines}

    def text(self) -> str:
        return "\n".join([self.title, "", *(f"{line.label}: {line.text}" for line in self.lines)])

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{escape(line.label)}</th><td style='text-align:left'>"
                       f"{escape(line.text)}</td></tr>" for line in self.lines)
        return f"<h2>{escape(self.title)}</h2><table>{rows}</table>"


def summarise(frames: Any, period: str = "week", now: Any = None, promised_days: int = 3) -> Summary:
    """The `Summary` of a digest made at `now` (default now) of the last whole `period` (`week` or `month`) of the
    orders in `frames` (one shop's: `analysis.for_shop`): its lines are `LINES`' in order."""
    when = span(period, now)
    placed = between(frames, None, when.now)
    periods = Periods(between(placed, when.start, when.end), between(placed, when.previous, when.start), placed,
                      when, int(promised_days))
    shop = shop_label(frames)
    title = f"{period.capitalize()}ly digest{f' of {shop}' if shop else ''}: {when.label}"
    return Summary(title, tuple(line for make in LINES for line in make(periods)), when)
