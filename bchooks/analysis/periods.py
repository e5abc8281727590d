"""What the trading and cohort reports share: calendar periods of UTC times as integers, customers as integers, and
the orders a report counts. All vectorised: a million orders are a few NumPy passes, never a loop per order.

A period is numbered from the epoch (`D` days, `W` weeks from Monday, `M` months, `Q` quarters, `Y` years), so
consecutive periods have consecutive numbers and "the period before" is the number minus one.
"""

from typing import Any

import numpy as np
import pandas as pd

from ..wire import money_of_cents
from . import grouping

FREQS = ("D", "W", "M", "Q", "Y")
REFUNDED = "refunded"
NAT = np.iinfo(np.int64).min
_DAY_US = 86_400_000_000


def check_freq(freq: str, allowed: tuple = FREQS) -> str:
    if freq not in allowed:
        raise ValueError(f"freq must be one of {', '.join(repr(f) for f in allowed)}")
    return freq


def micros(column: pd.Series) -> np.ndarray:
    """int64 microseconds since the epoch (UTC) of a datetime column; `NAT` (int64 min) where missing."""
    return column.to_numpy("datetime64[us]").view("int64")


def micros_of(moment: Any) -> int:
    """A moment (anything `pd.Timestamp` takes; naive means UTC) as int64 microseconds since the epoch."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.tz_convert(None).as_unit("us").asm8.view("int64"))


def period_of(us: np.ndarray, freq: str) -> np.ndarray:
    """The period number of each time (int64 microseconds; meaningless where `NAT`: callers mask those)."""
    us = np.asarray(us, dtype=np.int64)
    if freq in ("D", "W"):
        days = us // _DAY_US
        return days if freq == "D" else (days + 3) // 7  # 1970-01-01 was a Thursday: weeks from Monday
    if freq == "Y":
        return us.astype("datetime64[us]").astype("datetime64[Y]").view("int64")
    months = us.astype("datetime64[us]").astype("datetime64[M]").view("int64")
    return months if freq == "M" else months // 3  # 1970-01 opens a quarter


def period_start(number: Any, freq: str) -> np.ndarray:
    """The first microsecond (UTC) of each period number."""
    number = np.asarray(number, dtype=np.int64)
    if freq == "D":
        return number * _DAY_US
    if freq == "W":
        return (number * 7 - 3) * _DAY_US
    unit = "datetime64[Y]" if freq == "Y" else "datetime64[M]"
    return (number * (3 if freq == "Q" else 1)).view(unit).astype("datetime64[us]").view("int64")


def timestamps(us: Any) -> pd.Series:
    """UTC Timestamps of int64 microseconds."""
    return pd.Series(pd.to_datetime(np.asarray(us, dtype=np.int64), unit="us", utc=True))


def kept(orders: pd.DataFrame) -> np.ndarray:
    """Mask of the orders a report counts: every order whose payment status is not `refunded` (as `revenue` does).
    Other statuses are kept verbatim and counted."""
    return ~refunded(orders)


def refunded(orders: pd.DataFrame) -> np.ndarray:
    """Mask of the orders whose latest payment status is `refunded` (compared on categorical codes)."""
    status = orders["payment_status"]
    if isinstance(status.dtype, pd.CategoricalDtype):
        labels = status.cat.categories
        if REFUNDED not in labels:
            return np.zeros(len(status), dtype=bool)
        return status.cat.codes.to_numpy() == labels.get_loc(REFUNDED)
    return (status == REFUNDED).to_numpy(dtype=bool, na_value=False)


def cents(orders: pd.DataFrame, column: str) -> np.ndarray:
    """int64 cents of a money column, missing (or an absent column) as 0."""
    if column not in orders:
        return np.zeros(len(orders), dtype=np.int64)
    return orders[column].to_numpy("int64", na_value=0)


def money_column(values: Any) -> pd.Series:
    """Exact `Decimal`s of integer cents (None for None)."""
    return pd.Series([None if value is None else money_of_cents(int(value)) for value in values], dtype=object)


def average_money(total_cents: np.ndarray, count: np.ndarray) -> pd.Series:
    """`total / count` as a `Decimal` rounded to the cent (halves up), None where count is 0: exact integers."""
    total, count = np.asarray(total_cents, dtype=np.int64), np.asarray(count, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rounded = (2 * total + count) // np.maximum(2 * count, 1)
    return money_column([int(value) if n else None for value, n in zip(rounded, count)])


def average(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """float `total / count`, NaN where count is 0."""
    total, count = np.asarray(total, dtype=np.float64), np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def currency_codes(orders: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """(codes, labels) of the currency column (-1 missing)."""
    found, labels = grouping.codes(orders["currency"])
    return found.astype(np.int64), labels


def customer_codes(orders: pd.DataFrame) -> np.ndarray:
    """One integer per customer, -1 for an order without an e-mail. A customer is an e-mail within a shop
    (`account_id` when the frame has it): the same person buying from two shops is a customer of each."""
    email, emails = grouping.codes(orders["customer_email"])
    email = email.astype(np.int64)
    if "account_id" not in orders:
        return email
    account, accounts = grouping.codes(orders["account_id"])
    if len(accounts) <= 1:
        return email
    groups = grouping.Groups((account, len(accounts)), (email, len(emails)), keep=email >= 0)
    return np.where(email >= 0, groups.number, -1)


def first_times(customer: np.ndarray, us: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per customer code, the earliest time among `rows` (int64 max for a customer without such rows)."""
    size = int(customer.max()) + 1 if len(customer) else 0
    first = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, customer[rows], us[rows])
    return first


def ordered(labels: pd.Index, found: np.ndarray) -> np.ndarray:
    """Sort keys for codes: by label, missing last (`grouping.ranks`)."""
    return grouping.ranks(labels, found)



def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an int64 array, by sorting (numpy 2's hashing `np.unique` is 20x slower on a
    million integers)."""
    ordered_values = np.sort(np.asarray(values, dtype=np.int64))
    if not len(ordered_values):
        return ordered_values
    return ordered_values[np.concatenate(([True], ordered_values[1:] != ordered_values[:-1]))]
