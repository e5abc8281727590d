"""Polling: Big Cartel's webhooks are invite-only, so most sellers get none. The poller reads each connected shop's
orders and products through the API and stores every new or changed one as the event a webhook would have brought,
in the same store: the feed, the handlers and the analysis cannot tell them apart (the envelope says
`"source": "poll"` for whoever wants to know).

Orders: from the shop's cursor (the newest `updated_at` stored, less `OVERLAP` for clocks and late commits),
oldest update first, by time-keyed pages (`client.iter_orders`: an order updated during the walk is read at its
end, never skipped). Each page is stored in one transaction, then the cursor moves: a crash between loses nothing
and stores nothing twice (a body read again is a duplicate). An order whose `updated_at` equals its `created_at` is
stored as `order.created`, any later state as `order.updated`: the same state always makes the same bytes, so an
unchanged order stores nothing. Products: the API has no updated-since filter, so each poll walks the catalogue;
new or changed products become `product.created`/`product.updated` (stock, sold out, price...), and a product the
store knows that the walk no longer finds, `product.deleted`.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from .clock import iso, parse_iso
from .store import event_row
from .wire import ORDER_TYPES, PRODUCT_TYPES, dumps, envelope_from

log = logging.getLogger("bchooks.poller")

OVERLAP = timedelta(minutes=2)
SOURCE = "poll"


@dataclass
class PollResult:
    account_id: str
    orders_read: int = 0
    orders_stored: int = 0
    products_read: int = 0
    products_stored: int = 0
    products_deleted: int = 0
    complete: bool = True

    def __str__(self):
        text = (f"shop {self.account_id}: {self.orders_stored} of {self.orders_read} orders read were new or changed, "
                f"{self.products_stored} of {self.products_read} products")
        if self.products_deleted:
            text += f", {self.products_deleted} deleted"
        return text + ("" if self.complete else " (stopped early; the next poll goes on from there)")


def _event(account_id, event_type, document):
    body = dumps({"account_id": str(account_id), "type": event_type, "source": SOURCE, "payload": document})
    return event_row(body, envelope_from({"account_id": str(account_id), "type": event_type, "payload": document}),
                     remote_addr=SOURCE)


def _kind(document, noun):
    attributes = document["data"].get("attributes") or {}
    created, updated = attributes.get("created_at"), attributes.get("updated_at")
    return f"{noun}.created" if created and created == updated else f"{noun}.updated"


def _store_page(store, rows):
    """Store a page of event rows in one transaction; how many were new."""
    if not rows:
        return 0
    stored = 0
    for row, result in zip(rows, store.append_rows(rows)):
        if isinstance(result, Exception):  # (a row the database cannot take: said, and the others go on)
            log.error("a polled %s %s could not be stored: %s", row[1], row[3], result)
        elif not result.duplicate:
            stored += 1
    return stored


def poll_orders(store, client, account_id, result, *, page_size=100, stop=None, overlap=OVERLAP):
    cursor = store.cursors.get(account_id, "orders")
    since = iso(parse_iso(cursor) - overlap) if cursor else None
    page, newest = [], cursor

    def flush():
        """Store the page, then move the cursor past it."""
        result.orders_stored += _store_page(store, [_event(account_id, _kind(d, "order"), d) for d in page])
        result.orders_read += len(page)
        page.clear()
        if newest:
            store.cursors.set(account_id, "orders", newest)
    for document in client.iter_orders(updated_since=since, page_size=page_size):
        page.append(document)
        updated = (document["data"].get("attributes") or {}).get("updated_at")
        if updated and (newest is None or updated > newest):
            newest = updated
        if len(page) == page_size:
            flush()
            if stop is not None and stop.is_set():
                result.complete = False
                return
    flush()


def poll_products(store, client, account_id, result, *, page_size=100, stop=None):
    seen, page = set(), []
    for document in client.iter_products(page_size=page_size):
        seen.add(str(document["data"]["id"]))
        page.append(_event(account_id, _kind(document, "product"), document))
        if len(page) == page_size:
            result.products_stored += _store_page(store, page)
            result.products_read += len(page)
            page = []
            if stop is not None and stop.is_set():
                result.complete = False
                return
    result.products_stored += _store_page(store, page)
    result.products_read += len(page)
    gone = sorted(store.live_resources(account_id, PRODUCT_TYPES, "product.deleted") - seen)
    result.products_deleted = _store_page(store, [_event(account_id, "product.deleted", {"id": product_id})
                                                  for product_id in gone])
    store.cursors.set(account_id, "products", str(len(seen)))


def poll_shop(store, shop, *, page_size=100, stop=None, client=None, overlap=OVERLAP):
    """Poll one connected shop (`shops.Shop`) into the store; a `PollResult`. `overlap`: how far before the cursor
    the orders walk starts (for clocks and late commits on the API's side)."""
    result = PollResult(shop.account_id)
    store.cursors.remember_shop(shop.account_id, shop.store_name)
    own = client is None
    client = client or shop.client()
    try:
        poll_orders(store, client, shop.account_id, result, page_size=page_size, stop=stop, overlap=overlap)
        if result.complete:
            poll_products(store, client, shop.account_id, result, page_size=page_size, stop=stop)
    finally:
        if own:
            client.close()
    return result


__all__ = ["ORDER_TYPES", "OVERLAP", "PollResult", "poll_orders", "poll_products", "poll_shop"]
