"""The reports as a person reads them: money in the shop's currency, durations in days and hours, rates as
percentages, dates as dates, clean headers. Presentation only: the report frames stay exact (integer cents,
`Decimal`, `Timedelta`, UTC `Timestamp`) for code, and nothing here changes them.

    from bchooks.analysis import present
    present.money_text(172045, "USD")       # '$1,720.45'
    present.styled(analysis.customers(orders))   # a pandas Styler: shown as a table in Jupyter, .to_html()
    present.readable(analysis.customers(orders)) # the same table as a DataFrame of strings (text, digests)

Money is written by Babel in one locale for every currency (`LOCALE`, English as the kit's text): the same
separators in every row of a table, and symbols that never mix two currencies up: only USD is a bare `$`
(`CA$`, `A$`, `NZ$`, `MX$`, `HK$`...), `£`, `€`, `¥` (JPY; `CN¥` for yuan); currencies with no symbol of their own
are their code and a space (`SEK 1,720.45`). Amounts are rounded half up to the currency's digits (none for JPY).
"""

import copy
import math
import re
from collections.abc import Callable
from functools import lru_cache
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from babel import Locale
from babel.numbers import format_decimal, get_currency_precision

from .rows import TIE_COLUMNS

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler  # (imports jinja2: only when a table is styled)

#: the locale every currency is written in (separators, symbols): only USD is a bare "$" in it
LOCALE = "en_US"
#: what a missing value reads as
MISSING = "—"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: columns a person never needs: the event behind a row, the tie-breaking digests
HIDDEN = frozenset({"event_id", *TIE_COLUMNS})
_HEADERS = {"aov": "Average order value", "account_id": "Account", "store_name": "Shop", "order_id": "Order",
            "customer_email": "Email", "customer_name": "Customer", "product_name": "Product",
            "option_name": "Option", "item_count": "Items", "country": "Country code", "country_name": "Country"}


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, np.integer)):
        return Decimal(int(value))
    return Decimal(repr(float(value)))


def amount_text(amount: Any, currency: Any, locale: str = LOCALE, digits: int | None = None) -> str:
    """An amount in currency units (a report's `Decimal`) as money: `amount_text(Decimal("1720.45"), "USD")` is
    `$1,720.45`; `digits` instead of the currency's own (`digits=0`: `$1,720`, for an axis). Without a currency:
    the number alone (`1,720.45`); missing: `MISSING`."""
    if _missing(amount):
        return MISSING
    amount = _decimal(amount)
    if not amount.is_finite():
        return MISSING
    code = None if _missing(currency) or not str(currency).strip() else str(currency).strip().upper()
    if digits is None:
        digits = _precision(code)
    amount = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if not amount:
        amount = abs(amount)  # never "-$0.00"
    return _writer(code, digits, locale)(amount)


@lru_cache(maxsize=None)
def _precision(code: str | None) -> int:
    return get_currency_precision(code) if code else 2


def _babel_writer(code: str | None, digits: int, locale: str) -> Callable[[Decimal], str]:
    """Babel's money (or plain number, without a currency) in `locale`, a space after a symbol made of letters."""
    where = Locale.parse(locale)
    if code is None:
        return lambda amount: format_decimal(amount, format="#,##0" + ("." + "0" * digits if digits else ""),
                                             locale=where)
    pattern = copy.copy(where.currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return lambda amount: re.sub(r"^(-?[^\d-]*[A-Za-z])(\d)", r"\1 \2",  # "SEK1,720.45" -> "SEK 1,720.45"
                                 pattern.apply(amount, where, currency=code, currency_digits=False))


@lru_cache(maxsize=1024)
def _writer(code: str | None, digits: int, locale: str) -> Callable[[Decimal], str]:
    """`_babel_writer`, or the same text made 20 times faster: Babel's prefix and suffix around Python's grouped
    number, used only when it writes exactly what Babel writes for a set of probes (else Babel itself)."""
    babel = _babel_writer(code, digits, locale)
    symbols = Locale.parse(locale).number_symbols.get("latn", {})
    separators = str.maketrans({",": symbols.get("group", ","), ".": symbols.get("decimal", ".")})
    zero = f"{0:.{digits}f}".translate(separators)
    positive, negative = babel(Decimal(0)), babel(Decimal(-1).scaleb(-digits))
    if zero not in positive:
        return babel
    prefix, suffix = positive.split(zero, 1)
    negative_prefix = negative.split(f"{Decimal(1).scaleb(-digits):.{digits}f}".translate(separators), 1)[0]

    def fast(amount: Decimal) -> str:
        number = f"{abs(amount):,.{digits}f}".translate(separators)
        return f"{negative_prefix if amount < 0 else prefix}{number}{suffix}"

    probes = [Decimal(text).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP) for text in (
        "0", "0.05", "-0.05", "7", "-7", "999.99", "1000", "-1234.5", "1234567.891", "-98765432.1", "1e12")]
    return fast if all(fast(probe) == babel(probe) for probe in probes if probe or not probe.is_signed()) else babel


