"""A year of trading for the demo shop: order times with the rhythms a real shop has, ending now.

`order_times(rng, count, end)` spreads `count` order times over the `days` before `end`: more on weekdays than at
weekends, more at lunch and in the evening than at night, a slow growth over the year, a holiday season (from late
November to Christmas, Black Friday weekend above all) and a quiet January, and a product drop: one day a few
months back when a limited product launched and orders spiked for a fortnight. `trading_history(...)` turns them
into the events such a shop would have sent: each order created, then shipped a few days later (or now and then
refunded), except the last few days' orders, still open, as in a real shop. `trade_a_year(shop, ...)` makes a
`Shop` live through that year (the sandbox's shops, whose API then serves it). One shop, one currency.

Everything is drawn from the seed, relative to `end`: the same seed and the same `end` give the same bytes, so
tests and stored notebooks pin `end` (`BCHOOKS_DEMO_END`) and everyone else gets a history that ends today.
"""

import random
import re
from datetime import datetime, timedelta, timezone

from ..clock import iso
from .shop import Shop, envelope, run_tag

DAYS = 365
WEEKDAY = (1.1, 1.15, 1.1, 1.05, 1.0, 0.8, 0.7)  # Monday first
HOURS = (0.2, 0.1, 0.1, 0.1, 0.15, 0.3, 0.5, 0.8, 1.0, 1.1, 1.2, 1.4, 1.6, 1.5, 1.2, 1.1, 1.1, 1.2, 1.4,
         1.7, 1.9, 1.7, 1.1, 0.5)  # UTC hour of day
DROP_DAYS_AGO = 120  # the product drop
DROP_NAME = "Limited Drop: Aurora Risograph"
DEMO_PREFIX = "DEMO"  # order ids of the demo year: DEMO7-MX4NA800-000001
#: order ids the kit's simulators make (sandbox, `bchooks simulate`, the demo year): a store holding only these holds
#: no real shop's orders
SIMULATED_ID = re.compile(r"^(BCSB|S\d+|DEMO\d+)-[0-9A-Z]+-\d{6}$")


def _black_friday(year):
    november = datetime(year, 11, 1, tzinfo=timezone.utc)
    thursdays = [november + timedelta(days=d) for d in range(30) if (november + timedelta(days=d)).weekday() == 3]
    return (thursdays[3] + timedelta(days=1)).date()


def day_weight(day, start, end):
    """How busy `day` is, relative to an ordinary weekday at the start of the year."""
    weight = WEEKDAY[day.weekday()] * (0.75 + 0.5 * (day - start.date()).days / DAYS)
    friday = _black_friday(day.year)
    if friday <= day <= friday + timedelta(days=3):  # Black Friday to Cyber Monday
        weight *= (4.0, 2.5, 2.5, 3.0)[(day - friday).days]
    elif (day.month == 11 and day.day >= 20) or (day.month == 12 and day.day <= 21):
        weight *= 2.0  # the holiday season
    elif day.month == 12 and day.day >= 25 or day.month == 1 and day.day <= 15:
        weight *= 0.6  # after Christmas
    since_drop = (day - (end - timedelta(days=DROP_DAYS_AGO)).date()).days
    if 0 <= since_drop < 14:
        weight *= 1 + 7.0 / (1 + since_drop)
    return weight


