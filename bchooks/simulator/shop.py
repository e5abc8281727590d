"""A deterministic simulated Big Cartel shop: realistic orders, products and account events.

`Shop(seed)` holds the state (products, orders, a clock) and makes events of every catalog type. With its
virtual clock (the default) the same seed gives the same bytes; with a `clock` (the sandbox, `bchooks simulate`)
events are stamped with the time it tells, the real time by default, and `history.py` backdates a year of trading. Money is exact (`Decimal`) and written as Big Cartel writes it ("45.0"), totals
add up (`item_total` = sum of line totals; `total` = item_total - discount + shipping + tax).
"""

import itertools
import json
import random
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from . import catalog
from ..clock import iso, parse_iso
from ..wire import EVENT_TYPES, FORMATS, SHAPES, dumps, money_text, round_cents

_last_tag = [0]
_tag_lock = threading.Lock()


def run_tag(moment, fresh=False):
    """A short tag for a shop started at `moment` (base-36 milliseconds since the epoch, e.g. `MJ2K8Z3Q`): order
    ids carry it, so shops started at other times (a restarted sandbox, another simulation) never reuse an id.
    `fresh`: never a tag this process gave before (two shops made within one millisecond get two)."""
    number = int(moment.timestamp() * 1000)
    if fresh:
        with _tag_lock:
            number = _last_tag[0] = max(number, _last_tag[0] + 1)
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit] + digits
    return digits or "0"


def real_time():
    return datetime.now(timezone.utc)


