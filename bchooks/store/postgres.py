"""The PostgreSQL engine of the store: the same tables, queries and guarantees as SQLite, for several hosts.

Selected by a `postgresql://` (or `postgres://`) URL in `BCHOOKS_DB`. Each process has a psycopg connection pool
(`psycopg_pool`, opened after `fork`), of `BCHOOKS_POOL_SIZE` connections in autocommit mode: a read is one
statement, a single-statement write the same (`write_one`), and the rest a transaction (`transaction()`).

Events become visible in id order, as on SQLite: every transaction that inserts events first takes one
transaction-scoped advisory lock (`EVENT_ORDER_LOCK`), so ids are drawn and committed one transaction at a time.
Without it, two receivers' inserts draw ids 1 and 2 and may commit 2 first; a reader keeping the last id it saw
(the handlers' watermark, the analysis cache, `iter_events(after_id=...)`) would then pass 1 for ever. A batch of
events is one pipelined round trip (BEGIN, the lock, a multi-row INSERT, COMMIT); the lock is held from the ids'
drawing to the commit, about one WAL flush, while each receiver's group commit gathers what arrives meanwhile.
The unique `body_sha256` decides duplicates, also between hosts. Workers claim runs with `FOR UPDATE SKIP
LOCKED`, and a process that stored events NOTIFYs `bchooks_events` (from a thread of its own, at most every
50 ms, after the commit: a NOTIFY inside the inserting transaction would lengthen the events' turn by
PostgreSQL's notification lock), so that waiting workers wake at once.

Every failure of the database to take a write (the server down or restarting, a read-only or full server, a lock
held past the busy timeout, no connection free within it) is `StoreUnavailable`, a 503: the pool reconnects by
itself when the server is back. The URL's password never appears in `path`, a `repr` or a message.
"""

import logging
import os
import threading
import time
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from ..config import is_database_url
from ..errors import MissingStore, StoreError, StoreUnavailable, UnstorableEvent
from .alerts import AlertLog
from .archives import ArchiveLog
from .cursors import Cursors
from .forwarding import ForwardingPositions
from .leases import PollLeases
from .events import EventQueries
from .interface import Appended
from .reconciliations import Reconciliations
from .polls import PollOutcomes
from .shipments import Shipments
from .rejections import RejectionLog
from .runs import HandlerRuns
from ..secrecy import display_url, printable, redact, remember_password_of
from .schema import migrate_postgres

log = logging.getLogger("bchooks.store")

CHANNEL = "bchooks_events"  # the NOTIFY channel of new events
NOTIFY_EVERY = 0.05  # seconds: the least time between two NOTIFYs of one process
#: the advisory lock every transaction inserting events takes first (ids committed in order; any number will do,
#: other than the migrations' lock in schema.py). The events' id sequence must keep its cache of 1 (the default):
#: a session caching ids would draw them ahead of its turn.
EVENT_ORDER_LOCK = 7326513
#: seconds a session may sit in a transaction between statements before the server ends it: a receiver host lost
#: (or frozen) in the middle of a commit holds the events' turn that long at most (others answer 503 meanwhile).
#: Every transaction of the kit sends its statements back to back.
IDLE_IN_TRANSACTION = 10
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, pg_errors.ReadOnlySqlTransaction,
                pg_errors.InsufficientPrivilege)


def _reason(error):
    """One line saying why the database did not take the work, without the server's connection details or a
    password (libpq quotes a URL's password it cannot parse)."""
    text = printable(redact((str(error).strip().splitlines() or [type(error).__name__])[0]), 300)
    if isinstance(error, pg_errors.LockNotAvailable):
        return "a lock is held by another transaction past the busy timeout"
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return "the database is read-only"
    if isinstance(error, (pg_errors.DiskFull, pg_errors.OutOfMemory)):
        return "the database server is out of space"
    if isinstance(error, pg_errors.QueryCanceled):
        return "the database did not answer within the time allowed"
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return f"the database user is not allowed to ({text})"
    if isinstance(error, pg_errors.ConnectionTimeout) or "timeout expired" in text:
        return "the database server did not answer in time (connection timed out; is it overloaded or frozen?)"
    return f"the database cannot be reached ({text})"


class _LibraryNoise(logging.Filter):
    """Folds the database libraries' own warnings into the kit's lines: the pool's "error connecting" (one a
    reconnection attempt, with libpq's two-line text), a pipeline's "error ignored terminating" and the like
    repeat what the store reports as `StoreUnavailable` (the receiver's 503, the worker's one line). They are
    dropped; anything at ERROR or above is kept as one line, redacted."""

    def filter(self, record):
        if record.levelno < logging.ERROR:
            return False
        record.msg, record.args = printable(redact(record.getMessage()), 300), ()
        record.exc_info = record.exc_text = None
        return True


for _name in ("psycopg", "psycopg.pool", "psycopg_pool.sched"):
    logging.getLogger(_name).addFilter(_LibraryNoise())


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


def _take_events_turn(raw):
    """Wait (up to the lock timeout) for the transactions inserting events before this one to commit."""
    raw.execute("SELECT pg_advisory_xact_lock(%s)", (EVENT_ORDER_LOCK,))