def order_times(rng, count, end, days=DAYS):
    """`count` sorted order times in the `days` before `end` (exclusive), spread by `day_weight` and `HOURS`."""
    start = end - timedelta(days=days)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    calendar = [(first + timedelta(days=n)).date() for n in range(days + 1)]
    weights = [day_weight(day, start, end) for day in calendar]
    times = []
    while len(times) < count:
        day = rng.choices(calendar, weights)[0]
        hour = rng.choices(range(24), HOURS)[0]
        moment = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc) + timedelta(
            seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
        if start <= moment < end:
            times.append(moment)
    return sorted(times)


def _ship_delay(rng):
    """Days from order to shipment: most within two days, a few after a week."""
    return min(rng.expovariate(1 / 1.6) + 0.2, 12.0)


def trading_history(seed, orders, end, *, shape="flat", format="docs", currency="USD"):
    """The events (bodies, in time order) of a year of trading that ends at `end`: `orders` orders created, their
    shipments and refunds, and the product drop, in one `currency`. Returns (bodies, counts by event type)."""
    shop = Shop(seed, start=iso(opening(end)), order_prefix=f"{DEMO_PREFIX}{seed}-{run_tag(end)}", currency=currency)
    events = []
    counts = trade_a_year(shop, seed, orders, end, lambda kind, resource: events.append(
        envelope(kind, resource, shop.account_id, shape=shape, format=format)))
    return events, counts


def opening(end):
    """When a shop whose year of trading ends at `end` opened: a month before its first order could come."""
    return end - timedelta(days=DAYS + 30)


def trade_a_year(shop, seed, orders, end, emit=None):
    """Make `shop` live through the year before `end` (opened at `opening(end)` or before): its catalogue listed,
    `orders` orders created, shipped a few days later or now and then refunded (the latest still open), and the
    product drop. Each order moves its products' stock (`product.updated`, as Big Cartel announces it), and an
    option that sells out is now and then restocked a few days later; a few options stay sold out, as in a real
    shop. `emit(event type, resource)` is told each change as it happens. Returns the counts by event type."""
    rng = random.Random(seed)
    stock = random.Random(seed + 1)  # (restocks: drawn apart, so the orders are those of the seed alone)
    drop_at = (end - timedelta(days=DROP_DAYS_AGO)).replace(hour=9, minute=0, second=0, microsecond=0)
    timeline = [(moment, "order.created", None) for moment in order_times(rng, orders, end)]
    timeline.append((drop_at, "product.created", None))
    timeline.sort(key=lambda entry: entry[0])
    counts, drop, index, restocking = {}, None, 0, set()
    if emit is not None:
        for product in shop.products.values():  # the catalogue the shop opened with
            emit("product.created", product)
            counts["product.created"] = counts.get("product.created", 0) + 1
    while index < len(timeline):
        moment, event_type, order_id = timeline[index]
        index += 1
        if event_type == "product.created":
            resource = drop = shop.create_product(at=moment, name=DROP_NAME)
        elif event_type == "order.created":
            featured = drop["id"] if drop and moment - drop_at < timedelta(days=21) and rng.random() < 0.6 else None
            resource = shop.create_order(at=moment, featured=featured)
            later = moment + timedelta(days=_ship_delay(rng))
            refund = rng.random() < 0.03
            if refund:
                later = moment + timedelta(days=rng.uniform(1, 10))
            if later < end:  # the latest orders are still open
                _insert(timeline, index, (later, "order.refunded" if refund else "order.shipped", resource["id"]))
        elif event_type == "order.shipped":
            resource = shop.ship_order(order_id, at=moment)
        elif event_type == "product.restocked":
            resource = _restock(shop, order_id, moment, stock)
            restocking.discard(order_id)
        else:
            resource = shop.refund_order(order_id, at=moment)
        kind = _KINDS.get(event_type, event_type)
        if emit is not None:
            emit(kind, resource)
        counts[kind] = counts.get(kind, 0) + 1
        if event_type == "order.created":
            _stock_moved(shop, resource, moment, end, (timeline, index, restocking), stock, emit, counts)
    return counts


_KINDS = {"order.shipped": "order.updated", "order.refunded": "order.updated", "product.restocked": "product.updated"}


def _stock_moved(shop, order, moment, end, plan, stock, emit, counts):
    """After `order`: each of its products announced updated (stock moved), and each option it sold out restocked
    in 2 to 12 days, four times in five (`plan`: the timeline, where it is read, and the options being restocked)."""
    timeline, index, restocking = plan
    for product_id in dict.fromkeys(item["product_id"] for item in order["items"]):
        product = shop.products[product_id]
        product["updated_at"] = order["created_at"]
        if emit is not None:
            emit("product.updated", product)
        counts["product.updated"] = counts.get("product.updated", 0) + 1
        for option in product["options"]:
            key = (product_id, option["id"])
            if option["quantity"] == 0 and key not in restocking and stock.random() < 0.8:
                later = moment + timedelta(days=stock.uniform(2, 12))
                if later < end:
                    restocking.add(key)
                    _insert(timeline, index, (later, "product.restocked", key))


def _restock(shop, key, moment, stock):
    product_id, option_id = key
    product = shop.products[product_id]
    for option in product["options"]:
        if option["id"] == option_id:
            option["quantity"] += stock.randint(15, 40)
    product["updated_at"] = iso(moment)
    return product


def _insert(timeline, start, entry):
    """Put `entry` into the sorted `timeline`, after position `start`."""
    position = start
    while position < len(timeline) and timeline[position][0] <= entry[0]:
        position += 1
    timeline.insert(position, entry)

