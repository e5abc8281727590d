"""Polling: Big Cartel's webhooks are invite-only, so most sellers get none. The poller reads each connected shop's
orders and products through the API and stores every new or changed one as the event a webhook would have brought,
in the same store: the feed, the handlers and the analysis cannot tell them apart (the envelope says
`"source": "poll"` for whoever wants to know).

The rules (each one tested in tests/test_poll_rules.py):

- **Created, then updated.** The first time the kit sees an order or a product of a shop, it stores
  `order.created` / `product.created`, whatever its timestamps say (a new order's `updated_at` moves seconds after
  it is placed); every later change is `*.updated`; a state equal to the one stored last is never stored again.
- **Orders** are walked from the shop's cursor (the newest `updated_at` stored, less `OVERLAP`), oldest update
  first (`walks.OrderWalk`: no order is skipped with capped pages, same-time blocks changing under the walk, or
  either reading of `updated_at_from`). Each page is stored in one transaction, then the cursor moves: a crash
  between loses nothing and stores nothing twice. A timestamp is parsed before it can become a cursor: an order
  dated in the future (more than `FUTURE` ahead) is stored but never moves the cursor, and a stored cursor that is
  in the future or unreadable is set aside with one line (the walk reads every order again, storing only what
  changed).
- An order or product whose list answer lacks the objects its relationships point at (line items, options) is
  read alone, when it is new or changed.
- **Products**: the API has no updated-since filter, so each poll walks the catalogue. A product the store knows
  that the walk did not find is stored as `product.deleted` only when its own URL answers 404, or when it was
  missing from the complete walk before too; one that answers is stored as it is now. A walk that did not end, or
  that found no product at all, deletes nothing. A product that comes back after a deletion is stored again.
- **Malformed resources** (not of the documented shape) are recorded as rejections (`malformed_order`,
  `malformed_product`) with their reason, said in one line, and skipped; the walk goes on.
"""

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .client import Stopped
from ..clock import iso, parse_iso
from ..errors import ApiError
from ..store import event_row
from .walks import Document, updated_time
from ..wire import ORDER_TYPES, PRODUCT_TYPES, dumps, envelope_from, storable_text

log = logging.getLogger("bchooks.poller")

OVERLAP = timedelta(minutes=2)
FUTURE = timedelta(days=1)  # an `updated_at` further ahead of this machine's clock never becomes a cursor
SOURCE = "poll"
TYPES = {"order": ORDER_TYPES, "product": PRODUCT_TYPES}


@dataclass
class PollResult:
    account_id: str
    orders_read: int = 0
    orders_stored: int = 0
    products_read: int = 0
    products_stored: int = 0
    products_deleted: int = 0
    skipped: int = 0
    complete: bool = True

    def __str__(self):
        text = (f"shop {self.account_id}: {self.orders_stored} of {self.orders_read} orders read were new or changed, "
                f"{self.products_stored} of {self.products_read} products")
        if self.products_deleted:
            text += f", {self.products_deleted} deleted"
        if self.skipped:
            text += f"; {self.skipped} malformed skipped (see `bchooks rejections`)"
        return text + ("" if self.complete else " (stopped early; the next poll goes on from there)")


def _event(account_id, event_type, document):
    envelope = {"account_id": str(account_id), "type": event_type, "source": SOURCE, "payload": document}
    return event_row(dumps(envelope), envelope_from(envelope), remote_addr=SOURCE)


def _payload(body):
    document = json.loads(body)
    return document.get("payload", document.get("data")) if isinstance(document, dict) else None


def _store_rows(store, rows):
    """Store event rows in one transaction; how many were new."""
    if not rows:
        return 0
    stored = 0
    for row, result in zip(rows, store.append_rows(rows)):
        if isinstance(result, Exception):  # (a row the database cannot take: said, and the others go on)
            log.error("a polled %s %s could not be stored: %s", row[1], row[3], result)
        elif not result.duplicate:
            stored += 1
    return stored


def changed_events(store, account_id: str, noun: str, documents: Iterable[Document],
                   read_alone: Callable[[str], Document]) -> list[tuple]:
    """The event rows for the documents whose state differs from the one stored last: `NOUN.created` for a
    resource never seen, `NOUN.updated` for a changed one. An incomplete document that is new or changed is read
    alone first (`read_alone(id)`; one the API no longer has is taken as listed)."""
    documents = list(documents)
    known = {key: (kind, _payload(body)) for key, (kind, body) in
             store.latest_states(account_id, TYPES[noun], [storable_text(d.id) for d in documents]).items()}
    rows = []
    for document in documents:
        key = storable_text(document.id)
        previous = known.get(key)
        before = previous[1] if previous else None
        if not document.complete and not (isinstance(before, dict) and before.get("data") == document.body["data"]):
            try:
                document = read_alone(document.id)
            except ApiError as error:
                if error.status != 404:
                    raise
        if before == document.body:
            continue
        kind = f"{noun}.created" if previous is None else f"{noun}.updated"
        rows.append(_event(account_id, kind, document.body))
        known[key] = (kind, document.body)
    return rows


class _Skips:
    """Malformed resources: recorded as rejections, said in one line each, counted."""

    def __init__(self, store, account_id, result):
        self.store, self.account_id, self.result = store, account_id, result
        self.ids: set[tuple[str, str]] = set()

    def __call__(self, kind, where, reason):
        if (kind, where) in self.ids:  # (read again in the same walk: said once)
            return
        self.result.skipped += 1
        self.ids.add((kind, where))
        log.warning("shop %s: skipped a malformed %s (%s)", self.account_id, kind, reason)
        self.store.record_rejection(f"malformed_{kind}", path=f"poll {self.account_id}: {reason}"[:300],
                                    remote_addr=SOURCE)


