"""The PostgreSQL engine of the store: the same tables, queries and guarantees as SQLite, for several hosts.

Selected by a `postgresql://` (or `postgres://`) URL in `BCHOOKS_DB`. Each process has a psycopg connection pool
(`psycopg_pool`, opened after `fork`), of `BCHOOKS_POOL_SIZE` connections in autocommit mode: a read is one
statement, a write one transaction (`transaction()`). Receivers on several hosts write at once (no writers' lock:
PostgreSQL's row locks and the unique `body_sha256` decide), workers claim runs with `FOR UPDATE SKIP LOCKED`,
and a trigger NOTIFYs `bchooks_events` when events are stored, so that waiting workers wake at once.

Every failure of the database to take a write (the server down or restarting, a read-only or full server, a lock
held past the busy timeout, no connection free within it) is `StoreUnavailable`, a 503: the pool reconnects by
itself when the server is back. The URL's password never appears in `path`, a `repr` or a message.
"""

import logging
import os
import threading
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import MissingStore, StoreError, StoreUnavailable, UnstorableEvent
from .cursors import Cursors
from .events import EventQueries
from .interface import Appended
from .reconciliations import Reconciliations
from .rejections import RejectionLog
from .runs import HandlerRuns
from .schema import migrate_postgres

log = logging.getLogger("bchooks.store")

SCHEMES = ("postgresql://", "postgres://")
CHANNEL = "bchooks_events"  # the NOTIFY channel of new events
_SECRET_PARAMETERS = {"password", "sslpassword"}
_TEXT_COLUMNS = (0, 1, 2, 3, 5, 6, 7)  # the text values of an event row (4 is the body)
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, pg_errors.ReadOnlySqlTransaction,
                pg_errors.InsufficientPrivilege)


def is_postgres_url(text) -> bool:
    return isinstance(text, str) and text.startswith(SCHEMES)


def display_url(url: str) -> str:
    """The URL without its password (for `path`, messages and logs)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, "***" if k in _SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _reason(error):
    """One line saying why the database did not take the work, without the server's connection details."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, pg_errors.LockNotAvailable):
        return "a lock is held by another transaction past the busy timeout"
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return "the database is read-only"
    if isinstance(error, (pg_errors.DiskFull, pg_errors.OutOfMemory)):
        return "the database server is out of space"
    if isinstance(error, pg_errors.QueryCanceled):
        return "the database did not answer within the time allowed"
    return f"the database cannot be reached ({text})"


