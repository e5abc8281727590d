"""A shop's plan and its product cap, read from the account: never from a table of plans in the kit.

Big Cartel's `GET /v1/accounts` can include the account's `plans` resource (`max_products`,
`max_images_per_product`, `monthly_rate`); the caps differ by plan and change over time, so the kit reads them at run
time. Two places can say a shop's plan:

- the API: `plan_of(client)` asks `GET /v1/accounts?include=plan` and reads the `plans` object the account's `plan`
  relationship points at (an answer without `included`, or without that object, gives None);
- the store: `stored_caps(store)` and `plan_of_account(payload)` read a stored `account.*` event's payload, flat (`"plan": {"max_products":
  ...}`) or JSON:API (the `plan` relationship and an `included` plan); a plan named only (`"plan": "Gold"`) has no
  cap, and says so (None).

A cap that is not there is None (reported as unknown), never a guess.
"""

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ApiError

#: the account events whose payload may carry the plan
ACCOUNT_TYPES = ("account.updated", "account.plan.upgraded", "account.plan.downgraded")


@dataclass(frozen=True)
class Plan:
    """A shop's plan as the account says it: `max_products` is the product cap (None: not said)."""

    id: str | None
    name: str | None
    max_products: int | None
    max_images_per_product: int | None
    monthly_rate: Decimal | None


def _count(value: Any) -> int | None:
    """A whole non-negative number (an int, or its decimal text); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _rate(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        return None
    return rate if rate.is_finite() else None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def plan_from(attributes: Any, plan_id: Any = None) -> Plan | None:
    """The `Plan` of a plan's attributes (a dict), or None when it is not one."""
    if not isinstance(attributes, dict):
        return None
    return Plan(id=_text(plan_id if plan_id is not None else attributes.get("id")), name=_text(attributes.get("name")),
                max_products=_count(attributes.get("max_products")),
                max_images_per_product=_count(attributes.get("max_images_per_product")),
                monthly_rate=_rate(attributes.get("monthly_rate")))


def _related(resource: dict, included: Any, name: str = "plan") -> Plan | None:
    """The plan a JSON:API resource's `plan` relationship points at, found in `included`."""
    relationships = resource.get("relationships")
    relationship = relationships.get(name) if isinstance(relationships, dict) else None
    ref = relationship.get("data") if isinstance(relationship, dict) else None
    if not isinstance(ref, dict) or ref.get("id") is None:
        return None
    for other in included if isinstance(included, list) else ():
        if (isinstance(other, dict) and other.get("type") == "plans"
                and str(other.get("id")) == str(ref["id"])):
            return plan_from(other.get("attributes"), other.get("id"))
    return Plan(id=_text(ref["id"]), name=None, max_products=None, max_images_per_product=None, monthly_rate=None)


def plan_of_account(payload: Any) -> Plan | None:
    """The plan an account payload carries: flat (`"plan"` an object, or just a name) or a JSON:API document (the
    `plan` relationship, the plan itself in `included`). None when the payload names no plan; a `Plan` whose
    `max_products` is None when it names one without its cap."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if isinstance(data, list):  # (a list answer: GET /v1/accounts)
        data = data[0] if data else None
    if isinstance(data, dict):
        return _related(data, payload.get("included"))
    plan = payload.get("plan")
    if isinstance(plan, dict):
        return plan_from(plan)
    if isinstance(plan, str) and plan:
        return Plan(id=plan.lower(), name=plan, max_products=None, max_images_per_product=None, monthly_rate=None)
    return None


def plan_of(client: Any) -> Plan | None:
    """The plan of the client's shop, read from `GET /v1/accounts?include=plan` (a `shops.client.BigCartelClient`,
    e.g. `shop.client()`). None when the answer names no plan; `ApiError` when the API cannot be read."""
    document = client.get_json("/v1/accounts", params={"include": "plan"})
    if not isinstance(document, dict) or not isinstance(document.get("data"), list) or not document["data"]:
        raise ApiError("the API returned no account for this shop")
    return plan_of_account(document)


def stored_caps(store: Any) -> dict:
    """{account_id: product cap} from each shop's newest stored `account.updated` / `account.plan.*` event (by
    arrival) that names a plan: its plan's `max_products` when the payload carries it, else None (unknown: an older
    event's cap may be another plan's). Shops whose account events name no plan are left out."""
    caps: dict = {}
    for event in store.iter_events(type=ACCOUNT_TYPES):
        try:
            document = json.loads(event.body)
        except (ValueError, RecursionError):
            continue
        payload = document.get("payload", document.get("data")) if isinstance(document, dict) else None
        plan = plan_of_account(payload)
        if plan is not None:
            caps[event.account_id] = plan.max_products
    return caps


def product_cap(client: Any) -> int | None:
    """The shop's product cap (`max_products` of its plan) as the API says it now; None when not said."""
    plan = plan_of(client)
    return plan.max_products if plan is not None else None


__all__ = ["ACCOUNT_TYPES", "Plan", "plan_from", "plan_of", "plan_of_account", "product_cap", "stored_caps"]
