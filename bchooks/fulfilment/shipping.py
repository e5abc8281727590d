"""Shipping orders with tracking: what would change (`plan`) and doing it (`ship`), never twice.

Every attempt is recorded in the store (`store.shipments`) BEFORE the API is called and finished AFTER with its
answer, so that:

- an order with a recorded shipped attempt, or whose latest stored state says shipped, is skipped ("already
  shipped");
- an attempt without an answer (the process was killed mid-call, or the API did not answer) is "in progress":
  `ship` reads the order from the API first, records it shipped when the API shows it shipped (never sending it
  again), and only sends it again when the API shows it unshipped and the attempt is older than `SETTLE` seconds
  (a request still on its way, or not yet applied, must not be sent twice: until then the order is left pending
  and the outcome says to run again);
- right before sending, the order is read from the API (its line items, and whether someone shipped it meanwhile);
- one order failing (a 4xx) never stops the others.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError, BchooksError
from ..secrecy import printable, redact
from ..store.shipments import FAILED, PENDING, SHIPPED
from ..wire import parse_order

SHIP, ALREADY, UNKNOWN, IN_PROGRESS = "ship", "already shipped", "unknown order", "in progress"
#: seconds an unanswered attempt is left alone before the order is sent again (when the API shows it unshipped)
SETTLE = 60.0
ACTIONS = (SHIP, ALREADY, UNKNOWN, IN_PROGRESS)
ORDER_TYPES = ("order.created", "order.updated")


@dataclass(frozen=True)
class Shipment:
    """One order to ship: its shop, carrier and tracking, and which lines (`items`: (order_line_item_id,
    quantity) pairs; empty: every line not yet shipped); `notify`: the API tells the customer."""

    account_id: str
    order_id: str
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    items: tuple[tuple[str, int], ...] = ()
    notify: bool = False

    def describe(self) -> str:
        """What is shipped, in a few words: `UPS 1Z999 (2 lines)`."""
        words = " ".join(w for w in (self.carrier, self.tracking_number) if w) or "no tracking"
        lines = f" ({len(self.items)} line{'s' if len(self.items) != 1 else ''})" if self.items else ""
        return words + lines


@dataclass(frozen=True)
class Step:
    """What `ship` would do with a shipment: `action` one of `ACTIONS`, and why."""

    shipment: Shipment
    action: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What `ship` did: `status` shipped, skipped or failed; `message` one line (secrets redacted)."""

    shipment: Shipment
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.shipment.account_id} {self.shipment.order_id}: {self.status}: {self.message}"


def _stored_states(store: Any, account_id: str, order_ids: list[str]) -> dict[str, dict]:
    """{order id: its attributes in the newest stored order event} for the orders the store has."""
    found = {}
    for order_id, (_, body) in store.latest_states(account_id, ORDER_TYPES, order_ids).items():
        parsed = parse_order(body)
        found[order_id] = parsed[1] if parsed and isinstance(parsed[1], dict) else {}
    return found


def _shipped_by(shipment: Shipment, attempts: list[dict]) -> dict | None:
    """The recorded shipped attempt that covers this shipment (every line, or the same lines), or None: two
    partial shipments of different lines are both allowed."""
    for row in attempts:
        if row["state"] == SHIPPED and (not row["items"] or not shipment.items
                                        or set(row["items"]) == set(shipment.items)):
            return row
    return None


def _step(shipment: Shipment, attempts: list[dict], state: dict | None) -> Step:
    shipped = _shipped_by(shipment, attempts)
    if shipped is not None:
        return Step(shipment, ALREADY, f"shipped by {shipped['who']} at {shipped['answered_at'] or shipped['started_at']}"
                    + (f" ({shipped['carrier'] or ''} {shipped['tracking_number'] or ''})".replace("( ", "(")
                       .replace(" )", ")") if shipped["carrier"] or shipped["tracking_number"] else ""))
    if attempts and attempts[-1]["state"] == PENDING:
        last = attempts[-1]
        return Step(shipment, IN_PROGRESS, f"attempt {last['attempt']} by {last['who']} at {last['started_at']} has "
                    f"no answer: the order is read from the API before anything is sent")
    if state is None:
        return Step(shipment, UNKNOWN, f"no order {shipment.order_id} of shop {shipment.account_id} in the store "
                    f"(poll the shop first: bchooks poll --once)")
    if state.get("shipping_status") == "shipped" and not shipment.items:
        return Step(shipment, ALREADY, "the store's latest state of the order says shipped")
    return Step(shipment, SHIP, shipment.describe() + (", notifying the customer" if shipment.notify else ""))


