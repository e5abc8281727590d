"""The SQLite event store: every verified event, byte for byte, and the requests it rejected (without bodies).

The `events` table is a public contract that users query directly. The file runs in WAL mode with a busy
timeout; `synchronous=NORMAL` survives process crashes, `FULL` also power loss. The schema is versioned with
`PRAGMA user_version` (`schema.py`); opening an older file upgrades it in place.

Each process has one write connection (re-opened after `fork`, and after a failed write so that a fixed cause is
noticed), guarded by a lock so threads may share the store, and one read connection: in WAL mode reads never wait
for writers, so a health check answers while a writer holds the lock. Writers take turns through the writers' lock
(`files.py`), never waiting longer than the busy timeout, and check before every write that the database and its
log are still the files at the configured path.
"""

import hashlib
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager, nullcontext
from typing import Any

from ..clock import now_iso
from ..errors import StoreError, StoreUnavailable
from .alerts import AlertLog
from .archives import ArchiveLog
from .cursors import Cursors
from .forwarding import ForwardingPositions
from .leases import PollLeases
from .files import FileIdentity, WriterLock, writers_turn
from .events import EventQueries
from .sql import _INSERT, _connect, _in_memory, _unavailable, insert_rows
from .reconciliations import Reconciliations
from .polls import PollOutcomes
from .shipments import Shipments
from .rejections import RejectionLog
from .runs import HandlerRuns
from .schema import migrate

log = logging.getLogger("bchooks.store")

LOG_KEPT = 128 * 2 ** 20  # bytes of log file kept as the log starts over: twice the committer's WAL_LIMIT
FEW_FRAMES = 256  # frames committed during a catch-up pass few enough to copy with the writers held back
CATCH_UP_PASSES = 8  # catch-up passes before a held checkpoint waits for the writers' turn
TURN_TRY = 0.01  # seconds a held checkpoint waits for the writers' turn after a pass that caught up


