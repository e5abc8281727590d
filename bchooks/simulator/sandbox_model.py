"""The sandbox's state: its shops (each a simulated `Shop` selling in one currency, with a year of history when
asked), registered webhooks, the events it made and their delivery (`Dispatcher`), the OAuth app, and the state file
it is saved to after each change (`sandbox_state.py`). `sandbox.py` serves it over HTTP."""

import base64
import hmac
import threading
from datetime import timedelta

from ..clock import iso, now_iso, parse_iso
from ..config import SANDBOX_PASSWORD, SANDBOX_TOKEN
from ..errors import ConfigError
from ..wire import FORMATS, SHAPES, SIGNATURE_HEADERS
from .deliveries import DEFAULT_SCHEDULE, Dispatcher
from .history import opening, trade_a_year
from .sandbox_oauth import SandboxApp
from .sandbox_state import load_state, save_state
from .shop import Shop, envelope, real_time, run_tag

DEFAULT_TOKEN = SANDBOX_TOKEN
CURRENCIES = ("USD", "GBP", "EUR", "CAD", "AUD")  # the shops' currencies, first to fifth (then again)
MAX_HISTORY = 20000  # orders a shop's year may hold (a busy shop's: 55 a day)


class Sandbox:
    def __init__(self, secret, *, token=DEFAULT_TOKEN, seed=0, shape="flat", format="docs", drop=0.0,
                 schedule=DEFAULT_SCHEDULE, timeout=5.0, clock=real_time, shops=1, password=SANDBOX_PASSWORD,
                 history=0, history_end=None, state=None):
        """`clock`: the time events are stamped with (the real time); order ids carry the time the shop was made
        (`BCSB-<run tag>-000001`), so a restarted sandbox never reuses one. `shops`: how many shops it serves
        (accounts 1234567, 1234568, ...; subdomains sandbox-shop, sandbox-shop-2, ...; currencies USD, GBP, EUR,
        CAD, AUD), whose order numbers overlap as real shops' do; each takes HTTP Basic with its subdomain and
        `password`, the token takes them all. `history`: orders each shop took in the year before `history_end`
        (an aware datetime; default now), served by its API from the start. `state`: a JSON file the sandbox is
        saved to and, when it exists, restored from (its shops kept as they were; `shops` only adds to them)."""
        if shape not in SHAPES or format not in FORMATS:
            raise ValueError("shape must be flat or jsonapi, format docs or guide")
        self._token = token
        self._clock = clock
        self._password = password
        self.oauth = SandboxApp(self, secret)
        self.shop_count = max(1, int(shops))
        if isinstance(history, bool) or not isinstance(history, int) or not 0 <= history <= MAX_HISTORY:
            raise ConfigError(f"--history must be a whole number of orders from 0 to {MAX_HISTORY}, got {history}")
        self.history = history
        self.history_end = parse_iso(history_end) if isinstance(history_end, str) else history_end
        self.state_path = state
        saved = load_state(state) if state else None  # (a state file it cannot use: refused before anything starts)
        self.faults = []  # (status, retry_after) answers the next REST reads get instead (POST /sandbox/faults)
        self.write_delays = []  # seconds the next writes' answers are held back, the change made (POST /sandbox/faults)
        self.reads = 0  # REST reads answered, for measuring what polling costs
        self.seed, self.shape, self.format = seed, shape, format
        self.lock = threading.RLock()
        self.dispatcher = Dispatcher(secret, schedule=schedule, drop=drop, seed=seed, timeout=timeout)
        if saved is None:
            self.reset()
        else:
            self._restore(saved)

    def __repr__(self):
        return f"Sandbox(seed={self.seed}, shape={self.shape!r}, format={self.format!r})"

    def describe(self):
        """One line: each shop's account, subdomain, currency and orders (`account 1234567 (sandbox-shop, USD, 300
        orders)`), and the state file."""
        with self.lock:
            shops = ", ".join(f"{s.account_id} ({s.account['subdomain']}, {s.account['currency']}, {len(s.orders)} "
                              f"orders)" for s in self.shops.values())
        return (f"account{'s' if len(self.shops) > 1 else ''} {shops}"
                + (f"; state in {self.state_path}" if self.state_path else ""))

    def _new_shop(self, n, prefix):
        """The `n`th shop (from 0), with its year of history when the sandbox has one."""
        end = self.history_end or self._clock()
        suffix = f"-{n + 1}" if n else ""
        shop = Shop(self.seed + n, account_id=str(1234567 + n), clock=self._clock, order_prefix=prefix,
                    subdomain=f"sandbox-shop{suffix}", store_name=f"Sandbox Shop{' ' + str(n + 1) if n else ''}",
                    currency=CURRENCIES[n % len(CURRENCIES)], opened=iso(opening(end)) if self.history else None)
        if self.history:
            trade_a_year(shop, self.seed + n, self.history, end)
        return shop

    def reset(self):
        with self.lock:
            prefix = f"BCSB-{run_tag(self._clock(), fresh=True)}"  # one for all shops: their numbers overlap
            self.shops = {}
            for n in range(self.shop_count):
                shop = self._new_shop(n, prefix)
                self.shops[shop.account_id] = shop
            self.shop = next(iter(self.shops.values()))  # the first: where events go unless told otherwise
            self.webhooks = {}
            self.events = []
            self._next_webhook_id = 1
            self.dispatcher.clear()
            self.save()

    def _restore(self, saved):
        with self.lock:
            shops = [Shop.restore(state, clock=self._clock) for state in saved["shops"]]
            prefix = shops[0].order_prefix
            shops += [self._new_shop(n, prefix) for n in range(len(shops), self.shop_count)]
            self.shops = {shop.account_id: shop for shop in shops}
            self.shop = shops[0]
            self.webhooks = {w["id"]: w for w in saved["webhooks"]}
            self.events = saved["events"]
            self._next_webhook_id = saved["next_webhook_id"]
            self.oauth.restore(saved["app_tokens"])
            if len(shops) > len(saved["shops"]):
                self.save()

    def save(self):
        """Write the state file (when the sandbox has one): replaced whole, never half-written."""
        if not self.state_path:
            return
        with self.lock:
            save_state(self.state_path, {
                "shops": [shop.state() for shop in self.shops.values()], "webhooks": list(self.webhooks.values()),
                "events": self.events, "next_webhook_id": self._next_webhook_id, "app_tokens": self.oauth.tokens()})

    def check_token(self, header):
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and value.strip() == self._token

    def authorised_shops(self, header):
        """The shops a request's Authorization opens: all of them for the token, one for its subdomain and
        password (HTTP Basic), none otherwise."""
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "bearer" and value.strip() == self._token:
            return list(self.shops.values())
        if scheme.lower() == "bearer" and self.oauth.account_of(value.strip()):
            return [self.shops[self.oauth.account_of(value.strip())]]
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return []
            return [s for s in self.shops.values() if s.account["subdomain"] == user and
                    hmac.compare_digest(password.encode(), self._password.encode())]
        return []

    def register(self, url, events):
        with self.lock:
            webhook = {"id": str(self._next_webhook_id), "url": url, "events": list(events),
                       "created_at": now_iso()}
            self.webhooks[webhook["id"]] = webhook
            self._next_webhook_id += 1
            self.save()
            return webhook

    def unregister(self, webhook_id):
        """Whether there was such a webhook (now removed)."""
        with self.lock:
            found = self.webhooks.pop(webhook_id, None) is not None
            self.save()
            return found

    def trigger(self, event_type, count=1, *, shape=None, format=None, account_id=None):
        """Change the shop (the first, or `account_id`'s) `count` times and deliver each event to the subscribed
        webhooks."""
        shape, format = shape or self.shape, format or self.format
        created = []
        with self.lock:
            shop = self.shops.get(str(account_id)) if account_id else self.shop
            for _ in range(count):
                created.append(self._emit(shop, event_type, shop.make(event_type), shape, format))
            self.save()
        return created

    def _emit(self, shop, event_type, resource, shape, format):
        """Record an event of `shop` and deliver it to the subscribed webhooks (under the lock)."""
        body = envelope(event_type, resource, shop.account_id, shape=shape, format=format)
        event = {"id": len(self.events) + 1, "type": event_type, "resource_id": str(resource["id"]),
                 "account_id": shop.account_id, "created_at": now_iso()}
        self.events.append(event)
        targets = [w for w in self.webhooks.values() if event_type in w["events"]]
        deliveries = self.dispatcher.enqueue(event["id"], event_type, body, targets, header=SIGNATURE_HEADERS[format])
        return {**event, "deliveries": deliveries}

    def change_order(self, shop, order_id, change):
        """Apply an API write to one of `shop`'s orders: `change(order, shipments, now)` returns the answer (or
        raises `sandbox_writes.Invalid`, changing nothing); the order's `order.updated` is then delivered as
        Big Cartel delivers an app's own changes. None when the shop has no such order."""
        with self.lock:
            order = shop.orders.get(order_id)
            if order is None:
                return None
            now = iso(max(self._clock(), parse_iso(order["updated_at"]) + timedelta(milliseconds=1)))
            answer = change(order, shop.shipments.setdefault(order_id, []), now)
            shop.clock = max(shop.clock, parse_iso(now))
            if order["shipping_status"] == "shipped" and order_id in shop._unshipped:
                shop._unshipped.remove(order_id)
            self._emit(shop, "order.updated", order, self.shape, self.format)
            self.save()
            return answer

    def stop(self):
        return self.dispatcher.stop()
