"""The event store: every verified event byte for byte, with the tables the other parts keep beside it.

The one home of every query: nothing outside this package writes SQL or opens a database. `interface.Store` is the
narrow interface an engine offers; `sqlite.EventStore` is the embedded engine (one file, WAL mode),
`postgres.PostgresStore` the one for several hosts. `open_store(config)` picks one from the `db` setting: a
`postgresql://` URL or a file path.

    schema.py           versioned migrations
    events.py           the queries both engines share: appending and reading events
    sqlite.py           the SQLite engine: connections, transactions, the writers' turn
    postgres.py         the PostgreSQL engine: a connection pool, multi-row inserts, NOTIFY
    sql.py              the SQL the parts share: event rows and filters, SQLite's connections and errors
    transfer.py         copying a store into another, resumable (`bchooks migrate`)
    files.py            the writers' lock (with a deadline) and the check that the open files are still in place
    runs.py             handler runs: enqueue, claim, renew, finish, replay, failures
    reconciliations.py  reconciliation runs
    cursors.py          polling cursors, per shop and resource, and the shops' names
    forwarding.py       forwarding positions: how far `bchooks listen --forward-to` got, per target
    polls.py            each shop's poll outcomes: last attempt and success, failures in a row, missing orders
    alerts.py           alert incidents: active, recovered, closed; sends claimed once
    leases.py           poll leases: which poller polls which shop, so several share the shops
    rejections.py       rejected requests, counted with a bounded sample
    archives.py         archive runs: the rows an archive takes, deleting them in short transactions, restoring
    shipments.py        shipments the kit sent: one row an attempt, before and after the API's answer
"""

import os
from typing import Any

from ..config import is_database_url as is_url
from .interface import Appended, Store, StoredEvent
from .schema import MIGRATIONS, SCHEMA_VERSION, migrate
from .sql import event_filter, event_row, insert_rows, scan_order_events
from .sqlite import EventStore


def open_store(where: Any, **kwargs: Any) -> Store:
    """The store a `Config` (its `db`, busy timeout and engine settings) or a `db` value names: PostgreSQL for a
    `postgresql://` URL, else the SQLite file at that path. `create=False` for reads: a missing store is
    `MissingStore`, never created."""
    db = os.fspath(where) if isinstance(where, (str, os.PathLike)) else None
    if is_url(db if db is not None else where.db):
        from .postgres import PostgresStore
        return PostgresStore(db, **kwargs) if db is not None else PostgresStore.from_config(where, **kwargs)
    return EventStore(db, **kwargs) if db is not None else EventStore.from_config(where, **kwargs)


def order_rows_at(source: str, first_id: int, last_id: int, types: tuple):
    """`Store.order_rows` of the store at `source` (a store's `source`: a SQLite path or a PostgreSQL URL), opened
    for this read alone: for the analysis cache's worker processes, which get a source, not a store."""
    if is_url(source):
        from .postgres import PostgresStore
        store = PostgresStore(source, create=False, pool_size=1)
        try:
            yield from store.order_rows(first_id, last_id, types)
        finally:
            store.close()
    else:
        yield from scan_order_events(source, first_id, last_id, types)


__all__ = ["Appended", "EventStore", "MIGRATIONS", "SCHEMA_VERSION", "Store", "StoredEvent", "event_filter",
           "event_row", "insert_rows", "is_url", "migrate", "open_store", "order_rows_at", "scan_order_events"]
