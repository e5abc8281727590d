"""The SQLite event store: every verified event, byte for byte, and every rejected request (without its body).

The `events` table is a public contract that users query directly. The file runs in WAL mode with a busy
timeout; `synchronous=NORMAL` survives process crashes, `FULL` also power loss. The schema is versioned with
`PRAGMA user_version`; opening an older file upgrades it in place.

One connection per process (re-opened after `fork`, and after a failed write so that a fixed cause is noticed),
guarded by a lock so threads may share the store.
"""

import fcntl
import hashlib
import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from .clock import now_iso
from .errors import StoreError, StoreUnavailable

MIGRATIONS = (
    # 1: the events table (public contract)
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,          -- ISO-8601 UTC, milliseconds
        type TEXT NOT NULL,
        account_id TEXT,
        resource_id TEXT,
        body BLOB NOT NULL,                 -- the exact bytes received
        body_sha256 TEXT NOT NULL UNIQUE,
        signature_header TEXT,
        remote_addr TEXT
    );
    CREATE INDEX events_type_id ON events (type, id);
    """,
    # 2: rejected requests, never with their body
    """
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        remote_addr TEXT,
        path TEXT,
        reason TEXT NOT NULL,
        size INTEGER
    );
    """,
    # 3: durable processing: one row per (event, handler); reconciliation runs
    """
    CREATE TABLE handler_runs (
        event_id INTEGER NOT NULL,
        handler TEXT NOT NULL,
        status TEXT NOT NULL,               -- pending, running, done, failed, dead
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,      -- unix seconds
        claimed_by TEXT,
        claimed_until REAL,
        last_error TEXT,
        updated_at TEXT,
        PRIMARY KEY (event_id, handler)
    );
    CREATE INDEX handler_runs_due ON handler_runs (status, next_attempt_at);
    CREATE TABLE handler_marks (handler TEXT PRIMARY KEY, watermark INTEGER NOT NULL);
    CREATE TABLE reconciliations (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        since TEXT,
        checked INTEGER,
        missing INTEGER,
        stale INTEGER,
        error TEXT
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT = ("INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256, signature_header,"
           " remote_addr) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (body_sha256) DO NOTHING RETURNING id")
_EVENT_COLUMNS = "id, received_at, type, account_id, resource_id, body, body_sha256, signature_header, remote_addr"


@dataclass(frozen=True)
class StoredEvent:
    id: int
    received_at: str
    type: str
    account_id: str | None
    resource_id: str | None
    body: bytes
    body_sha256: str
    signature_header: str | None
    remote_addr: str | None

    def json(self):
        """The body parsed."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Appended:
    id: int
    duplicate: bool


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


def migrate(conn, target=SCHEMA_VERSION):
    """Apply the migrations after the file's `user_version`, up to `target`, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(f"the database has schema version {current}, newer than this bchooks knows "
                         f"({SCHEMA_VERSION}): upgrade bchooks")
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def insert_rows(conn, rows):
    """Insert event rows (the `events` columns after `id`) inside the caller's transaction; one `Appended` per
    row, a body already stored being a duplicate of that row."""
    results = []
    for row in rows:
        inserted = conn.execute(_INSERT, row).fetchall()
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