def plan(store: Any, shipments: list[Shipment]) -> list[Step]:
    """What `ship` would do with each shipment, from the store alone (no API call), in the given order: "ship",
    "already shipped", "unknown order" or "in progress" (see `ACTIONS`). An order listed twice is shipped once."""
    attempts: dict[str, dict[str, list[dict]]] = {}
    states: dict[str, dict[str, dict]] = {}
    for account_id in {s.account_id for s in shipments}:
        ids = [s.order_id for s in shipments if s.account_id == account_id]
        attempts[account_id] = store.shipments.of_orders(account_id, ids)
        states[account_id] = _stored_states(store, account_id, ids)
    steps, seen = [], set()
    for shipment in shipments:
        key = (shipment.account_id, shipment.order_id, shipment.items)
        if key in seen:
            steps.append(Step(shipment, ALREADY, "listed earlier in this batch"))
            continue
        seen.add(key)
        steps.append(_step(shipment, attempts[shipment.account_id].get(shipment.order_id, []),
                           states[shipment.account_id].get(shipment.order_id)))
    return steps


def _order(client: Any, order_id: str) -> tuple[dict, list[dict]]:
    """(attributes, line items as {"id", "quantity", "quantity_unshipped"}) of the order as the API has it now."""
    document = client.get_order(order_id)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise ApiError(f"the API answered with a malformed order {order_id}")
    relationships: dict = data["relationships"] if isinstance(data.get("relationships"), dict) else {}
    wanted = (relationships.get("items") or {}).get("data") if isinstance(relationships.get("items"), dict) else None
    wanted_ids = [str(r.get("id")) for r in wanted or () if isinstance(r, dict)]
    lines = []
    for resource in document.get("included") or ():
        if not isinstance(resource, dict) or resource.get("type") != "order_line_items":
            continue
        if wanted_ids and str(resource.get("id")) not in wanted_ids:
            continue
        attributes: dict = resource["attributes"] if isinstance(resource.get("attributes"), dict) else {}
        quantity: int = attributes["quantity"] if isinstance(attributes.get("quantity"), int) else 0
        unshipped = attributes.get("quantity_unshipped")
        if not isinstance(unshipped, int):
            shipped = attributes.get("quantity_shipped")
            unshipped = quantity - (shipped if isinstance(shipped, int) else 0)
        lines.append({"id": str(resource.get("id")), "quantity": quantity, "quantity_unshipped": unshipped})
    return data["attributes"], lines


def _shows_shipped(shipment: Shipment, attributes: dict, lines: list[dict]) -> bool:
    """Whether the API's order shows this shipment made: every line shipped, or (a partial shipment) none of its
    lines with as much left as it would ship."""
    if not shipment.items:
        return attributes.get("shipping_status") == "shipped" or (bool(lines) and all(
            line["quantity_unshipped"] <= 0 for line in lines))
    left = {line["id"]: line["quantity_unshipped"] for line in lines}
    return all(line in left and left[line] < quantity for line, quantity in shipment.items)


def _age(started_at: Any) -> float | None:
    """Seconds since an attempt started (None when its time cannot be read)."""
    from datetime import datetime, timezone

    from ..clock import parse_iso
    try:
        return (datetime.now(timezone.utc) - parse_iso(started_at)).total_seconds()
    except (TypeError, ValueError, AttributeError):
        return None


def _line(error: BaseException) -> str:
    return printable(redact(str(error)), limit=300)