def money_text(cents: Any, currency: Any, locale: str = LOCALE) -> str:
    """Integer cents (hundredths, as the frames' `*_cents` hold them) as money in `currency`: `$1,720.45`,
    `-£12.00`, `€3.00`, `CA$5.10`, `A$5.10`, `¥1,500` (JPY has no cents); missing cents: `MISSING`."""
    if _missing(cents):
        return MISSING
    return amount_text(_decimal(cents).scaleb(-2), currency, locale)


def duration_text(value: Any) -> str:
    """A duration in whole days and hours, as a person says it: `3 days 4 hours`, `1 day`, `18 hours`,
    `under an hour` (minutes are dropped: an order 2 days 23 hours 59 minutes old is `2 days 23 hours`);
    negative durations (clocks disagreeing) get a minus sign; missing: `MISSING`."""
    if _missing(value):
        return MISSING
    seconds = pd.Timedelta(value).total_seconds() if not isinstance(value, timedelta) else value.total_seconds()
    if abs(seconds) < 3600:
        return "under an hour"
    days, rest = divmod(int(abs(seconds)), 86400)
    hours = rest // 3600
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + (
        [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else [])
    return ("-" if seconds < 0 else "") + " ".join(parts)


def percent_text(share: Any, digits: int = 1) -> str:
    """A share (0.399) as a percentage: `39.9%` (`digits` after the point); missing or infinite: `MISSING`."""
    if _missing(share):
        return MISSING
    value = float(share) * 100
    if not math.isfinite(value):
        return MISSING
    return f"{round(value, digits) + 0.0:,.{digits}f}%"


def _frequency(freq: Any) -> str:
    """`D`, `W`, `M`, `Q` or `Y` of a frequency a caller or pandas names (`"W-SUN"`, `"MS"`, `"QE-DEC"`, `"A"`)."""
    letter = str(freq).strip().upper()[:1]
    letter = {"A": "Y"}.get(letter, letter)
    if letter not in ("D", "W", "M", "Q", "Y"):
        raise ValueError(f"freq must be D, W, M, Q or Y, not {freq!r}")
    return letter


def _utc(value: Any) -> pd.Timestamp:
    stamp = value.start_time if isinstance(value, pd.Period) else pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def date_text(value: Any, freq: str = "D") -> str:
    """The date of a day, or the period that starts on it: `1 Dec 2025` (`D`), `Week of 1 Dec 2025` (`W`),
    `Dec 2025` (`M`), `Q4 2025` (`Q`), `2025` (`Y`). A timestamp is read in UTC (the frames' time); a pandas
    `Period` by its start and its own frequency; missing: `MISSING`."""
    if _missing(value):
        return MISSING
    if isinstance(value, pd.Period):
        freq = value.freqstr
    t, letter = _utc(value), _frequency(freq)
    day = f"{t.day} {_MONTHS[t.month - 1]} {t.year}"
    return {"D": day, "W": f"Week of {day}", "M": f"{_MONTHS[t.month - 1]} {t.year}",
            "Q": f"Q{(t.month - 1) // 3 + 1} {t.year}", "Y": str(t.year)}[letter]


def moment_text(value: Any) -> str:
    """A moment to the minute, in UTC: `1 Dec 2025 14:02 UTC`; missing: `MISSING`."""
    if _missing(value):
        return MISSING
    t = _utc(value)
    return f"{date_text(t)} {t.hour:02d}:{t.minute:02d} UTC"


def product_label(name: Any, option: Any = None) -> str:
    """A product as a person names it: `Tee / M`, or the name alone for the default option (Big Cartel's
    `product_option_name` is `""` for it) or a missing one: never a label ending in ` /`."""
    name = "unknown product" if _missing(name) or not str(name).strip() else str(name).strip()
    option = "" if _missing(option) else str(option).strip()
    return f"{name} / {option}" if option else name


def header(name: Any) -> str:
    """A column's name as a heading: `lifetime_value_cents` -> `Lifetime value`, `created_at` -> `Created`,
    `store_name` -> `Shop`, `aov` -> `Average order value`; other names (an hour `13`) as they are written. (A
    retention table's months read `Month 3` in `styled` and `readable`.)"""
    if not isinstance(name, str):
        return str(name)
    if name in _HEADERS:
        return _HEADERS[name]
    words = re.sub(r"_(cents|at)$", "", name).replace("_", " ").strip() or name
    return words[:1].upper() + words[1:]


def guess_freq(periods: Any) -> str:
    """The frequency a column of period starts was made with, when no one says (`frame.attrs["freq"]` or the
    `freq` argument win): `Y` or `Q` when every start opens a year or quarter and they are a year or a quarter
    apart or more, `M` when every start is the first of a month (one alone counts as a month), `W` when every start
    is a Monday a whole number of weeks apart, else `D`."""
    values = pd.DatetimeIndex(pd.Series(periods).dropna().map(_utc).unique()).sort_values()
    if len(values) == 0:
        return "D"
    gaps = np.diff(values.as_unit("s").asi8) // 86_400 if len(values) > 1 else np.array([], dtype="int64")
    smallest = int(gaps.min()) if len(gaps) else None
    if (values.day == 1).all():
        if smallest is not None and (values.month == 1).all() and smallest >= 365:
            return "Y"
        if smallest is not None and values.month.isin([1, 4, 7, 10]).all() and smallest >= 89:
            return "Q"
        if smallest is None or smallest >= 28:
            return "M"
    if (values.day_of_week == 0).all() and (gaps % 7 == 0).all():
        return "W"
    return "D"


Formatter = Callable[[Any], str]


def _number_text(value: Any) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.2f}"
    if isinstance(value, Decimal):
        return amount_text(value, None)
    return str(value)


