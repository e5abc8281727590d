"""The files under an event store: the writers' lock (with a deadline) and the check that the files still open are
the files at the configured path.

bchooks processes take turns to write through an `flock` on `<db>-writer.lock`, tried again after 0.1 ms doubling to
2 ms, instead of SQLite's busy handler sleeping 1 ms and more between tries. A turn is never waited for
longer than the busy timeout: a writer stopped inside its transaction, or `flock <db>-writer.lock sleep 60` from a
shell, gives `StoreUnavailable` (a 503), not a request that hangs.

A database or write-ahead log deleted (or replaced) under a running process leaves that process writing into a
file nobody else sees: its acknowledged events would be gone at the next start. `FileIdentity` records the device
and inode of both when the connection opens, and `changed()` says what differs now.
"""

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import StoreUnavailable

_FIRST_WAIT, _LONGEST_WAIT = 0.0001, 0.002  # seconds between tries for a held lock: 0.1 ms doubling to 2 ms


def take_lock(handle, timeout, what):
    """Take an exclusive `flock` on `handle` within `timeout` seconds, else `StoreUnavailable` naming `what`."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline, wait = time.monotonic() + timeout, _FIRST_WAIT
    while True:
        time.sleep(wait)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"the database is locked by another writer: {what} was held for more "
                                       f"than {timeout:g} s") from None
        wait = min(wait * 2, _LONGEST_WAIT)


class WriterLock:
    """The writers' `flock` of one process's connection (None for in-memory databases)."""

    def __init__(self, db_path, timeout):
        self.path = f"{db_path}-writer.lock"
        self.timeout = timeout
        try:
            self._handle = open(self.path, "a+b")
        except OSError:
            self._handle = None  # a read-only folder: SQLite's own locking still keeps writes correct

    def acquire(self):
        if self._handle is not None:
            take_lock(self._handle, self.timeout, self.path)

    def release(self):
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@contextmanager
def writers_turn(db_path, timeout):
    """Hold the writers' lock on a handle of its own (so it also excludes this process's own connection)."""
    with open(f"{db_path}-writer.lock", "a+b") as handle:
        take_lock(handle, timeout, f"{db_path}-writer.lock")
        yield  # closing the handle releases the lock


def _inode(path):
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


@dataclass(frozen=True)
class FileIdentity:
    """Device and inode of a database and its write-ahead log, as a connection opened them."""

    path: str
    database: tuple | None
    wal: tuple | None

    @classmethod
    def of(cls, path):
        return cls(path, _inode(path), _inode(f"{path}-wal"))

    def changed(self):
        """None while both files are the ones opened; else "database" (deleted or replaced) or "wal"."""
        if _inode(self.path) != self.database:
            return "database"
        if self.wal is not None and _inode(f"{self.path}-wal") != self.wal:
            return "wal"
        return None
