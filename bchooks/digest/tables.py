"""The digest's tables as a seller reads them: money in the shop's currency (`$1,720.45`), waits in days and hours,
dates as dates. Presentation only: the reports they show (`bchooks.analysis`) keep exact numbers."""

from decimal import Decimal
from typing import Any

import pandas as pd

from .. import analysis


def amount_text(amount: Decimal | int | None, currency: Any) -> str:
    """An exact amount (a `Decimal` of the currency's units) as money: `$1,720.45`, `£12.00`, `€3.00` (Babel,
    English); an amount of an unknown currency keeps its code; a missing one is an empty text."""
    if amount is None or pd.isna(amount):
        return ""
    if currency is None or pd.isna(currency):
        return f"{Decimal(amount):,.2f}"
    from babel.numbers import format_currency
    return format_currency(Decimal(amount), str(currency), locale="en_US")


def duration_text(value: Any) -> str:
    """A wait as a person says it, to the hour below a day's length: `3 d 4 h`, `18 h`, `35 min`."""
    minutes = max(int(pd.Timedelta(value).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    return f"{hours} h" if hours else f"{minutes} min"


def waiting_table(orders: pd.DataFrame, now: Any, promised_days: int) -> pd.DataFrame:
    """The paid orders placed before `now` and not shipped (`analysis.open_orders`), oldest first, for a person:
    order, shop (when several), placed, waiting, late (waiting longer than `promised_days`), customer, total."""
    now = pd.Timestamp(now)
    waiting = analysis.open_orders(orders[orders["created_at"] < now], now=now)
    several = "account_id" in waiting and waiting["account_id"].nunique() > 1
    shop = (waiting["store_name"].astype(object).fillna(waiting["account_id"].astype(object))
            if several else None)
    table = pd.DataFrame({
        "Order": "#" + waiting["order_id"].astype(str),
        **({"Shop": shop.astype(str)} if shop is not None else {}),
        "Placed": waiting["created_at"].dt.strftime("%a %d %b %Y"),
        "Waiting": waiting["age"].map(duration_text),
        "Late": (waiting["age"] > pd.Timedelta(days=promised_days)).map({True: "late", False: ""}),
        "Customer": waiting["customer_name"].astype(object).fillna(""),
        "Total": [amount_text(analysis.money(cents), currency)
                  for cents, currency in zip(waiting["total_cents"], waiting["currency"])],
    })
    return table.set_index("Order")


def best_sellers_table(items: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` products that took the most money (`analysis.top_products(by="revenue")`, per currency), for a
    person: product, units, orders, revenue."""
    best = analysis.top_products(items, by="revenue", n=n)
    return pd.DataFrame({
        "Product": best["product_name"].astype(str),
        "Units": best["units"].astype(int),
        "Orders": best["orders"].astype(int),
        "Revenue": [amount_text(amount, currency) for amount, currency in zip(best["revenue"], best["currency"])],
    }).set_index("Product")