def _start(store, account_id, overlap, now):
    """Where the orders walk starts: the stored cursor less `overlap`, or None (every order)."""
    cursor = store.cursors.get(account_id, "orders")
    if not cursor:
        return None
    try:
        moment = parse_iso(cursor)
    except ValueError:
        log.warning("shop %s: the stored orders cursor %r is not a time: reading every order again", account_id,
                    cursor[:40])
        return None
    if moment > now + FUTURE:
        log.warning("shop %s: the stored orders cursor %s is in the future: reading every order again", account_id,
                    cursor[:40])
        return None
    return iso(moment - overlap)


def _in_pages(documents, size, stop, result):
    """The documents in lists of `size` (the last one shorter). After a page has been handled, a set `stop` ends
    the walk there (the result then says it stopped early)."""
    page: list[Document] = []
    for document in documents:
        page.append(document)
        if len(page) == size:
            yield page
            page = []
            if stop is not None and stop.is_set():
                result.complete = False
                return
    yield page


def poll_orders(store, client, account_id, result, *, page_size=100, stop=None, overlap=OVERLAP, skips=None,
                now=None):
    """Store the shop's new and changed orders, page by page, each page before the cursor moves past it."""
    now = now or datetime.now(timezone.utc)
    skips = skips or _Skips(store, account_id, result)
    walk = client.walk_orders(updated_since=_start(store, account_id, overlap, now), page_size=page_size,
                              on_malformed=skips)
    for page in _in_pages(walk, page_size, stop, result):
        newest = []
        for document in page:
            updated = updated_time(document.body["data"])
            if updated is not None and updated > now + FUTURE:
                log.warning("shop %s: order %s is dated %s, in the future: stored, but polling does not move past "
                            "it", account_id, document.id[:40], iso(updated))
            elif updated is not None:
                newest.append(updated)
        result.orders_stored += _store_rows(store, changed_events(store, account_id, "order", page,
                                                                  client.order_document))
        result.orders_read += len(page)
        if newest:
            store.cursors.set(account_id, "orders", iso(max(newest)))


def poll_products(store, client, account_id, result, *, page_size=100, stop=None, skips=None):
    """Store the shop's new and changed products; after a complete walk, the deletions confirmed."""
    skips = skips or _Skips(store, account_id, result)
    seen: set[str] = set()
    for page in _in_pages(client.walk_products(page_size, skips), page_size, stop, result):
        seen |= {storable_text(document.id) for document in page}
        result.products_stored += _store_rows(store, changed_events(store, account_id, "product", page,
                                                                    client.product_document))
        result.products_read += len(page)
    if not result.complete:
        return
    seen |= {storable_text(where) for kind, where in skips.ids if kind == "product"}
    _delete_missing(store, client, account_id, result, seen)


def _delete_missing(store, client, account_id, result, seen):
    """After a complete walk: the products the store knows that it did not find are deleted when the API confirms
    it (404) or when the walk before missed them too; those that answer are stored as they are."""
    missing = sorted(store.live_resources(account_id, PRODUCT_TYPES, "product.deleted") - seen)
    if not missing:
        store.cursors.set(account_id, "products_missing", "[]")
        return
    if not seen:
        log.warning("shop %s: the API listed no product at all: none of the %d known is taken as deleted",
                    account_id, len(missing))
        return
    try:
        before = set(json.loads(store.cursors.get(account_id, "products_missing") or "[]"))
    except ValueError:
        before = set()
    gone, still, found = [], [], []
    for product_id in missing:
        try:
            found.append(client.product_document(product_id))
        except Stopped:
            raise
        except ApiError as error:
            if error.status == 404 or product_id in before:
                gone.append(product_id)
            else:
                still.append(product_id)
    result.products_stored += _store_rows(store, changed_events(store, account_id, "product", found,
                                                                client.product_document))
    result.products_deleted = _store_rows(store, [_event(account_id, "product.deleted", {"id": product_id})
                                                  for product_id in gone])
    store.cursors.set(account_id, "products_missing", json.dumps(still))


def poll_shop(store, shop, *, page_size=100, stop=None, client=None, overlap=OVERLAP):
    """Poll one connected shop (`shops.Shop`) into the store; a `PollResult`. `overlap`: how far before the cursor
    the orders walk starts (for clocks and late commits on the API's side). Setting `stop` ends the poll within
    about a second, keeping what was stored."""
    result = PollResult(shop.account_id)
    store.cursors.remember_shop(shop.account_id, shop.store_name)
    own = client is None
    client = client or shop.client()
    if stop is not None:
        client.stop = stop
    skips = _Skips(store, shop.account_id, result)
    try:
        poll_orders(store, client, shop.account_id, result, page_size=page_size, stop=stop, overlap=overlap,
                    skips=skips)
        if result.complete:
            poll_products(store, client, shop.account_id, result, page_size=page_size, stop=stop, skips=skips)
    except Stopped:
        result.complete = False
    finally:
        if own:
            client.close()
        store.rejection_log.flush()
    return result


__all__ = ["FUTURE", "ORDER_TYPES", "OVERLAP", "PollResult", "changed_events", "poll_orders", "poll_products",
           "poll_shop"]
