"""Reconciliation: page the orders API, compare with the stored state of each order, and store every missing or
stale order as an `order.reconciled` event whose source is the API.

Analysis and handlers see those events like any other. Running it again records nothing new: an order whose
API copy is already stored (byte for byte) or older than the stored state is left alone.
"""

import json
from dataclasses import dataclass

import pandas as pd

from .client import BigCartelClient
from ..clock import parse_iso
from ..store import Store
from ..errors import BchooksError
from ..analysis.cache import Projection
from ..wire import RECONCILED as EVENT_TYPE
from ..wire import dumps, envelope_from


@dataclass(frozen=True)
class Reconciliation:
    checked: int
    missing: int
    stale: int

    def __str__(self):
        return f"checked {self.checked} orders: {self.missing} missing, {self.stale} stale, all now stored"


def reconcile(store: Store, client: BigCartelClient, since: str | None = None) -> Reconciliation:
    """Compare the API's orders (updated at or after `since`, ISO text) with the store; record what differs."""
    run = store.reconciliations.start(since)
    try:
        orders = Projection(store).frames()[0]
        mine = orders["account_id"].isna() | (orders["account_id"] == str(client.account_id))  # (this shop's)
        known = dict(zip(orders["order_id"][mine].astype(str), orders["updated_at"][mine]))
        checked = missing = stale = 0
        for document in client.iter_orders(updated_since=since):
            checked += 1
            order_id = str(document["data"]["id"])
            updated = document["data"].get("attributes", {}).get("updated_at")
            current = known.get(order_id)
            if current is None:
                missing += 1
            elif updated and pd.Timestamp(parse_iso(updated)) > current:
                stale += 1
            else:
                continue
            body = dumps({"account_id": str(client.account_id), "type": EVENT_TYPE, "source": "api",
                          "payload": document})
            store.append(body, envelope_from(json.loads(body)), remote_addr="api")
    except BchooksError as error:
        store.reconciliations.fail(run, error)
        raise
    store.reconciliations.finish(run, checked=checked, missing=missing, stale=stale)
    return Reconciliation(checked, missing, stale)


def last_reconciliation(store: Store) -> dict | None:
    """The newest reconciliation run as a dict, or None."""
    return store.reconciliations.last()