class EventStore:
    def __init__(self, path="bchooks.db", *, synchronous="NORMAL", busy_timeout=5.0, max_mb=0, group_commit=False):
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout = float(busy_timeout)
        self.max_mb = int(max_mb)
        self._lock = threading.RLock()
        self._conn = None
        self._pid = None
        self._writer = None  # the file whose flock orders writers across processes
        self.committer = None
        if group_commit:
            from .committer import GroupCommitter
            self.committer = GroupCommitter(self)
        with self._lock:
            self._connection()

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls(config.db, synchronous=config.synchronous, busy_timeout=config.busy_timeout,
                   max_mb=config.max_db_mb, **kwargs)

    def __repr__(self):
        return f"EventStore({self.path!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
                if self._writer is not None:
                    self._writer.close()
            self._conn = self._writer = None

    def _connection(self):
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # a connection inherited through fork must never be used
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the event store {self.path}: {error}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and mode.lower() != "memory":
                raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            migrate(conn)
            if self.committer is not None:  # the committer checkpoints in the background instead
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            if self.max_mb:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {self.max_mb * 2 ** 20 // page_size}")
        except sqlite3.OperationalError as error:
            conn.close()
            raise _unavailable(error, self.path) from None
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreError(f"{self.path} is not a bchooks event store: {error}") from None
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        try:
            self._writer = open(f"{self.path}-writer.lock", "a+b") if not self.path.startswith(":") else None
        except OSError:
            self._writer = None  # a read-only folder: SQLite's own locking still keeps writes correct
        return conn

    def _exclusive(self):
        """Take the writers' flock: bchooks processes wait their turn in the kernel, which wakes the next one the
        moment a commit ends, instead of SQLite's busy handler, which sleeps 1 ms and more between tries."""
        if self._writer is not None:
            fcntl.flock(self._writer, fcntl.LOCK_EX)

    def _release(self):
        if self._writer is not None:
            fcntl.flock(self._writer, fcntl.LOCK_UN)

    @contextmanager
    def writers_turn(self):
        """Hold the writers' flock on a file handle of its own (so it also excludes this process's writes)."""
        if self.path.startswith(":"):
            yield
            return
        with open(f"{self.path}-writer.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # closing the handle releases the lock

    def _write(self, sql, params):
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self):
        """A write transaction (BEGIN IMMEDIATE ... COMMIT) on this process's connection, writers in turn;
        `StoreUnavailable` when the database cannot be written."""
        with self._lock:
            conn = self._connection()
            self._exclusive()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as error:
                self.close()
                raise _unavailable(error, self.path) from None
            finally:
                self._release()

    def _query(self, sql, params=()):
        """(column names, rows) of a read."""
        with self._lock:
            try:
                cursor = self._connection().execute(sql, params)
                return [column[0] for column in cursor.description or ()], cursor.fetchall()
            except sqlite3.OperationalError as error:
                self.close()
                raise _unavailable(error, self.path) from None

    def _read(self, sql, params=()):
        return self._query(sql, params)[1]

    def read_dicts(self, sql, params=()):
        """The rows of a read as dicts keyed by column name."""
        names, rows = self._query(sql, params)
        return [dict(zip(names, row)) for row in rows]

    def append(self, body, envelope, *, signature_header=None, remote_addr=None, received_at=None):
        """Store a verified event; an identical body already stored is not stored again. Returns only once the
        row is committed (with group commit, together with the other appends waiting at that moment)."""
        row = ((received_at or now_iso(), envelope.type, envelope.account_id, envelope.resource_id, body,
                hashlib.sha256(body).hexdigest(), signature_header, remote_addr))
        if self.committer is not None:
            return self.committer.submit(row)
        return self.append_rows([row])[0]

    def append_rows(self, rows):
        """Insert event rows (the `events` columns after `id`) in one transaction; one `Appended` per row."""
        with self.transaction() as conn:
            return insert_rows(conn, rows)

    def append_many(self, items, *, received_at=None):
        """Store many (body, envelope) pairs in one transaction (imports, benchmarks); returns how many were new."""
        received_at = received_at or now_iso()
        rows = [(received_at, envelope.type, envelope.account_id, envelope.resource_id, body,
                 hashlib.sha256(body).hexdigest(), None, None) for body, envelope in items]
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT.removesuffix(" RETURNING id"), rows)
            return conn.total_changes - before

    def record_rejection(self, reason, *, path=None, remote_addr=None, size=None):
        self._write("INSERT INTO rejections (received_at, remote_addr, path, reason, size) VALUES (?, ?, ?, ?, ?)",
                    (now_iso(), remote_addr, path, reason, size))

    def get(self, event_id):
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return StoredEvent(*rows[0]) if rows else None

    def iter_events(self, *, type=None, since=None, after_id=0, limit=None, batch=1000):
        """Events in id order: of one `type` (or a tuple of types), received at or after `since` (ISO text),
        with id > `after_id`."""
        where, params = event_filter(type=type, since=since)
        where, params = ["id > ?", *where], [after_id, *params]
        remaining = limit
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
                              (*params, size))
            for row in rows:
                yield StoredEvent(*row)
            if len(rows) < size:
                return
            params[0] = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def latest(self, limit=20, *, type=None):
        """The newest `limit` events, newest first."""
        where, params = event_filter(type=type)
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where) or '1'}"
                          " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [StoredEvent(*row) for row in rows]

    def count(self, *, type=None):
        where, params = event_filter(type=type)
        return self._read(f"SELECT count(*) FROM events WHERE {' AND '.join(where) or '1'}", params)[0][0]

    def counts_by_type(self):
        return dict(self._read("SELECT type, count(*) FROM events GROUP BY type ORDER BY count(*) DESC, type"))

    def rejections(self, limit=20):
        """The newest rejections as dicts, newest first."""
        return self.read_dicts("SELECT id, received_at, remote_addr, path, reason, size FROM rejections"
                               " ORDER BY id DESC LIMIT ?", (limit,))

    def schema_version(self):
        return self._read("PRAGMA user_version")[0][0]