def _is_decimal(series: pd.Series) -> bool:
    present = series.dropna()
    return series.dtype == object and len(present) > 0 and all(isinstance(v, Decimal) for v in present)


def _is_rate(name: Any, series: pd.Series, retention: bool) -> bool:
    if retention and isinstance(name, (int, np.integer)):
        return True
    if not isinstance(name, str) or not pd.api.types.is_numeric_dtype(series.dtype):
        return False
    return (name.endswith(("_rate", "_share")) or name in ("share", "rate", "sell_through")
            or (name.endswith("change") and pd.api.types.is_float_dtype(series.dtype)))


def _in(text: Callable[[Any, Any], str], currency: Any) -> Formatter:
    return lambda value: text(value, currency)


def _by_currency(frame: pd.DataFrame, text: Callable[[Any, Any], str]) -> list:
    """(row mask, formatter) per currency of the frame's `currency` column (all rows, no currency, without one)."""
    if "currency" not in frame.columns:
        return [(None, _in(text, None))]
    currencies = frame["currency"].astype(object)
    plans: list = [((currencies == code).to_numpy(), _in(text, code)) for code in pd.unique(currencies.dropna())]
    if currencies.isna().any():
        plans.append((currencies.isna().to_numpy(), _in(text, None)))
    return plans


def _period_freq(frame: pd.DataFrame, name: Any, freq: str | None) -> str:
    if name == "cohort":
        return "M"
    if freq or frame.attrs.get("freq"):
        return _frequency(freq or frame.attrs["freq"])
    return guess_freq(frame[name] if name in frame.columns else frame.index)


def _column_plan(frame: pd.DataFrame, name: Any, freq: str | None, retention: bool) -> list:
    """[(row mask or None for every row, formatter)] for one column, by its name and type."""
    series = frame[name]
    dtype = series.dtype
    if isinstance(name, str) and name.endswith("_cents") and pd.api.types.is_numeric_dtype(dtype):
        return _by_currency(frame, money_text)
    if _is_decimal(series):
        return _by_currency(frame, amount_text)
    if dtype == object and "currency" in frame.columns:  # counts and money in one column (`compare_periods`)
        money = series.map(lambda value: isinstance(value, Decimal)).to_numpy(dtype=bool)
        if money.any():
            return [(None, _number_text), *((money if mask is None else money & mask, text)
                                            for mask, text in _by_currency(frame, amount_text))]
    if name == "metric" and not pd.api.types.is_numeric_dtype(dtype):
        return [(None, header)]
    if pd.api.types.is_timedelta64_dtype(dtype):
        return [(None, duration_text)]
    if _is_rate(name, series, retention):
        return [(None, percent_text)]
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        if name in ("period", "cohort"):
            letter = _period_freq(frame, name, freq)
            return [(None, lambda value: date_text(value, letter))]
        if isinstance(name, str) and name.endswith("_at"):
            return [(None, moment_text)]
        return [(None, date_text)]
    return [(None, _number_text)]


