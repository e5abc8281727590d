"""Our own changes coming back, and handlers that act.

Big Cartel sends apps webhooks for the changes they make themselves, and a poll sees those changes too: the
`order.updated` that follows a shipment this kit sent is its echo. `is_own_change(store, event)` recognises it: the
event's order has a recorded shipped attempt (`store.shipments`) and the event shows the order exactly as that
shipment left it (the same `updated_at` and `shipping_status` the API showed right after it; when that read failed,
shipped and stamped within the attempt's time). The worker does not run handlers for own changes unless a
handler opts in with `@on(..., own_changes=True)`.

`client_for(event)` gives a handler the API client of the shop its event belongs to (the shops file's credentials,
or `BCHOOKS_TOKEN`'s shop); `clients_from(config)` is the same as a function of an account id, as `ship` takes it.
A handler that ships calls `ship(...)`, so its change is recorded and its echo recognised like any other.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..clock import parse_iso
from ..errors import InputError
from ..store.shipments import SHIPPED
from ..wire import parse_order

#: how far (seconds) the API's clock may be from ours, when an echo is matched by time alone
SKEW = 5.0


def _time(text: Any):
    try:
        return parse_iso(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _matches(row: dict, updated_at: Any, status: Any) -> bool:
    moment = _time(updated_at)
    if moment is None:
        return False
    if row["order_updated_at"]:
        return moment == _time(row["order_updated_at"]) and status == row["order_status"]
    started, answered = _time(row["started_at"]), _time(row["answered_at"])
    if started is None or answered is None or status != "shipped":
        return False
    skew = timedelta(seconds=SKEW)
    return started - skew <= moment <= answered + skew


def is_own_change(store: Any, event: Any) -> bool:
    """Whether `event` (a `StoredEvent`) is the `order.updated` the API sent back for a shipment this kit made."""
    if getattr(event, "type", None) != "order.updated" or not getattr(event, "account_id", None):
        return False
    parsed = parse_order(event.body)
    if not parsed or not isinstance(parsed[1], dict):
        return False
    order_id, attributes = str(parsed[0]), parsed[1]
    try:
        order_id.encode("utf-8")
    except UnicodeEncodeError:  # (a lone surrogate, stored as received: never an order this kit shipped)
        return False
    attempts = store.shipments.of_orders(str(event.account_id), [order_id]).get(order_id, [])
    return any(row["state"] == SHIPPED and _matches(row, attributes.get("updated_at"),
                                                    attributes.get("shipping_status")) for row in attempts)


def clients_from(config: Any = None) -> Callable[[str], Any]:
    """A function giving the API client (`BigCartelClient`) of a connected shop by account id, from the shops file
    and `BCHOOKS_TOKEN` (`config`: a `Config`, default `Config.load()`); `InputError` for a shop not connected."""
    from ..config import Config
    from ..shops import ShopBook, shops_of
    config = config if config is not None else Config.load()
    book = ShopBook(config.shops)

    def client(account_id: str) -> Any:
        for shop in shops_of(config, book):
            if shop.account_id == str(account_id):
                return shop.client(max_retry_after=config.max_retry_after)
        raise InputError(f"no shop {account_id} is connected (see `bchooks shops`; connect it with `bchooks "
                         f"connect`)")
    return client


def client_for(event: Any, config: Any = None) -> Any:
    """The API client of the shop `event` belongs to (its `account_id`), for a handler that acts on the shop."""
    account_id = getattr(event, "account_id", None)
    if not account_id:
        raise InputError("the event names no shop (no account_id): it cannot be acted on")
    return clients_from(config)(str(account_id))
