"""The event store: every verified event byte for byte, with the tables the other parts keep beside it.

The one home of every query: nothing outside this package writes SQL or opens a database. `interface.Store` is the
narrow interface an engine offers; `sqlite.EventStore` is the embedded engine (one file, WAL mode).

    schema.py           versioned migrations
    sqlite.py           the engine: connections, transactions, events
    sql.py              the SQL its parts share: event rows and filters, connections, errors
    files.py            the writers' lock (with a deadline) and the check that the open files are still in place
    runs.py             handler runs: enqueue, claim, renew, finish, replay, failures
    reconciliations.py  reconciliation runs
    cursors.py          polling cursors, per shop and resource, and the shops' names
    rejections.py       rejected requests, counted with a bounded sample
"""

from .interface import Appended, Store, StoredEvent
from .schema import MIGRATIONS, SCHEMA_VERSION, migrate
from .sql import event_filter, event_row, insert_rows, scan_order_events
from .sqlite import EventStore

__all__ = ["Appended", "EventStore", "MIGRATIONS", "SCHEMA_VERSION", "Store", "StoredEvent", "event_filter",
           "event_row", "insert_rows", "migrate", "scan_order_events"]
