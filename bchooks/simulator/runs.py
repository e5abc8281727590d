"""Simulation runs, like `stripe trigger`: simulated events sent straight to a receiver, or created and delivered
by the sandbox. The CLI and the simulator widget both call these."""

import secrets
import time

from ..shops.client import BigCartelClient
from ..config import Config
from ..store import Store
from ..errors import ConfigError, InputError
from ..wire import EVENT_TYPES, FORMATS, ORDER_TYPES, SHAPES, SIGNATURE_HEADERS
from .sending import Attempt, Summary, send
from .shop import Shop, real_time, run_tag


def direct_shop(seed=None, clock=real_time):
    """A simulated shop for sending straight to a receiver, its events stamped with the real time (`clock`). Its
    order ids start with `S<seed>-<run tag>-`, so shops of other seeds, of other runs and the sandbox's (`BCSB-`)
    never share an order id; the same seed gives the same customers, products and amounts."""
    seed = secrets.randbelow(10 ** 6) if seed is None else seed
    start = clock()
    return Shop(seed, order_prefix=f"S{seed}-{run_tag(start, fresh=True)}", clock=lambda: max(clock(), start))


def check(event_type, count, shape=None, format=None):
    if event_type not in EVENT_TYPES:
        raise InputError(f"unknown event type {event_type!r}; valid: {', '.join(EVENT_TYPES)}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100000:
        raise InputError(f"the number of events must be a whole number from 1 to 100000, got {count!r}")
    if shape not in (None, *SHAPES):
        raise InputError(f"unknown payload shape {shape!r}; valid: {', '.join(SHAPES)}")
    if format not in (None, *FORMATS):
        raise InputError(f"unknown envelope format {format!r}; valid: {', '.join(FORMATS)}")


def send_simulated(config, event_type, count, *, shop=None, seed=None, url=None, shape="flat", format="docs",
                   concurrency=4, progress=None, secret=None):
    """Make `count` events with `shop` (default `direct_shop(seed)`) and POST them signed to the receiver."""
    check(event_type, count, shape, format)
    secret = secret or (config.secrets[0] if config.secrets else None)
    if not secret:
        raise ConfigError("BCHOOKS_SECRET is not set: the simulator signs with the receiver's secret")
    shop = shop or direct_shop(seed)
    bodies = shop.events(event_type, count, shape=shape, format=format)
    return send(url or config.webhook_url, bodies, secret, header=SIGNATURE_HEADERS[format],
                concurrency=concurrency, progress=progress)


def trigger_in_sandbox(config, event_type, count, *, shape=None, format=None, wait=60.0, progress=None,
                       client=None):
    """Have the sandbox at `config.api_url` create and deliver `count` events; wait for their deliveries.

    Returns (events, Summary of the last attempt of each delivery). Deliveries still pending after `wait`
    seconds, and dropped ones, count as failures."""
    check(event_type, count, shape, format)
    own = client is None
    client = client or BigCartelClient(config.api_url, config.token or config.sandbox_token)
    try:
        events = client.sandbox_trigger(event_type, count, shape=shape, format=format)
        ids = [event["id"] for event in events]
        expected = sum(len(event["deliveries"]) for event in events)
        deadline = time.monotonic() + wait
        done = 0
        while True:
            deliveries = client.sandbox_deliveries(ids) if expected else []
            finished = sum(d["state"] != "pending" for d in deliveries)
            if progress and finished > done:
                progress(finished - done)
                done = finished
            if finished == len(deliveries) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        if own:
            client.close()
    summary = Summary()
    for delivery in deliveries:
        last = delivery["attempts"][-1] if delivery["attempts"] else None
        if delivery["state"] == "dropped":
            summary.add(Attempt(None, 0.0, "dropped"))
        elif delivery["state"] == "pending" or last is None:
            summary.add(Attempt(None, 0.0, f"still pending after {wait:g} s"), delivery["url"])
        else:
            summary.add(Attempt(last["status"], last["latency_ms"], last["error"]), delivery["url"])
    return events, summary


def fill_demo_data(config: Config, store: Store, *, orders: int = 300, seed: int = 7) -> str:
    """Give the analysis something to show: when the store holds no real shop's orders (none, or only what the
    sandbox and the simulator made today) and no demo year yet, send a year of simulated trading
    (`history.trading_history`, ending at `config.demo_end`, else now). Returns one sentence saying what was done."""
    from ..clock import parse_iso
    from .history import DEMO_PREFIX, SIMULATED_ID, trading_history
    simulated = 0
    for resource_id in store.resource_ids(type=ORDER_TYPES):
        if resource_id is None:
            continue
        if not SIMULATED_ID.match(resource_id):
            return "The store holds a shop's own orders; no demo orders were added."
        if resource_id.startswith(DEMO_PREFIX):
            return "The store already holds the demo year; nothing was added."
        simulated += 1
    end = parse_iso(config.demo_end) if config.demo_end else real_time()
    bodies, counts = trading_history(seed, orders, end)
    secret = config.secrets[0] if config.secrets else None
    if not secret:
        raise ConfigError("BCHOOKS_SECRET is not set: the simulator signs with the receiver's secret")
    summary = send(config.webhook_url, bodies, secret, concurrency=1)
    if summary.ok != summary.sent:
        raise ConfigError(f"the receiver did not accept the demo events ({summary})")
    held = f"only {simulated} simulated orders" if simulated else "no orders"
    return (f"The store had {held}: sent a year of simulated trading up to {end:%Y-%m-%d} (seed {seed}): "
            f"{counts.get('order.created', 0)} orders, {counts.get('order.updated', 0)} shipments and refunds, "
            f"{counts.get('product.created', 0)} products listed (one of them the drop), "
            f"{counts.get('product.updated', 0)} stock changes.")