class _Connection:
    """A pooled psycopg connection speaking the store's SQL: `?` placeholders, `execute` and `executemany`."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    @staticmethod
    def _sql(sql):
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql, params=()):
        return self.raw.execute(self._sql(sql), tuple(params))

    def executemany(self, sql, rows):
        rows = list(rows)
        cursor = self.raw.cursor()
        if rows:
            cursor.executemany(self._sql(sql), rows)
        return cursor


class PostgresStore(EventQueries):
    """The PostgreSQL engine of the store (see `interface.Store` for what every engine offers)."""

    engine = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"  # workers on several hosts claim different runs without waiting

    def __init__(self, url: str, *, busy_timeout: float = 5.0, pool_size: int = 10, create: bool = True,
                 **_sqlite_only) -> None:
        """Open the store in the database at `url`, creating its tables (`create`) or, for a read, refusing a
        database without them (`MissingStore`)."""
        if not is_postgres_url(url):
            raise StoreError("a PostgreSQL store needs a postgresql:// URL")
        self._url = url
        self.path = display_url(url)
        self.source = url  # (what `order_rows_at` opens again in another process; with its password: never shown)
        self.busy_timeout = float(busy_timeout)
        self.pool_size = max(1, int(pool_size))
        self._pool = None
        self._pid = None
        self._pool_lock = threading.Lock()
        self._listener: psycopg.Connection | None = None
        self.rejection_log = RejectionLog(self)
        self.runs = HandlerRuns(self)
        self.reconciliations = Reconciliations(self)
        self.cursors = Cursors(self)
        self._prepare(create)

    @classmethod
    def from_config(cls, config, **kwargs) -> "PostgresStore":
        return cls(config.db, busy_timeout=config.busy_timeout, pool_size=config.pool_size, **kwargs)

    def __repr__(self):
        return f"PostgresStore({self.path!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _options(self):
        milliseconds = max(1, int(self.busy_timeout * 1000))
        return {"autocommit": True, "connect_timeout": max(2, int(self.busy_timeout + 0.999)),
                "options": f"-c lock_timeout={milliseconds} -c statement_timeout=60000"
                           f" -c idle_in_transaction_session_timeout=60000"}

    def _prepare(self, create):
        try:
            with psycopg.connect(self._url, **self._options()) as conn:
                if create:
                    migrate_postgres(conn)
                else:
                    found = conn.execute("SELECT to_regclass('bchooks_schema') IS NOT NULL").fetchone()[0]
                    if not found:
                        raise MissingStore(f"no event store in the database {self.path} (check --db or BCHOOKS_DB)")
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{_reason(error)}: {self.path}") from None
        except psycopg.Error as error:
            raise StoreError(f"cannot open the event store {self.path}: {_reason(error)}") from None

    def _connections(self):
        """This process's pool (a pool inherited through fork is never used: its threads did not survive)."""
        if self._pool is None or self._pid != os.getpid():
            with self._pool_lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = ConnectionPool(self._url, min_size=1, max_size=self.pool_size,
                                                kwargs=self._options(), timeout=self.busy_timeout, open=False,
                                                check=ConnectionPool.check_connection, name="bchooks",
                                                reconnect_timeout=24 * 3600)
                    self._pool.open(wait=False)
                    self._pid = os.getpid()
        return self._pool

    def close(self) -> None:
        if self._pid == os.getpid():
            self.rejection_log.flush()
            if self._pool is not None:
                self._pool.close()
            if self._listener is not None:
                self._listener.close()
        self._pool = self._listener = None

    @contextmanager
    def _borrowed(self, timeout):
        """A connection of the pool within `timeout` seconds, the database's failures as `StoreUnavailable`."""
        try:
            with self._connections().connection(timeout=timeout) as raw:
                yield raw
        except PoolTimeout:
            raise StoreUnavailable(f"no database connection within {timeout:g} s (the server is down, or every "
                                   f"one of the {self.pool_size} connections is busy): {self.path}") from None
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{_reason(error)}: {self.path}") from None

    @contextmanager
    def transaction(self, timeout=None):
        """A write transaction on a pooled connection; `StoreUnavailable` when the database cannot take it."""
        with self._borrowed(self.busy_timeout if timeout is None else timeout) as raw:
            with raw.transaction():
                yield _Connection(raw)

    def _query(self, sql, params=()):
        with self._borrowed(self.busy_timeout) as raw:
            cursor = _Connection(raw).execute(sql, params)
            return [column.name for column in cursor.description or ()], cursor.fetchall()

    # -- appending
    def _insert_rows(self, conn, rows):
        """Insert event rows in one multi-row INSERT inside the caller's transaction; one result per row as
        `sql.insert_rows`. A row PostgreSQL cannot store (a NUL character in a text value) gets an
        `UnstorableEvent`; an unexpected refusal of one row sends each row again on a savepoint of its own."""
        results = [None] * len(rows)
        good = []
        for index, row in enumerate(rows):
            if any(isinstance(row[i], str) and "\x00" in row[i] for i in _TEXT_COLUMNS):
                log.error("an event could not be stored (a NUL character in a text value); its sender gets 422")
                results[index] = UnstorableEvent("the event cannot be stored (a NUL character in its type, "
                                                 "account or resource id)")
            else:
                good.append(index)
        try:
            with conn.raw.transaction():
                found = self._insert_batch(conn, [rows[i] for i in good])
        except (psycopg.DataError, psycopg.IntegrityError, ValueError) as error:
            log.error("a batch of events was refused (%s): storing each on its own", type(error).__name__)
            found = []
            for index in good:
                try:
                    with conn.raw.transaction():
                        found.extend(self._insert_batch(conn, [rows[index]]))
                except (psycopg.DataError, psycopg.IntegrityError, ValueError) as error:
                    log.error("an event could not be stored (%s); its sender gets 422", type(error).__name__)
                    results[index] = UnstorableEvent(f"the event cannot be stored ({type(error).__name__})")
                    found.append(None)
            good = [i for i in good if results[i] is None]
            found = [f for f in found if f is not None]
        for index, result in zip(good, found):
            results[index] = result
        return results

    def _insert_batch(self, conn, rows):
        """One `Appended` per row: new rows in the order given, and for a body stored before (or earlier in this
        batch) the id it has."""
        if not rows:
            return []
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        inserted = conn.raw.execute(
            "INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256, signature_header,"
            f" remote_addr) VALUES {values} ON CONFLICT (body_sha256) DO NOTHING RETURNING id, body_sha256",
            [value for row in rows for value in row]).fetchall()
        new = {sha: event_id for event_id, sha in inserted}
        missing = [row[5] for row in rows if row[5] not in new]
        known = dict((sha, event_id) for event_id, sha in conn.raw.execute(
            "SELECT id, body_sha256 FROM events WHERE body_sha256 = ANY(%s)", (missing,)).fetchall()) if missing else {}
        results = []
        for row in rows:
            sha = row[5]
            if sha in new:
                results.append(Appended(new.pop(sha), False))
                known[sha] = results[-1].id
            else:
                results.append(Appended(known[sha], True))
        return results

    def append_many(self, items, *, received_at=None):
        """Store many (body, envelope) pairs (imports, benchmarks), a thousand a statement; how many were new."""
        from .sql import event_row
        rows = [event_row(body, envelope, received_at=received_at) for body, envelope in items]
        new = 0
        with self.transaction() as conn:
            for start in range(0, len(rows), 1000):
                new += sum(not r.duplicate for r in self._insert_batch(conn, rows[start:start + 1000]))
        return new

    # -- what the receiver's health check and group committer ask every engine
    def check_files(self, timeout=None):
        """None: the server keeps its own files."""
        return None

    def checkpoint(self, hold_writers=False):
        return 0

    def schema_version(self) -> int:
        return self._read("SELECT version FROM bchooks_schema")[0][0]

    # -- workers waiting for work
    def wait_for_events(self, timeout: float, stop=None) -> bool:
        """Wait up to `timeout` seconds for a NOTIFY that events were stored (LISTEN on a connection of its own),
        or until `stop` (a threading.Event) is set; True when one came. Best effort: a connection that fails
        sleeps the timeout and listens again next time (workers poll anyway)."""
        if stop is not None and stop.is_set():
            return False
        try:
            listener = self._listener
            if listener is None or listener.closed:
                listener = self._listener = psycopg.connect(self._url, **self._options())
                listener.execute(f"LISTEN {CHANNEL}")
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            (stop or threading.Event()).wait(timeout)
            return False
