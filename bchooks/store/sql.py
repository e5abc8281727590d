"""The SQL the SQLite engine's parts share: event rows, filters, inserting a batch, opening connections that never
create a deleted file, and turning SQLite's errors into the store's."""

import hashlib
import logging
import os
import sqlite3
from urllib.parse import quote

from ..clock import now_iso
from ..errors import MissingStore, StoreUnavailable, UnstorableEvent
from .interface import Appended

log = logging.getLogger("bchooks.store")

_INSERT = ("INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256, signature_header,"
           " remote_addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (body_sha256) DO NOTHING RETURNING id")
_EVENT_COLUMNS = "id, received_at, type, account_id, resource_id, body, body_sha256, signature_header, remote_addr"


def event_filter(*, type=None, since=None):
    """(SQL conditions, parameters) selecting events of one `type` (or a tuple of types) received at or after
    `since` (ISO text); no conditions when neither is given."""
    where, params = [], []
    if isinstance(type, (tuple, list)):
        where.append(f"type IN ({','.join('?' * len(type))})")
        params.extend(type)
    elif type:
        where.append("type = ?")
        params.append(type)
    if since:
        where.append("received_at >= ?")
        params.append(since)
    return where, params


def event_row(body, envelope, *, signature_header=None, remote_addr=None, received_at=None):
    """The `events` columns after `id` for a verified body and its envelope."""
    return (received_at or now_iso(), envelope.type, envelope.account_id, envelope.resource_id, body,
            hashlib.sha256(body).hexdigest(), signature_header, remote_addr)


def insert_rows(conn, rows):
    """Insert event rows (the `events` columns after `id`) inside the caller's transaction; one `Appended` per
    row, a body already stored being a duplicate of that row. A row that cannot be written (its values, not the
    database) gets an `UnstorableEvent` in its place and the others go on: one bad event never fails its batch.
    A database that cannot be written raises for all of them."""
    results = []
    for row in rows:
        try:
            inserted = conn.execute(_INSERT, row).fetchall()
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as error:  # (UnicodeEncodeError: ValueError)
            log.error("an event could not be stored (%s: %s); its sender gets 422", type(error).__name__, error)
            results.append(UnstorableEvent(f"the event cannot be stored ({type(error).__name__})"))
            continue
        if inserted:
            results.append(Appended(inserted[0][0], False))
        else:
            found = conn.execute("SELECT id FROM events WHERE body_sha256 = ?", (row[5],)).fetchone()
            results.append(Appended(found[0], True))
    return results


def _unavailable(error, path):
    text = str(error)
    if "locked" in text or "busy" in text:
        reason = "the database is locked by another writer"
    elif "readonly" in text or "read-only" in text:
        reason = "the database file is read-only"
    elif "full" in text:
        reason = "the disk or database is full"
    else:
        reason = f"the database cannot be written ({text})"
    return StoreUnavailable(f"{reason}: {path}")


def _in_memory(path):
    return path in ("", ":memory:") or path.startswith("file::memory:")


def _connect(path, timeout, create):
    """A connection to `path`; never creates the file unless `create` (a deleted database is not silently replaced
    by an empty one)."""
    if _in_memory(path):
        return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    if not create and not os.path.exists(path):
        raise MissingStore(f"no event store at {os.path.abspath(path)} (check --db or BCHOOKS_DB)")
    return sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode={'rwc' if create else 'rw'}", uri=True,
                           timeout=timeout, isolation_level=None, check_same_thread=False)


def scan_order_events(path, first_id, last_id, types):
    """(id, account_id, body, body_sha256, received_at) of the events of `types` with first_id <= id <= last_id, in
    id order, read through a read-only connection of its own and SQLite's memory map (bodies read in place: a third
    less time than copies). For analysis worker processes, which get a path, not a store."""
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=30)
    try:
        conn.execute(f"PRAGMA mmap_size = {2 ** 31}")
        marks = ",".join("?" * len(types))
        yield from conn.execute(f"SELECT id, account_id, body, body_sha256, received_at FROM events"
                                f" WHERE id BETWEEN ? AND ? AND +type IN ({marks}) ORDER BY id",  # (+: by id, no sort)
                                (first_id, last_id, *types))
    finally:
        conn.close()