def _check_when_idle(conn):
    """The pool's check of a connection it hands out: a round trip only for one idle a while (a server restarted
    meanwhile is noticed before use); one used a moment ago is handed out as it is (no round trip per commit)."""
    now = time.monotonic()
    if now - getattr(conn, "_bchooks_used", 0.0) > 2.0:
        ConnectionPool.check_connection(conn)
    conn._bchooks_used = now


class _Notifier:
    """Sends `NOTIFY bchooks_events` soon after `poke()`, on a connection and a thread of its own (one a process),
    at most every NOTIFY_EVERY seconds; `close()` sends what is pending first. Best effort: workers poll anyway."""

    def __init__(self, store):
        self.store = store
        self._wake = threading.Event()
        self._pid = None
        self._thread = None
        self._pending = self._closed = False

    def poke(self):
        if self._pid != os.getpid():  # (threads do not survive fork: each process starts its own)
            self._pid, self._pending, self._closed = os.getpid(), False, False
            self._thread = threading.Thread(target=self._run, name="bchooks-notify", daemon=True)
            self._thread.start()
        self._pending = True
        self._wake.set()

    def _run(self):
        conn = None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._pending:
                self._pending = False
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.store._url, **self.store._options())
                    conn.execute(f"NOTIFY {CHANNEL}")
                except psycopg.Error:
                    if conn is not None:
                        conn.close()
                    conn = None
            if self._closed:
                if conn is not None:
                    conn.close()
                return
            time.sleep(NOTIFY_EVERY)

    def close(self):
        if self._thread is not None and self._pid == os.getpid():
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=2 * NOTIFY_EVERY + self.store.busy_timeout)
        self._thread = self._pid = None