class _Shipper:
    def __init__(self, store: Any, clients: Callable[[str], Any], who: str, settle: float = SETTLE):
        self.store, self.clients, self.who, self.settle = store, clients, who, settle
        self._clients: dict[str, Any] = {}

    def client(self, account_id: str) -> Any:
        if account_id not in self._clients:
            self._clients[account_id] = self.clients(account_id)
        return self._clients[account_id]

    def finish(self, shipment: Shipment, attempt: int, state: str, **answer: Any) -> None:
        self.store.shipments.finish(shipment.account_id, shipment.order_id, attempt, state=state, **answer)

    def act(self, step: Step) -> Outcome:
        shipment = step.shipment
        if step.action in (ALREADY, UNKNOWN):
            return Outcome(shipment, "skipped", f"{step.action}: {step.reason}")
        client = self.client(shipment.account_id)
        attributes, lines = _order(client, shipment.order_id)
        if step.action == IN_PROGRESS:
            # (read again from the store: the step may be older than another run's answer)
            last = self.store.shipments.of_orders(shipment.account_id, [shipment.order_id])[shipment.order_id][-1]
            if _shows_shipped(shipment, attributes, lines):
                self.finish(shipment, last["attempt"], SHIPPED, error="no answer was recorded: the API shows the order "
                            "shipped", order_updated_at=attributes.get("updated_at"),
                            order_status=attributes.get("shipping_status"))
                return Outcome(shipment, "shipped", f"found shipped on the API (attempt {last['attempt']} had no "
                               f"answer): not sent again")
            age = _age(last["started_at"])
            if age is None or age < self.settle:
                return Outcome(shipment, "failed", f"attempt {last['attempt']} ({last['started_at']}) has no answer "
                               f"and the API does not show the order shipped yet: run again in a minute (it is sent "
                               f"again only once the attempt is {self.settle:g} s old, never twice)")
            self.finish(shipment, last["attempt"], FAILED, error="no answer was recorded: the API shows the order not "
                        "shipped, so it was sent again")
        elif _shows_shipped(shipment, attributes, lines):
            return Outcome(shipment, "skipped", "already shipped on the API (not by this kit, or before the store "
                           "heard of it)")
        items = shipment.items or tuple((line["id"], line["quantity_unshipped"]) for line in lines
                                        if line["quantity_unshipped"] > 0)
        if not items:
            return Outcome(shipment, "skipped", "the API lists no line left to ship")
        attempt = self.store.shipments.start(shipment.account_id, shipment.order_id, who=self.who,
                                             carrier=shipment.carrier, tracking_number=shipment.tracking_number,
                                             tracking_url=shipment.tracking_url, items=shipment.items,
                                             notify=shipment.notify)
        from ..shops.client import WriteUnknown
        try:
            answer = client.create_shipment(shipment.order_id, items=items, carrier=shipment.carrier,
                                            tracking_number=shipment.tracking_number,
                                            tracking_url=shipment.tracking_url, notify_customer=shipment.notify)
        except WriteUnknown as error:
            self.finish(shipment, attempt, PENDING, status=error.status, error=_line(error), answered=False)
            return Outcome(shipment, "failed", f"{_line(error)}; the next run reads the order before sending it again")
        except ApiError as error:
            self.finish(shipment, attempt, FAILED, status=error.status, error=_line(error))
            return Outcome(shipment, "failed", _line(error))
        data = answer.get("data") if isinstance(answer, dict) else None
        shipment_id = str(data.get("id")) if isinstance(data, dict) and data.get("id") is not None else None
        try:  # (the order as the change left it: what its echo `order.updated` carries)
            after, _ = _order(client, shipment.order_id)
        except ApiError:
            after = {}
        self.finish(shipment, attempt, SHIPPED, status=201, shipment_id=shipment_id,
                    order_updated_at=after.get("updated_at"), order_status=after.get("shipping_status"))
        return Outcome(shipment, "shipped", shipment.describe()
                       + (f" (shipment {shipment_id})" if shipment_id else ""))


def ship(store: Any, clients: Callable[[str], Any], shipments: list[Shipment], *, who: str,
         on_outcome: Callable[[Outcome], object] | None = None, settle: float = SETTLE) -> list[Outcome]:
    """Ship what `plan` says to ship (and resolve what is "in progress"), each attempt recorded before and after
    the call; one `Outcome` a shipment, in order. `clients(account_id)` gives the API client of that shop (e.g.
    `clients_from(config)`); `who` is recorded with each attempt; `on_outcome(outcome)` is called as each ends (a
    CLI prints it at once); `settle`: seconds before an unanswered attempt is sent again. One order failing (a 4xx,
    an unknown shop) never stops the others."""
    shipper = _Shipper(store, clients, who, settle)
    outcomes = []
    for step in plan(store, shipments):
        try:
            outcome = shipper.act(step)
        except BchooksError as error:
            outcome = Outcome(step.shipment, "failed", _line(error))
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def summary(outcomes: Iterable[Outcome]) -> str:
    """One line: `3 shipped, 1 skipped, 1 failed`."""
    outcomes = list(outcomes)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("shipped", "skipped", "failed")}
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def items_text(items: tuple[tuple[str, int], ...]) -> str:
    """`LINE:QTY,LINE:QTY` (the CLI's --items), or `every line`."""
    return ",".join(f"{line}:{quantity}" for line, quantity in items) if items else "every line"