class Shop:
    def __init__(self, seed=0, *, account_id="1234567", start="2026-01-01T09:00:00.000Z", mean_gap_minutes=30.0,
                 order_prefix="BCSB", clock=None, subdomain="sandbox-shop", store_name="Sandbox Shop", currency="USD",
                 opened=None):
        """`clock` (a function returning an aware datetime, e.g. `real_time`): stamp events with its time instead of
        the virtual clock that starts at `start` and advances by random gaps of `mean_gap_minutes`. `currency`: the
        one currency the store sells in, as a Big Cartel store does (None: each customer pays in their own country's,
        which no real store does). `opened`: when the shop opened (its products' and account's creation
        time; a shop with a backdated history opened before it), else the clock's time."""
        if currency is not None and currency not in catalog.CURRENCIES:
            raise ValueError(f"unknown currency {currency!r}; valid: {', '.join(catalog.CURRENCIES)}")
        self.rng = random.Random(seed)
        self.order_prefix = order_prefix
        self.account_id = str(account_id)
        self.currency = currency
        self._clock = clock
        self.clock = parse_iso(opened) if opened else clock() if clock is not None else parse_iso(start)
        self.mean_gap = float(mean_gap_minutes)
        self.products = {}
        self.orders = {}
        self.shipments = {}  # order id: the shipments made through the API (POST .../shipments)
        self._unshipped = []
        self._order_seq = 0
        self._product_seq = 0
        self._option_seq = 0
        self._customers = 0
        self.account = {
            "id": self.account_id, "subdomain": subdomain, "store_name": store_name,
            "description": "Prints, pins and zines.", "contact_email": f"{subdomain}@example.com",
            "url": f"https://{subdomain}.bigcartel.com", "website": "", "currency": currency or "USD",
            "plan": "Platinum",
            "created_at": iso(self.clock), "updated_at": iso(self.clock),
        }
        for name, category, options in catalog.PRODUCTS:
            self._new_product(name, category, options)

    # -- clock and ids
    def tick(self, at=None):
        """The next event's time: `at` (a backdated history), the clock's time (never before the previous event's,
        a millisecond later at least), or the virtual clock advanced by a random gap."""
        if at is not None:
            self.clock = at
            return iso(self.clock)
        gap = timedelta(minutes=self.rng.expovariate(1 / self.mean_gap))  # (drawn on every clock: same seed, same shop)
        if self._clock is not None:
            self.clock = max(self._clock(), self.clock + timedelta(milliseconds=1))
        else:
            self.clock += gap
        return iso(self.clock)

    def _new_product(self, name, category, options):
        self._product_seq += 1
        pid = str(100000 + self._product_seq)
        now = iso(self.clock)
        product_options = []
        if self.currency is not None:  # (the catalog's prices are in USD)
            options = [(option_name, money_text(Decimal(price) * catalog.FX[self.currency]))
                       for option_name, price in options]
        for option_name, price in options:
            self._option_seq += 1
            product_options.append({"id": str(500000 + self._option_seq), "name": option_name, "price": price,
                                    "quantity": self.rng.randint(5, 60), "sold": 0, "has_digital_file": False})
        permalink = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")
        product = {
            "id": pid, "name": name, "permalink": permalink, "description": f"{name}, made in small batches.",
            "status": "active", "created_at": now, "updated_at": now, "default_price": options[0][1],
            "on_sale": False, "position": self._product_seq,
            "url": f"https://{self.account['subdomain']}.bigcartel.com/product/{permalink}",
            "primary_image_url": f"https://images.example.com/{pid}.jpg",
            "has_option_groups": False, "category_names": [category], "options": product_options,
        }
        self.products[pid] = product
        return product

    # -- orders
    def create_order(self, at=None, featured=None):
        """A new order (at `at`, else the next tick); `featured`: a product id this order certainly includes."""
        if not self.products:
            self._new_product(*catalog.PRODUCTS[0])
        rng = self.rng
        now = self.tick(at)
        self._order_seq += 1
        oid = f"{self.order_prefix}-{self._order_seq:06d}"
        customer = self._customer()
        country = _country_of(customer)
        country_name, local_currency, shipping, tax_rate, cities = catalog.COUNTRIES[country]
        currency = self.currency or local_currency
        city, state, zip_code, lat, lng = cities[customer % len(cities)]
        first = catalog.FIRST_NAMES[customer % len(catalog.FIRST_NAMES)]
        last = catalog.LAST_NAMES[(customer // len(catalog.FIRST_NAMES)) % len(catalog.LAST_NAMES)]
        discount_rate = rng.choice(catalog.DISCOUNT_RATES)
        fx, tax_rate = catalog.FX[currency] / catalog.FX[self.currency or "USD"], Decimal(tax_rate)
        items, item_total, tax_total = [], Decimal(0), Decimal(0)
        product_ids = rng.sample(sorted(self.products), k=min(rng.randint(1, 5), len(self.products)))
        if featured in self.products and featured not in product_ids:
            product_ids[0] = featured
        for n, pid in enumerate(product_ids, start=1):
            product = self.products[pid]
            option = rng.choice(product["options"])
            quantity = rng.choice((1, 1, 1, 2, 2, 3))
            price = round_cents(Decimal(option["price"]) * fx)
            line_total = price * quantity
            line_tax = round_cents(line_total * (1 - discount_rate) * tax_rate)
            item_total += line_total
            tax_total += line_tax
            option["sold"] += quantity
            option["quantity"] = max(0, option["quantity"] - quantity)
            items.append({
                "id": f"{self._order_seq}{n:02d}", "product_id": pid, "product_option_id": option["id"],
                "product_name": product["name"], "product_option_name": option["name"], "quantity": quantity,
                "price": money_text(price), "total": money_text(line_total), "tax_total": money_text(line_tax),
                "image_url": product["primary_image_url"], "quantity_shipped": 0, "quantity_unshipped": quantity,
                "category_names": product["category_names"],
            })
        discount = round_cents(item_total * discount_rate)
        shipping_total = round_cents(Decimal(shipping) * catalog.FX[currency])
        order = {
            "id": oid, "item_count": sum(i["quantity"] for i in items), "item_total": money_text(item_total),
            "discount_total": money_text(discount), "shipping_total": money_text(shipping_total),
            "tax_total": money_text(tax_total), "total": money_text(item_total - discount + shipping_total + tax_total),
            "tax_remitted_by_big_cartel": False,
            "customer_first_name": first, "customer_last_name": last,
            "customer_email": f"{first}.{last}.{customer}@example.com".lower().replace(" ", "").replace("'", ""),
            "customer_phone_number": f"+1555{customer % 10 ** 7:07d}",
            "customer_opted_in_to_marketing": rng.random() < 0.4, "customer_note": rng.choice(catalog.NOTES),
            "shipping_address_1": f"{customer % 997 + 1} {catalog.STREETS[customer % len(catalog.STREETS)]}",
            "shipping_address_2": "",
            "shipping_city": city, "shipping_state": state, "shipping_zip": zip_code, "shipping_country_id": country,
            "shipping_country_name": country_name, "shipping_latitude": float(lat), "shipping_longitude": float(lng),
            "shipping_status": "unshipped", "payment_status": "completed",
            "created_at": now, "updated_at": now, "completed_at": now,
            "currency": currency, "items": items,
            "adjustments": [{"id": f"{self._order_seq}90", "type": "discount", "amount": money_text(-discount),
                             "label": f"[{catalog.DISCOUNT_CODES[discount_rate]}] {discount_rate:.0%} off"}]
            if discount else [],
        }
        self.orders[oid] = order
        self._unshipped.append(oid)
        return order

    def _customer(self):
        """A returning customer about a third of the time, else a new one."""
        if self._customers and self.rng.random() < 0.35:
            return self.rng.randrange(self._customers)
        self._customers += 1
        return self._customers - 1

    def ship_order(self, order_id, at=None):
        """Ship this order (all its items)."""
        order = self.orders[order_id]
        order["updated_at"] = self.tick(at)
        order["shipping_status"] = "shipped"
        for item in order["items"]:
            item["quantity_shipped"], item["quantity_unshipped"] = item["quantity"], 0
        if order_id in self._unshipped:
            self._unshipped.remove(order_id)
        return order

    def refund_order(self, order_id, at=None):
        order = self.orders[order_id]
        order["updated_at"] = self.tick(at)
        order["payment_status"] = "refunded"
        return order

    def update_order(self):
        """Ship an open order (most updates), or refund one."""
        if not self.orders:
            self.create_order()
        now = self.tick()
        if self._unshipped and self.rng.random() < 0.85:
            index = self.rng.randrange(len(self._unshipped))
            self._unshipped[index], self._unshipped[-1] = self._unshipped[-1], self._unshipped[index]
            order = self.orders[self._unshipped.pop()]
            order["shipping_status"] = "shipped"
            for item in order["items"]:
                item["quantity_shipped"], item["quantity_unshipped"] = item["quantity"], 0
        else:
            order = self.orders[self.rng.choice(list(self.orders)) if len(self.orders) < 1000
                                else f"{self.order_prefix}-{self.rng.randint(1, self._order_seq):06d}"]
            order["payment_status"] = "refunded"
        order["updated_at"] = now
        return order

    # -- products and account
    def create_product(self, at=None, name=None):
        now = self.tick(at)
        base, category, options = self.rng.choice(catalog.PRODUCTS)
        product = self._new_product(name or f"{base} (Edition {self._product_seq + 1})", category, options)
        product["created_at"] = product["updated_at"] = now
        return product

    def update_product(self):
        if not self.products:
            return self.create_product()
        now = self.tick()
        product = self.products[self.rng.choice(sorted(self.products))]
        option = self.rng.choice(product["options"])
        if self.rng.random() < 0.5:
            option["quantity"] = self.rng.randint(0, 80)
        else:
            option["price"] = money_text(Decimal(option["price"]) + Decimal(self.rng.choice((1, 2, -1))))
        product["status"] = "sold_out" if all(o["quantity"] == 0 for o in product["options"]) else "active"
        product["updated_at"] = now
        return product

    def delete_product(self):
        if not self.products:
            self.create_product()
        self.tick()
        pid = self.rng.choice(sorted(self.products))
        del self.products[pid]
        return {"id": pid}

    def update_account(self, event_type):
        now = self.tick()
        if event_type in ("account.closed", "account.deauthorized"):
            return {"id": self.account_id}
        if event_type == "account.plan.upgraded":
            self.account["plan"] = "Diamond"
        elif event_type == "account.plan.downgraded":
            self.account["plan"] = "Gold"
        else:
            self.account["description"] = self.rng.choice(("Prints, pins and zines.", "Back from holiday!",
                                                            "Shop closed for a week in August."))
        self.account["updated_at"] = now
        return self.account

    def make(self, event_type):
        """Change the shop as the event type says; return the resource (internal, flat form)."""
        if event_type == "order.created":
            return self.create_order()
        if event_type == "order.updated":
            return self.update_order()
        if event_type == "product.created":
            return self.create_product()
        if event_type == "product.updated":
            return self.update_product()
        if event_type == "product.deleted":
            return self.delete_product()
        if event_type.startswith("account."):
            return self.update_account(event_type)
        raise ValueError(f"unknown event type {event_type!r}; valid: {', '.join(EVENT_TYPES)}")

    def events(self, event_type, count=1, *, shape="flat", format="docs"):
        """`count` events of one type as envelope bytes, changing the shop as they go."""
        return [envelope(event_type, self.make(event_type), self.account_id, shape=shape, format=format)
                for _ in range(count)]

    # -- saving and restoring (the sandbox's state file)
    _SAVED = ("order_prefix", "account_id", "currency", "mean_gap", "products", "orders", "_unshipped", "_order_seq",
              "_product_seq", "_option_seq", "_customers", "account")

    def state(self):
        """Everything the shop is, as JSON-ready data (its random generator's state too: a restored shop goes on
        as it would have)."""
        version, internal, gauss = self.rng.getstate()
        return {**{name: getattr(self, name) for name in self._SAVED}, "clock": self.clock.isoformat(),
                "rng": [version, list(internal), gauss], "shipments": self.shipments}

    @classmethod
    def restore(cls, state, clock=None):
        """The shop `state()` gave (stamped by `clock` from then on, as `Shop(clock=...)`)."""
        shop = cls.__new__(cls)
        for name in cls._SAVED:
            setattr(shop, name, state[name])
        version, internal, gauss = state["rng"]
        shop.rng = random.Random()
        shop.rng.setstate((version, tuple(internal), gauss))
        shop._clock = clock
        shop.clock = parse_iso(state["clock"])
        shop.shipments = state.get("shipments") or {}  # (a state file of an earlier version has none)
        return shop


_COUNTRY_CUMULATIVE = list(zip(itertools.accumulate(catalog.COUNTRY_WEIGHTS.values()), catalog.COUNTRY_WEIGHTS))


def _country_of(customer):
    """A customer's country, fixed for that customer, spread by the catalog's weights."""
    total = _COUNTRY_CUMULATIVE[-1][0]
    point = (customer * 2654435761) % 2 ** 32 % total
    return next(code for bound, code in _COUNTRY_CUMULATIVE if point < bound)


# -- documents
def _currency(code):
    name, sign, locale = catalog.CURRENCIES[code]
    return {"id": code, "name": name, "sign": sign, "locale": locale}


def _country(code):
    return {"id": code, "name": catalog.COUNTRIES[code][0]}


def flat_order(order):
    document = {k: v for k, v in order.items() if k not in ("currency", "items")}
    document["currency"] = _currency(order["currency"])
    document["shipping_country"] = _country(order["shipping_country_id"])
    document["items"] = [dict(item) for item in order["items"]]
    return document


def jsonapi_order(order):
    attributes = {k: v for k, v in order.items() if k not in ("id", "currency", "items", "adjustments")}
    included = [{"id": order["currency"], "type": "currencies",
                 "attributes": {k: v for k, v in _currency(order["currency"]).items() if k != "id"}},
                {"id": order["shipping_country_id"], "type": "countries",
                 "attributes": {"name": catalog.COUNTRIES[order["shipping_country_id"]][0]}}]
    for item in order["items"]:
        included.append({
            "id": item["id"], "type": "order_line_items",
            "attributes": {k: v for k, v in item.items() if k not in ("id", "product_id", "product_option_id")},
            "relationships": {"product": {"data": {"id": item["product_id"], "type": "products"}},
                              "product_option": {"data": {"id": item["product_option_id"],
                                                          "type": "product_options"}}},
        })
    adjustments = order.get("adjustments", ())
    for adjustment in adjustments:  # (JSON:API reserves `type`: the kind of adjustment is an attribute)
        included.append({"id": adjustment["id"], "type": "order_adjustments",
                         "attributes": {"kind": adjustment["type"], "amount": adjustment["amount"],
                                        "label": adjustment["label"]}})
    return {"data": {
        "id": order["id"], "type": "orders", "attributes": attributes,
        "relationships": {
            "currency": {"data": {"id": order["currency"], "type": "currencies"}},
            "shipping_country": {"data": {"id": order["shipping_country_id"], "type": "countries"}},
            "items": {"data": [{"id": i["id"], "type": "order_line_items"} for i in order["items"]]},
            "adjustments": {"data": [{"id": a["id"], "type": "order_adjustments"} for a in adjustments]},
        }}, "included": included}


#: the sandbox's plans, as its `GET /v1/accounts?include=plan` answers them (the kit itself never holds a table of
#: plans: it reads the cap from the account). Name: (max_products, max_images_per_product, monthly_rate).
PLANS = {"Gold": (5, 1, "0.0"), "Platinum": (50, 5, "15.0"), "Diamond": (500, 5, "30.0")}


def jsonapi_plan(name):
    """The `plans` resource of a plan name (its id: the name in lower case), as `included` carries it."""
    max_products, max_images, rate = PLANS[name]
    return {"id": name.lower(), "type": "plans", "attributes": {
        "name": name, "max_products": max_products, "max_images_per_product": max_images, "monthly_rate": rate}}


def jsonapi_product(product):
    attributes = {k: v for k, v in product.items() if k not in ("id", "options")}
    return {"data": {"id": product["id"], "type": "products", "attributes": attributes,
                     "relationships": {"options": {"data": [{"id": o["id"], "type": "product_options"}
                                                            for o in product["options"]]}}},
            "included": [{"id": o["id"], "type": "product_options",
                          "attributes": {k: v for k, v in o.items() if k != "id"}} for o in product["options"]]}


def payload(event_type, resource, shape="flat"):
    """The resource in the requested payload shape."""
    if shape not in SHAPES:
        raise ValueError(f"unknown payload shape {shape!r}; valid: {', '.join(SHAPES)}")
    if set(resource) == {"id"}:
        return dict(resource)  # deletions and account closure carry the id only
    kind = event_type.split(".", 1)[0]
    if kind == "order":
        return flat_order(resource) if shape == "flat" else jsonapi_order(resource)
    if kind == "product":
        return json.loads(dumps(resource)) if shape == "flat" else jsonapi_product(resource)
    if shape == "flat":
        return {**{k: v for k, v in resource.items() if k != "currency"}, "currency": _currency(resource["currency"])}
    return {"data": {"id": resource["id"], "type": "accounts",
                     "attributes": {k: v for k, v in resource.items() if k not in ("id", "currency", "plan")},
                     "relationships": {"currency": {"data": {"id": resource["currency"], "type": "currencies"}},
                                       "plan": {"data": {"id": resource["plan"].lower(), "type": "plans"}}}}}


def envelope(event_type, resource, account_id, *, shape="flat", format="docs"):
    """Envelope bytes: the docs' `{"account_id", "type", "payload"}` or the guide's `{"type", "data"}`."""
    body = payload(event_type, resource, shape)
    if format == "docs":
        return dumps({"account_id": str(account_id), "type": event_type, "payload": body})
    if format == "guide":
        return dumps({"type": event_type, "data": body})
    raise ValueError(f"unknown envelope format {format!r}; valid: {', '.join(FORMATS)}")
