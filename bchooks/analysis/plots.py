"""Plot helpers for the reports: each returns a new matplotlib `Figure` (no pyplot, no global state) that shows
itself as a picture in JupyterLab and in stored notebook outputs. Each plots one report; for one shop's figure, make
the report from that shop's frames (`analysis.for_shop`) and pass its name as `shop` (the title says it).

Money is never drawn across currencies on one axis: a figure of money has one axes per shop and currency, its
axis labelled in that currency and its ticks written as money (`present.amount_text`).

A bare `Figure` made without pyplot has no rich display in IPython (only the text `<Figure size 800x350 with 1
Axes>`); `ReportFigure` adds `_repr_png_`, so the notebook stores an `image/png` next to that text.
"""

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from pandas.tseries.frequencies import to_offset

from .present import amount_text, date_text, guess_freq, percent_text, product_label
from .reports import weekday_hours

#: (name of one period, pandas frequency of the starts, the same period a year before, trend window in periods)
_PERIODS = {"D": ("day", "D", pd.DateOffset(days=364), 7), "W": ("week", "W-MON", pd.DateOffset(weeks=52), 4),
            "M": ("month", "MS", pd.DateOffset(months=12), 3)}


class ReportFigure(Figure):
    """A `Figure` that displays as a PNG image in Jupyter."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _figure(title, shop=None, width=8, height=3.5):
    figure = ReportFigure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(f"{title}: {shop}" if shop else title)
    return figure, axes


def _money_axis(axis, currency):
    """Tick labels of `axis` as whole money in `currency` (`$1,500`; the number alone without a currency)."""
    axis.set_major_formatter(FuncFormatter(lambda value, _: amount_text(value, currency, digits=0)))


def _currency_label(currency):
    return "unknown currency" if currency is None or pd.isna(currency) else str(currency)


def _revenue_panels(revenue, shop):
    """[(shop label or None, currency, rows)]: one per shop and currency, from a report or {shop: report}."""
    if isinstance(revenue, Mapping):
        return [panel for label, frame in revenue.items() for panel in _revenue_panels(frame, label or shop)]
    keys = [name for name in ("store_name", "account_id") if name in revenue][:1] + ["currency"]
    panels = []
    for key, rows in revenue.groupby(keys, dropna=False, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = shop if len(keys) == 1 or pd.isna(key[0]) else (f"{shop}: {key[0]}" if shop else str(key[0]))
        panels.append((label, key[-1], rows))
    return panels


def _revenue_series(rows, letter):
    """(every period's start from the first to the last, revenue per period as floats, zero where none)."""
    periods = pd.to_datetime(rows["period"], utc=True).dt.tz_convert(None)  # (naive periods: read as UTC)
    per_period = rows.groupby(periods)["revenue"].sum().astype(float)
    starts = pd.date_range(per_period.index.min(), per_period.index.max(), freq=_PERIODS[letter][1])
    return per_period.reindex(starts, fill_value=0.0)


def _draw_revenue(axes, rows, currency, letter, trend):
    name, _, year, window = _PERIODS[letter]
    window = trend if trend is not None else window
    series = _revenue_series(rows, letter)
    shown = series[series.index > series.index[-1] - year]  # the last year; earlier periods: a year before
    ends = shown.index + to_offset(_PERIODS[letter][1])
    left, right = mdates.date2num(shown.index), mdates.date2num(ends)
    middle = (left + right) / 2
    axes.bar(middle, shown.to_numpy(), width=(right - left) * 0.8, label="revenue", color="tab:blue")
    if window and len(series) >= window:
        average = series.rolling(window, min_periods=window).mean().reindex(shown.index)
        if average.notna().any():
            axes.plot(middle, average.to_numpy(), color="tab:orange", linewidth=2,
                      label=f"{window}-{name} average", gid="trend")
    before = pd.Series(series.reindex(shown.index - year).to_numpy(), index=shown.index)
    if before.notna().any():  # (only where the data reaches a year back: never drawn as zero where it does not)
        axes.plot(middle, before.to_numpy(), color="grey", alpha=0.6, linestyle=":", marker=".",
                  label=f"same {name} a year before", gid="year_before")
    axes.xaxis_date()
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    _money_axis(axes.yaxis, currency)
    axes.set_ylabel(f"Revenue ({_currency_label(currency)})")
    axes.legend(loc="upper left", fontsize="small")


def revenue_figure(revenue: "pd.DataFrame | Mapping[str, pd.DataFrame]", shop: str | None = None,
                   freq: str | None = None, trend: int | None = None) -> ReportFigure:
    """Revenue per period as bars, one axes per shop and currency, from `analysis.revenue(orders, "W")` (or `"D"`,
    `"M"`), or from {shop name: that shop's report} (`analysis.by_shop`) for several shops.

    Each axes shows the last year of periods: periods without orders are zero bars, never lines joined across a
    gap; a trend line (the mean of the last `trend` periods: 4 weeks, 7 days or 3 months unless given), drawn
    from the first period it has all of; and, only where the data reaches that far back, the same periods a year
    before (52 weeks, 364 days or 12 months earlier) as a faint dotted line. The y axis is labelled in the
    currency, its ticks written as money. `freq` names the periods when the report's `attrs["freq"]` does not;
    `shop` names the shop in the titles (one shop's report: `analysis.for_shop`)."""
    panels = _revenue_panels(revenue, shop)
    frames = list(revenue.values()) if isinstance(revenue, Mapping) else [revenue]
    known = freq or next((f.attrs["freq"] for f in frames if f.attrs.get("freq")), None)
    letter = str(known).upper()[:1] if known else guess_freq(pd.concat([f["period"] for f in frames])) if any(
        len(f) for f in frames) else "W"
    if letter not in _PERIODS:
        raise ValueError("revenue_figure draws periods of a day, a week or a month (freq D, W or M)")
    title = f"Revenue per {_PERIODS[letter][0]}"
    if not panels:
        figure, axes = _figure(title, shop)
        axes.text(0.5, 0.5, "No revenue yet", ha="center", va="center", transform=axes.transAxes)
        return figure
    figure = ReportFigure(figsize=(8, 3.5 * len(panels)), layout="constrained")
    for axes, (label, currency, rows) in zip(figure.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
        label = label or (_currency_label(currency) if len(panels) > 1 else None)
        axes.set_title(f"{title}: {label}" if label else title)
        _draw_revenue(axes, rows, None if pd.isna(currency) else currency, letter, trend)
    return figure


def top_products_figure(products: "pd.DataFrame", measure: str = "units",
                        shop: str | None = None) -> ReportFigure:
    """Horizontal bars of `analysis.top_products(...)` by `units` or `revenue` (one currency at a time; revenue
    ticks as money). A product's label is its name, and its option's after ` / ` where it has one."""
    title = f"Top products by {measure}"
    if "currency" in products and products["currency"].nunique() > 1:
        raise ValueError("pick one currency first: products[products.currency == 'USD']")
    figure, axes = _figure(title, shop, height=0.35 * max(len(products), 4) + 1)
    options = products["option_name"] if "option_name" in products else [None] * len(products)
    labels = [product_label(name, option) for name, option in zip(products["product_name"], options)]
    axes.barh(labels[::-1], products[measure][::-1].astype(float))
    currency = products["currency"].dropna().iloc[0] if "currency" in products and products["currency"].notna().any() \
        else None
    if measure == "revenue":
        _money_axis(axes.xaxis, currency)
        axes.set_xlabel(f"Revenue ({_currency_label(currency)})")
    else:
        axes.set_xlabel(measure)
    return figure


def countries_figure(countries: "pd.DataFrame", shop: str | None = None) -> ReportFigure:
    """Bars of orders per shipping country, from `analysis.sales_by_country(...)`."""
    figure, axes = _figure("Orders per shipping country", shop)
    per_country = countries.groupby("country", sort=False)["orders"].sum()
    axes.bar(per_country.index, per_country.values)
    axes.set_ylabel("orders")
    return figure


def weekday_hour_figure(orders: "pd.DataFrame", tz: str = "UTC", shop: str | None = None) -> ReportFigure:
    """A heatmap of the orders placed per weekday and hour of the day (`analysis.weekday_hours(orders, tz)`:
    refunded orders count, this is when people buy), the hours in `tz`: UTC, the frames' time, unless given (an
    IANA name such as `"Europe/London"`); the title and the axis name the zone."""
    table = weekday_hours(orders, tz)
    figure, axes = _figure(f"Orders by weekday and hour ({tz})", shop)
    image = axes.imshow(table.to_numpy(), cmap="Blues", aspect="auto", vmin=0)
    axes.set_yticks(range(len(table.index)), list(table.index))
    axes.set_xticks(range(0, 24, 3), [f"{hour:02d}:00" for hour in range(0, 24, 3)])
    axes.set_xlabel(f"Hour of the day ({tz})")
    figure.colorbar(image, ax=axes, label="orders")
    return figure


def retention_figure(table: "pd.DataFrame", shop: str | None = None) -> ReportFigure:
    """A heatmap of `analysis.retention(orders)`: one row per cohort (first-order month, with its number of
    customers), one column per month since the first order, each cell the share of the cohort's customers who
    ordered that month, written as a percentage (blank where the month has not come yet). The colours run from 0
    to the highest share after the first month, so month 0 (always 100%) does not wash the rest out."""
    months = sorted(name for name in table.columns if isinstance(name, (int, np.integer)))
    shares = table[months].astype(float).to_numpy() if months else np.empty((len(table), 0))
    height = max(3.5, 0.4 * len(table) + 1.5)
    figure, axes = _figure("Customers who came back, by first-order month", shop,
                           width=max(8.0, 0.6 * len(months) + 3), height=height)
    if not len(table) or not months:
        axes.text(0.5, 0.5, "No customers yet", ha="center", va="center", transform=axes.transAxes)
        return figure
    later = shares[:, 1:][~np.isnan(shares[:, 1:])]
    top = float(later.max()) if len(later) and later.max() > 0 else 1.0
    image = axes.imshow(np.ma.masked_invalid(shares), cmap="Blues", aspect="auto", vmin=0, vmax=top)
    for (row, column), share in np.ndenumerate(shares):
        if not np.isnan(share):
            axes.text(column, row, percent_text(share, 0), ha="center", va="center", fontsize="small",
                      color="white" if share > 0.6 * top else "black")
    customers = table["customers"] if "customers" in table else pd.Series([None] * len(table))
    axes.set_yticks(range(len(table)), [f"{date_text(cohort, 'M')} ({_count(n)})"
                                        for cohort, n in zip(table.index, customers)])
    axes.set_xticks(range(len(months)), [str(month) for month in months])
    axes.set_xlabel("Months since the first order")
    axes.set_ylabel("First-order month (customers)")
    figure.colorbar(image, ax=axes, label="share of the cohort",
                    format=FuncFormatter(lambda value, _: percent_text(value, 0)))
    return figure


def _count(value: Any) -> str:
    return "?" if value is None or pd.isna(value) else f"{int(value):,}"
