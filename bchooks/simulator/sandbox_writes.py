"""The sandbox's writes: changing an order (`PATCH .../orders/{id}`) and shipping its lines (`POST
.../orders/{id}/shipments`), as Big Cartel's API documents them. Each checks the JSON:API body (`Invalid`: a 400
naming the attribute), changes the simulated order, moves its `updated_at`, and returns what to answer; the
sandbox then sends the order's `order.updated` to the registered webhooks, as Big Cartel sends apps their own
changes."""

import re
from typing import Any

from . import catalog

#: the attributes a PATCH may change (as public clients send them)
UPDATABLE = ("shipping_status", "customer_first_name", "customer_last_name", "customer_email", "shipping_address_1",
             "shipping_address_2", "shipping_city", "shipping_state", "shipping_zip", "shipping_country_id")
SHIPPING_STATUSES = ("unshipped", "shipped")
SHIPMENT_ATTRIBUTES = ("notify_customer", "items", "carrier", "tracking_number", "tracking_url")


class Invalid(Exception):
    """A body the API refuses (400): `detail` says why, `pointer` where (`/data/attributes/...`)."""

    def __init__(self, detail: str, pointer: str = "/data"):
        super().__init__(detail)
        self.detail, self.pointer = detail, pointer


def _data(document: Any, kind: str, order_id: str | None = None) -> dict:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise Invalid(f'the body must be {{"data": {{"type": "{kind}", "attributes": {{...}}}}}}')
    if data.get("type") != kind:
        raise Invalid(f"data.type must be {kind}", "/data/type")
    if order_id is not None and data.get("id") is not None and str(data["id"]) != order_id:
        raise Invalid(f"data.id {str(data['id'])[:40]!r} is not the order of the URL ({order_id})", "/data/id")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or not attributes:
        raise Invalid("data.attributes must be an object with at least one attribute", "/data/attributes")
    return attributes


def _text(attributes: dict, name: str, limit: int = 255) -> str | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{name} must be text of at most {limit} characters", f"/data/attributes/{name}")
    return value


def update_order(order: dict, document: Any, now: str) -> dict:
    """Apply a PATCH body to `order` (checked whole before anything changes); the order."""
    attributes = _data(document, "orders", order["id"])
    unknown = sorted(set(attributes) - set(UPDATABLE))
    if unknown:
        raise Invalid(f"{unknown[0][:40]} cannot be changed (updatable: shipping_status, the customer's name and "
                      f"e-mail, the shipping address fields)",
                      f"/data/attributes/{unknown[0][:40]}")
    changes = {name: _text(attributes, name) for name in attributes}
    if "shipping_status" in changes and changes["shipping_status"] not in SHIPPING_STATUSES:
        raise Invalid(f"shipping_status must be one of {', '.join(SHIPPING_STATUSES)}",
                      "/data/attributes/shipping_status")
    email = changes.get("customer_email")
    if "customer_email" in changes and (not email or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
        raise Invalid("customer_email must be an e-mail address", "/data/attributes/customer_email")
    country = changes.get("shipping_country_id")
    if "shipping_country_id" in changes and country not in catalog.COUNTRIES:
        raise Invalid("shipping_country_id must be an ISO 3166 alpha-2 code of a country the shop ships to",
                      "/data/attributes/shipping_country_id")
    for name, value in changes.items():
        order[name] = "" if value is None else value
    if country:
        order["shipping_country_name"] = catalog.COUNTRIES[country][0]
    if changes.get("shipping_status") == "shipped":
        for item in order["items"]:
            item["quantity_shipped"], item["quantity_unshipped"] = item["quantity"], 0
    order["updated_at"] = now
    return order


def add_shipment(order: dict, shipments: list, document: Any, now: str) -> dict:
    """Apply a shipment body to `order` (checked whole first): its lines shipped, the order shipped once every
    line is; the shipment resource (appended to `shipments`)."""
    attributes = _data(document, "shipments")
    unknown = sorted(set(attributes) - set(SHIPMENT_ATTRIBUTES))
    if unknown:
        raise Invalid(f"unknown attribute {unknown[0][:40]}; known: {', '.join(SHIPMENT_ATTRIBUTES)}",
                      f"/data/attributes/{unknown[0][:40]}")
    notify = attributes.get("notify_customer", False)
    if not isinstance(notify, bool):
        raise Invalid("notify_customer must be true or false", "/data/attributes/notify_customer")
    carrier, number, url = (_text(attributes, name) for name in ("carrier", "tracking_number", "tracking_url"))
    if url and not re.fullmatch(r"https?://\S+", url):
        raise Invalid("tracking_url must be an http(s) URL", "/data/attributes/tracking_url")
    items = attributes.get("items")
    if not isinstance(items, list) or not items:
        raise Invalid("items must be a non-empty list of {order_line_item_id, quantity}", "/data/attributes/items")
    lines = {item["id"]: item for item in order["items"]}
    wanted: dict[str, int] = {}
    for n, entry in enumerate(items):
        where = f"/data/attributes/items/{n}"
        line_id = entry.get("order_line_item_id") if isinstance(entry, dict) else None
        quantity = entry.get("quantity") if isinstance(entry, dict) else None
        if str(line_id) not in lines or isinstance(line_id, bool):
            raise Invalid(f"order {order['id']} has no line item {str(line_id)[:40]}", f"{where}/order_line_item_id")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise Invalid("quantity must be a whole number of 1 or more", f"{where}/quantity")
        wanted[str(line_id)] = wanted.get(str(line_id), 0) + quantity
        if wanted[str(line_id)] > lines[str(line_id)]["quantity_unshipped"]:
            raise Invalid(f"line item {line_id} has {lines[str(line_id)]['quantity_unshipped']} left to ship, not "
                          f"{wanted[str(line_id)]}", f"{where}/quantity")
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        line["quantity_shipped"] += quantity
        line["quantity_unshipped"] -= quantity
    if all(line["quantity_unshipped"] == 0 for line in order["items"]):
        order["shipping_status"] = "shipped"
    order["updated_at"] = now
    shipment = {"id": f"{order['id']}-S{len(shipments) + 1}", "type": "shipments", "attributes": {
        "carrier": carrier, "tracking_number": number, "tracking_url": url, "notify_customer": notify,
        "items": [{"order_line_item_id": k, "quantity": v} for k, v in wanted.items()], "created_at": now},
        "relationships": {"order": {"data": {"id": order["id"], "type": "orders"}}}}
    shipments.append(shipment)
    return shipment