def _summary_plan(frame: pd.DataFrame) -> list:
    """`analysis.summary`'s one column: its `revenue XXX` rows in their currency."""
    labels = pd.Series(frame.index.astype(str), index=frame.index)
    plans: list = [(None, _number_text)]
    for label in labels[labels.str.startswith("revenue ")]:
        plans.append(((labels == label).to_numpy(), lambda value, code=label[8:]: amount_text(value, code)))
    return plans


def _index_formatter(frame: pd.DataFrame, freq: str | None) -> Formatter | None:
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        return None
    if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        letter = _period_freq(frame, index.name, freq) if index.name in ("period", "cohort") else "D"
        return lambda value: date_text(value, letter)
    return _number_text


def _header_of(frame: pd.DataFrame) -> Formatter:
    """`header`, and a retention table's months (columns 0..N beside an index `cohort`) as `Month 3`."""
    if frame.index.name != "cohort":
        return header
    return lambda name: f"Month {name}" if isinstance(name, (int, np.integer)) else header(name)


def _plan(frame: pd.DataFrame, freq: str | None) -> dict:
    retention = frame.index.name == "cohort"
    if frame.index.name == "metric" and list(frame.columns) == ["value"]:
        return {"value": _summary_plan(frame)}
    return {name: _column_plan(frame, name, freq, retention) for name in frame.columns if name not in HIDDEN}


def readable(frame: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """The report as text, for people (text outputs, the digest, a table pasted into an e-mail): a new DataFrame of
    strings with the same rows, the columns `styled` shows under its headers, and a meaningful index (a cohort, a
    metric) as text; `frame` is not changed. `freq` names the periods of a `period` column (else
    `frame.attrs["freq"]`, which `analysis.revenue` sets, else `guess_freq`)."""
    columns = {}
    for name, plans in _plan(frame, freq).items():
        values = frame[name].to_numpy(dtype=object)
        text = np.empty(len(values), dtype=object)
        for mask, formatter in plans:
            rows = np.arange(len(values)) if mask is None else np.flatnonzero(mask)
            text[rows] = [formatter(values[n]) for n in rows]
        columns[_header_of(frame)(name)] = text
    index_text = _index_formatter(frame, freq)
    index = (frame.index if index_text is None else
             pd.Index([index_text(v) for v in frame.index], name=header(frame.index.name)
                      if frame.index.name is not None else None))
    return pd.DataFrame(columns, index=index, dtype=object)


def styled(frame: pd.DataFrame, freq: str | None = None) -> "Styler":
    """The report as a person reads it, for Jupyter and HTML (`.to_html()`): a pandas `Styler` over `frame`
    (which is not changed: code keeps the exact numbers) that writes, by column name and type:

    - `*_cents` (integer cents) and `Decimal` columns as money in the row's `currency` (`$1,720.45`);
    - timedeltas (`age`, `time_to_ship`) in days and hours (`3 days 4 hours`);
    - rates (`*_rate`, `*_share`, `share`, float `*change`) and a retention table's months as percentages;
    - `period` as its period (`Dec 2025`, `Week of 1 Dec 2025`, `1 Dec 2025`; see `readable` for how the
      frequency is known), `cohort` as a month, `*_at` as a moment (`1 Dec 2025 14:02 UTC`), other dates as days;
    - counts with thousands separators, missing values as `MISSING`;

    hides `HIDDEN` columns (`event_id`, the tie columns) and a plain row number index, and heads columns as words
    (`header`). A frame whose index repeats labels is shown with its index as a column."""
    if not frame.index.is_unique:
        frame = frame.reset_index(drop=isinstance(frame.index, pd.RangeIndex) or frame.index.name is None)
    index_text = _index_formatter(frame, freq)
    view = frame if frame.index.name is None else frame.rename_axis(header(frame.index.name))
    styler = view.style
    for name, plans in _plan(frame, freq).items():
        for mask, formatter in plans:
            styler.format(formatter, subset=[name] if mask is None else (mask, [name]))
    hidden = [name for name in frame.columns if name in HIDDEN]
    if hidden:
        styler.hide(subset=hidden, axis="columns")
    if index_text is None:
        styler.hide(axis="index")
    else:
        styler.format_index(index_text, axis="index")
    styler.format_index(_header_of(frame), axis="columns")
    return styler


__all__ = ["HIDDEN", "LOCALE", "MISSING", "amount_text", "date_text", "duration_text", "guess_freq", "header",
           "moment_text", "money_text", "percent_text", "product_label", "readable", "styled"]