class EventStore(EventQueries):
    """The SQLite engine of the store (see `interface.Store` for what every engine offers)."""

    engine = "sqlite"
    skip_locked = ""  # (SQLite has one writer at a time: a claim's rows need no row locks)

    def __init__(self, path: str | os.PathLike = "bchooks.db", *, synchronous: str = "NORMAL",
                 busy_timeout: float = 5.0, max_mb: int = 0, create: bool = True, auto_checkpoint: bool = True) -> None:
        """Open (`create`: or create) the store at `path`; `StoreError` when it is missing (with `create=False`),
        not a bchooks store, or of a newer schema. `auto_checkpoint=False` leaves WAL checkpoints to the caller
        (`checkpoint()`; the receiver's group committer runs them on a background thread)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = str(path)
        self.source = self.path  # (what `order_rows_at` opens again in another process)
        self.synchronous = synchronous
        self.busy_timeout = float(busy_timeout)
        self.max_mb = int(max_mb)
        self._memory = _in_memory(self.path)
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._conn = self._reader = self._writer = self._identity = None
        self._pid = self._reader_pid = None
        self.auto_checkpoint = auto_checkpoint
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
        with self._lock:
            self._connection(create=create)

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> "EventStore":
        return cls(config.db, synchronous=config.synchronous, busy_timeout=config.busy_timeout,
                   max_mb=config.max_db_mb, **kwargs)

    def __repr__(self):
        return f"EventStore({self.path!r})"

    def close(self) -> None:
        if self._pid == os.getpid():
            self.rejection_log.flush()
        with self._lock:
            self._close_connections()

    def _close_connections(self):
        if self._pid == os.getpid():
            if self._conn is not None:
                self._conn.close()
            if self._writer is not None:
                self._writer.close()
        with self._read_lock:
            if self._reader is not None and self._reader_pid == os.getpid():
                self._reader.close()
            self._reader = None
        self._conn = self._writer = None

    def _connection(self, create=False):
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # a connection inherited through fork must never be used
        try:
            conn = _connect(self.path, self.busy_timeout, create)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the event store {self.path}: {error}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:  # (a new file: set before
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # WAL writes its header; archives give space back)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and mode.lower() != "memory":
                raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute(f"PRAGMA journal_size_limit = {LOG_KEPT}")  # the log's file, cut back as it starts over
            migrate(conn)
            if not self.auto_checkpoint:  # the caller checkpoints, off the request path
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            if self.max_mb:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {self.max_mb * 2 ** 20 // page_size}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # (a read opens the log: its inode)
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
        if not self._memory:
            self._writer = WriterLock(self.path, self.busy_timeout)
            self._identity = FileIdentity.of(self.path)
        return conn

    def _read_connection(self):
        """This process's read connection (the write connection for an in-memory database). Opened without the
        writers' lock: the file was opened (and migrated) by the write connection when the store was."""
        if self._memory:
            with self._lock:
                return self._connection()
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader = None  # (one inherited through fork is never used)
            try:
                reader = _connect(self.path, self.busy_timeout, False)
            except sqlite3.Error as error:
                raise _unavailable(error, self.path) from None
            reader.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._reader, self._reader_pid = reader, os.getpid()
        return self._reader

    # -- the files under the store
    def file_problem(self):
        """None while the open database and log are the files at the configured path, else one sentence."""
        if self._identity is None:
            return None
        changed = self._identity.changed()
        if changed == "database":
            return (f"the database file {os.path.abspath(self.path)} was deleted or replaced while open: restore it "
                    "(nothing is acknowledged until it is back)")
        if changed == "wal":
            return f"the write-ahead log {os.path.abspath(self.path)}-wal was deleted or replaced while open"
        return None

    def _check_files(self, conn):
        """Inside the writers' turn, before a write: go on with the files at the configured path, or refuse.

        A deleted log: the committed events it still holds (this connection reads it) are copied into the database
        by a checkpoint, and the connections are opened again on a new log. A replaced database (a restored copy):
        opened again. A deleted database: `StoreUnavailable` until a file is back at the path."""
        changed = self._identity.changed() if self._identity is not None else None
        if changed is None:
            return conn
        problem = self.file_problem()
        if changed == "database" and not os.path.exists(self.path):
            log.error("%s: answering 503", problem)
            raise StoreUnavailable(problem)
        if changed == "wal":
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                raise StoreUnavailable(f"{problem}; its events are being copied into the database once readers "
                                       "finish")
            log.warning("%s: its committed events were copied into the database; going on with a new log", problem)
        else:
            log.warning("%s: opening the file now at that path", problem)
        self._conn.close()  # (the caller holds and then releases the old writers' lock)
        self._conn = None
        with self._read_lock:
            if self._reader is not None and self._reader_pid == os.getpid():
                self._reader.close()
            self._reader = None
        return self._connection()

    def check_files(self, timeout=None):
        """Recover from a deleted log or a restored database now if needed (the committer's background thread
        calls this twice a second, the health check with `timeout=0`: never waiting for a writer's turn); the
        problem that remains, or None."""
        if self._identity is None or self._identity.changed() is None:
            return None
        try:
            with self.transaction(timeout=timeout):
                pass
        except StoreUnavailable as error:
            return str(error)
        return self.file_problem()

    @contextmanager
    def writers_turn(self):
        """Hold the writers' lock on a handle of its own (so it also excludes this process's writes)."""
        if self._memory:
            yield
            return
        with writers_turn(self.path, self.busy_timeout):
            yield

    def checkpoint(self, hold_writers=False):
        """Copy the write-ahead log into the database (PASSIVE: writers go on), on a connection of its own; with
        `hold_writers`, to its end, so that the next commit starts it over (`_finish`: the writers are held back
        only for the last few frames). The log's length afterwards, in bytes: what it holds since it last started
        over (its file keeps the length it once reached until a commit cuts it back to LOG_KEPT)."""
        if self._memory:
            return 0
        try:
            conn = _connect(self.path, 1.0, False)
            try:
                frames = self._finish(conn) if hold_writers else self._copy(conn)[1]
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise _unavailable(error, self.path) from None
        return 32 + frames * (24 + page_size) if frames > 0 else 0  # the log's header, then each frame's

    @staticmethod
    def _copy(conn):
        """One PASSIVE checkpoint: (busy, the log's frames, frames copied); busy when another connection is
        checkpointing (frames then -1)."""
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def _finish(self, conn):
        """Copy the log to its end, holding the writers back only for what the last pass left: passes while
        writers go on until one found few frames (FEW_FRAMES) committed during the one before, and after each
        such pass a try for the writers' turn that waits TURN_TRY seconds at most; the last pass runs in the
        turn (its fsyncs included). At most CATCH_UP_PASSES passes, then the turn is waited for (the busy
        timeout). The log's frames afterwards. (Waiting for the turn at once let frames pile up behind the wait,
        and the held pass copied all a slow pass had left: 20-146 ms with writers held back.)"""
        previous = -1
        for n in range(CATCH_UP_PASSES):
            busy, frames, _ = self._copy(conn)
            if busy or frames < previous:  # another connection is checkpointing, or the log started over meanwhile
                return frames
            if n and frames - previous <= FEW_FRAMES:
                try:
                    with writers_turn(self.path, TURN_TRY):
                        return self._copy(conn)[1]
                except StoreUnavailable:
                    pass  # a commit is under way: one more pass, then try again
            previous = frames
        with self.writers_turn():
            return self._copy(conn)[1]

    # -- transactions and reads
    @contextmanager
    def transaction(self, timeout=None, *, appending=False):
        """A write transaction (BEGIN IMMEDIATE ... COMMIT) on this process's connection, writers in turn (so
        events inserted, `appending` or not, commit in id order); `StoreUnavailable` when the database cannot be
        written, or the turn did not come within `timeout` seconds (default: the busy timeout)."""
        timeout = self.busy_timeout if timeout is None else timeout
        if not self._lock.acquire(timeout=timeout):
            raise StoreUnavailable(f"the database is locked by another writer: no turn within {timeout:g} s: "
                                   f"{self.path}")
        try:
            conn = self._connection()
            writer = self._writer
            if writer is not None:
                writer.timeout = timeout
                writer.acquire()
            try:
                conn = self._check_files(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as error:
                self._close_connections()
                raise _unavailable(error, self.path) from None
            finally:
                if writer is not None:
                    writer.release()
                    if writer is not self._writer:
                        writer.close()
        finally:
            self._lock.release()

    def _query(self, sql, params=()):
        """(column names, rows) of a read, on the read connection: it never waits for a writer's turn."""
        with self._read_lock:
            try:
                cursor = self._read_connection().execute(sql, params)
                return [column[0] for column in cursor.description or ()], cursor.fetchall()
            except sqlite3.OperationalError as error:
                if not self._memory and self._reader is not None:
                    self._reader.close()
                self._reader = None
                raise _unavailable(error, self.path) from None

    def append_rows(self, rows):
        """Insert event rows (`event_row`) in one transaction; one `Appended` (or, for a row that cannot be
        stored, an `UnstorableEvent`) per row."""
        with self.transaction() as conn:
            return insert_rows(conn, rows)

    def append_when_ready(self, take):
        """Insert the rows `take()` returns, calling it only once this process's turn to write has begun (group
        commit: rows queued while waiting join the transaction); (rows, one result per row as `append_rows`)."""
        with self.transaction() as conn:
            rows = take()
            return rows, insert_rows(conn, rows)

    def append_many(self, items, *, received_at=None):
        """Store many (body, envelope) pairs in one transaction (imports, benchmarks); returns how many were new."""
        received_at = received_at or now_iso()
        rows = [(received_at, envelope.type, envelope.account_id, envelope.resource_id, body,
                 hashlib.sha256(body).hexdigest(), None, None) for body, envelope in items]
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT.removesuffix(" RETURNING id"), rows)
            return conn.total_changes - before

    def wait_for_events(self, timeout: float, stop: Any = None) -> bool:
        """Sleep `timeout` seconds, or until `stop` (a threading.Event) is set: SQLite has no notifications, so
        workers poll; False."""
        (stop or threading.Event()).wait(timeout)
        return False

    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