class PostgresStore(EventQueries):
    """The PostgreSQL engine of the store (see `interface.Store` for what every engine offers)."""

    engine = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"  # workers on several hosts claim different runs without waiting

    def __init__(self, url: str, *, busy_timeout: float = 5.0, pool_size: int = 10, create: bool = True,
                 **_sqlite_only) -> None:
        """Open the store in the database at `url`, creating its tables (`create`) or, for a read, refusing a
        database without them (`MissingStore`)."""
        if not isinstance(url, str) or not is_database_url(url):
            raise StoreError("a PostgreSQL store needs a postgresql:// URL")
        remember_password_of(url)  # (its password is redacted from every message, whatever produced it)
        self._url = url
        self.path = display_url(url)
        self.source = url  # (what `order_rows_at` opens again in another process; with its password: never shown)
        self.busy_timeout = float(busy_timeout)
        self.pool_size = max(1, int(pool_size))
        self._pool = None
        self._pid = None
        self._pool_lock = threading.Lock()
        self._listener: psycopg.Connection | None = None
        self._listener_pid: int | None = None
        self._notifier = _Notifier(self)
        self.rejection_log = RejectionLog(self)
        self.runs = HandlerRuns(self)
        self.reconciliations = Reconciliations(self)
        self.cursors = Cursors(self)
        self.forwarding = ForwardingPositions(self)
        self.polls = PollOutcomes(self)
        self.alerts = AlertLog(self)
        self.archives = ArchiveLog(self)
        self.leases = PollLeases(self)
        self.shipments = Shipments(self)
        self._prepare(create)

    @classmethod
    def from_config(cls, config, **kwargs) -> "PostgresStore":
        return cls(config.db, busy_timeout=config.busy_timeout, pool_size=config.pool_size, **kwargs)

    def __repr__(self):
        return f"PostgresStore({self.path!r})"

    def _options(self):
        milliseconds = max(1, int(self.busy_timeout * 1000))
        return {"autocommit": True, "connect_timeout": max(2, int(self.busy_timeout + 0.999)),
                "options": f"-c lock_timeout={milliseconds} -c statement_timeout=60000"
                           f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION * 1000}"}

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
                                                check=_check_when_idle, name="bchooks",
                                                reconnect_timeout=24 * 3600)
                    self._pool.open(wait=False)
                    self._pid = os.getpid()
        return self._pool

    def close(self) -> None:
        """Write what is pending (rejections counted, a NOTIFY) and close this process's connections (never those
        a parent process opened before a fork: closing them would end the parent's sessions)."""
        self.rejection_log.flush()
        self._notifier.close()
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        if self._listener is not None and self._listener_pid == os.getpid():
            self._listener.close()
        self._pool = self._listener = None

    @contextmanager
    def _borrowed(self, timeout):
        """A connection of the pool within `timeout` seconds, the database's failures as `StoreUnavailable`."""
        try:
            with self._connections().connection(timeout=timeout) as raw:
                yield raw
        except PoolTimeout:
            raise StoreUnavailable(f"no database connection within {timeout:g} s (the server is down or did not "
                                   f"answer in time, or every one of the {self.pool_size} connections is busy): "
                                   f"{self.path}") from None
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{_reason(error)}: {self.path}") from None
        except psycopg.Error as error:  # (anything else the server refused: one sentence, never a traceback)
            raise StoreError(f"the database refused the work ({_reason(error)}): {self.path}") from None

    @contextmanager
    def transaction(self, timeout=None, *, appending=False):
        """A write transaction on a pooled connection; `StoreUnavailable` when the database cannot take it. One
        that inserts events says `appending`: it takes the events' turn first (ids committed in order)."""
        with self._borrowed(self.busy_timeout if timeout is None else timeout) as raw:
            with raw.transaction():
                if appending:
                    _take_events_turn(raw)
                yield _Connection(raw)

    @contextmanager
    def _one_statement(self):
        """A pooled connection in autocommit mode: a single statement commits when it ends (one round trip)."""
        with self._borrowed(self.busy_timeout) as raw:
            yield _Connection(raw)

    def _query(self, sql, params=()):
        with self._borrowed(self.busy_timeout) as raw:
            cursor = _Connection(raw).execute(sql, params)
            return [column.name for column in cursor.description or ()], cursor.fetchall()

    # -- appending
    def append_rows(self, rows):
        """Insert event rows (`event_row`) in one statement, a transaction of its own; one `Appended` (or, for a
        row that cannot be stored, an `UnstorableEvent`) per row."""
        return self.append_when_ready(lambda: rows)[1]

    def append_when_ready(self, take):
        """Insert the rows `take()` returns once a connection is ours (group commit: rows queued while waiting
        join); (rows, one result per row). The batch is one transaction taking the events' turn, pipelined: one
        round trip. A row PostgreSQL refuses (which no verified event is known to make) gets an
        `UnstorableEvent`, and the others are stored."""
        with self._borrowed(self.busy_timeout) as raw:
            rows = take()
            conn = _Connection(raw)
            results: list = [None] * len(rows)
            good = list(range(len(rows)))
            try:
                found = self._insert_batch(conn, [rows[i] for i in good])
            except (psycopg.DataError, psycopg.IntegrityError, ValueError) as error:  # (ValueError: not UTF-8)
                log.error("a batch of events was refused (%s): storing each on its own", type(error).__name__)
                found = []
                for index in list(good):
                    try:
                        found.extend(self._insert_batch(conn, [rows[index]]))
                    except (psycopg.DataError, psycopg.IntegrityError, ValueError) as refused:
                        log.error("an event could not be stored (%s); its sender gets 422", type(refused).__name__)
                        results[index] = UnstorableEvent(f"the event cannot be stored ({type(refused).__name__})")
                        good.remove(index)
        for index, result in zip(good, found):
            results[index] = result
        if any(not result.duplicate for result in found):
            self._notifier.poke()
        return rows, results

    def _insert_batch(self, conn, rows, *, committed=True):
        """One `Appended` per row: new rows in the order given, and for a body stored before (or earlier in this
        batch) the id it has. The rows are committed on return, in a transaction of their own taking the events'
        turn (BEGIN, lock, INSERT, COMMIT pipelined: one round trip), or, not `committed`, in the caller's
        `transaction(appending=True)`."""
        if not rows:
            return []
        values = ", ".join(["(%s, %s, %s, %s, %b, %s, %s, %s)"] * len(rows))
        insert = ("INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256, signature_header,"
                  f" remote_addr) VALUES {values} ON CONFLICT (body_sha256) DO NOTHING RETURNING id, body_sha256")
        params = [value for row in rows for value in self._text_safe(row)]
        if committed:
            with conn.raw.pipeline(), conn.raw.transaction():
                _take_events_turn(conn.raw)
                cursor = conn.raw.execute(insert, params)
        else:
            cursor = conn.raw.execute(insert, params)
        inserted = cursor.fetchall()
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

    @staticmethod
    def _text_safe(row):
        """The row with NUL characters in its text values written as the six characters `\\u0000` (PostgreSQL's
        text cannot hold NUL; the body, bytea, keeps its exact bytes: the event is stored, not refused)."""
        if not any(isinstance(value, str) and "\x00" in value for value in row):
            return row
        return tuple(value.replace("\x00", "\\u0000") if isinstance(value, str) else value for value in row)

    def append_many(self, items, *, received_at=None):
        """Store many (body, envelope) pairs (imports, benchmarks), a thousand a statement; how many were new."""
        from .sql import event_row
        rows = [event_row(body, envelope, received_at=received_at) for body, envelope in items]
        new = 0
        with self.transaction(appending=True) as conn:
            for start in range(0, len(rows), 1000):
                new += sum(not r.duplicate for r in self._insert_batch(conn, rows[start:start + 1000],
                                                                        committed=False))
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
            if listener is None or listener.closed or self._listener_pid != os.getpid():
                listener = self._listener = psycopg.connect(self._url, **self._options())
                self._listener_pid = os.getpid()
                listener.execute(f"LISTEN {CHANNEL}")
            deadline = time.monotonic() + timeout
            while not (stop is not None and stop.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for _ in listener.notifies(timeout=min(left, 0.25), stop_after=1):  # (slices: a stop is seen)
                    return True
            return False
        except psycopg.Error:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            (stop or threading.Event()).wait(timeout)
            return False
