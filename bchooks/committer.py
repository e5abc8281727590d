"""Group commit: one writer thread per process commits the appends of all concurrent requests together.

A request thread hands its row to `submit()` and waits; the writer takes every row waiting at that moment, inserts
them in one transaction, commits, and only then wakes each request with its own result (or the store's error, for
a 503). Nothing is acknowledged before its commit; one commit serves many requests.
"""

import os
import queue
import threading

from .errors import BchooksError, StoreUnavailable

MAX_BATCH = 256
CHECKPOINT_EVERY = 0.5  # seconds between background WAL checkpoints


class _Slot:
    __slots__ = ("done", "result", "error")

    def __init__(self):
        self.done = threading.Event()
        self.result = self.error = None


class GroupCommitter:
    def __init__(self, store, max_batch=MAX_BATCH):
        self.store = store
        self.max_batch = max_batch
        self._queue = queue.SimpleQueue()
        self._pid = None
        self._lock = threading.Lock()
        self.batches = 0  # commits made, for tests and measurement

    def __repr__(self):
        return f"GroupCommitter({self.store!r})"

    def _ensure_writer(self):
        if self._pid != os.getpid():  # threads do not survive fork: each process starts its own writer
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(target=self._run, name="bchooks-writer", daemon=True).start()
                    threading.Thread(target=self._checkpoint, name="bchooks-checkpoint", daemon=True).start()
                    self._pid = os.getpid()

    def _checkpoint(self):
        """Copy the write-ahead log into the database in the background (PASSIVE: never blocks writers), so that
        commits on the request path never pay for it; the writer connection's auto-checkpoint is off."""
        import sqlite3
        import time
        while True:
            time.sleep(CHECKPOINT_EVERY)
            try:
                conn = sqlite3.connect(self.store.path, timeout=1)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    conn.close()
            except sqlite3.Error:
                pass  # the next round tries again; a failing store shows up in the writes themselves

    def submit(self, row):
        """Append one event row; returns its `Appended` once committed, or raises the store's error."""
        self._ensure_writer()
        slot = _Slot()
        self._queue.put((row, slot))
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run(self):
        pending = self._queue
        while True:
            batch = [pending.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.store.append_rows([row for row, _ in batch])
                self.batches += 1
                for (_, slot), result in zip(batch, results):
                    slot.result = result
            except BchooksError as error:
                for _, slot in batch:
                    slot.error = error
            except BaseException as error:  # never leave a request waiting forever
                for _, slot in batch:
                    slot.error = StoreUnavailable(f"the event store failed: {type(error).__name__}")
            finally:
                for _, slot in batch:
                    slot.done.set()
