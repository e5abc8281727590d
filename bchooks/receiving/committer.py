"""Group commit: the appends of concurrent requests share one transaction, each answered only after its commit.

`GroupCommitter(store)` wraps a store (one opened with `auto_checkpoint=False`) and offers the same `append`; the
store knows nothing of it.

No writer thread: a request queues its row; the request at the head of the queue is the leader. The leader waits
for its turn to write, then commits every row queued by then (up to `max_batch`) in one transaction, gives each
its own result or the store's error (for a 503), wakes them, and hands the lead to the next queued request. A
lone request therefore commits on its own thread with no hand-off (a thread switch costs more than a commit here),
and under load one commit serves many requests. Nothing is acknowledged before its commit.

WAL checkpoints run on a background thread, so commits on the request path never pay for copying the log into
the database (the store's connection has auto-checkpoints off); see `_checkpoint` for how the log stays bounded.
"""

import os
import threading
import time

from ..errors import BchooksError, StoreUnavailable
from ..store import event_row

MAX_BATCH = 256
CHECKPOINT_EVERY = 0.5  # seconds between background WAL checkpoints
WAL_LIMIT = 64 * 2 ** 20  # bytes of log past which a checkpoint finishes it (the writers held back a moment)


class _Slot:
    __slots__ = ("row", "done", "result", "error", "wake")

    def __init__(self, row):
        self.row = row
        self.done = False
        self.result = self.error = None
        self.wake = threading.Lock()  # held until the slot is done or its request is made the leader
        self.wake.acquire()


class GroupCommitter:
    def __init__(self, store, max_batch=MAX_BATCH, on_commit=None):
        """`on_commit(seconds, results)` is told of each commit made (the metrics: its duration, its turn's wait
        included, and one `Appended` or error per row)."""
        self.store = store
        self.max_batch = max_batch
        self.on_commit = on_commit
        self._queued = []  # the head of the queue is the leader: it is committing, or about to
        self._mutex = threading.Lock()
        self._pid = None
        self.batches = 0  # commits made, for tests and measurement

    def __repr__(self):
        return f"GroupCommitter({self.store!r})"

    def _ensure_checkpointer(self):
        if self._pid != os.getpid():  # threads do not survive fork: each process starts its own
            with self._mutex:
                if self._pid != os.getpid():
                    threading.Thread(target=self._checkpoint, name="bchooks-checkpoint", daemon=True).start()
                    self._pid = os.getpid()

    def _checkpoint(self):
        """Copy the write-ahead log into the database every CHECKPOINT_EVERY seconds, while writers go on. Under
        steady load such a checkpoint never catches up with the log's end, and SQLite starts the log over only
        once it has: the log would grow without bound (about 13 KB per event: disk, and a long recovery). So when
        the log passes WAL_LIMIT, the store copies it to its end, holding the writers back only for the few frames
        committed during its last pass (its fsyncs included), and the next commit starts the log over. WAL_LIMIT is
        half the file the SQLite store keeps (`LOG_KEPT`): under steady load the log starts over inside that file,
        so no commit extends it, nor cuts it back (a cut, on the commit that started the log over, took 7.5 ms).
        (Holding the writers back every round cost about 7% of the throughput here.)"""
        while True:
            time.sleep(CHECKPOINT_EVERY)
            try:
                self.checkpoint_round()
            except (BchooksError, OSError):
                pass  # the next round tries again; a failing store shows up in the writes themselves

    def checkpoint_round(self):
        """One round of the background checkpointer: copy the log, and past WAL_LIMIT copy it to its end."""
        self.store.check_files()  # a deleted log or a restored database, noticed without a write
        if self.store.checkpoint() > WAL_LIMIT:
            self.store.checkpoint(hold_writers=True)

    def append(self, body, envelope, *, signature_header=None, remote_addr=None, received_at=None):
        """`store.append`, sharing its commit with the appends waiting at that moment."""
        return self.submit(event_row(body, envelope, signature_header=signature_header, remote_addr=remote_addr,
                                     received_at=received_at))

    def submit(self, row):
        """Append one event row; returns its `Appended` once committed, or raises the store's error."""
        self._ensure_checkpointer()
        slot = _Slot(row)
        with self._mutex:
            self._queued.append(slot)
            leader = len(self._queued) == 1
        if not leader:
            slot.wake.acquire()  # a leader committed this row, or handed over the lead
        if not slot.done:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _take(self):
        with self._mutex:
            return self._queued[:self.max_batch]

    def _lead(self):
        """Commit the rows at the head of the queue in one transaction, answer them, hand the lead on.

        The rows are taken once the transaction has begun, that is once the other processes' commits are done:
        rows queued while this leader waited for its turn join this commit (measured with two workers under
        `bench/receiver.py`'s load: 2.7-2.8 rows per commit instead of 2.4, so fewer transactions that start with
        a page cache another process emptied; requests per second the same within this machine's noise)."""
        batch = None

        def take():
            nonlocal batch
            batch = self._take()
            return [slot.row for slot in batch]
        try:
            started = time.perf_counter()
            _, results = self.store.append_when_ready(take)
            self.batches += 1
            took = time.perf_counter() - started
            for slot, result in zip(batch, results):
                if isinstance(result, Exception):  # this row alone could not be stored
                    slot.error = result
                else:
                    slot.result = result
        except BaseException as error:  # never leave a request waiting, nor answer it 2xx
            failure = (error if isinstance(error, BchooksError)  # a store that cannot be written: a 503
                       else StoreUnavailable(f"the event store failed: {type(error).__name__}"))
            batch = batch or self._take()  # the turn itself failed: every row queued by now fails with it
            for slot in batch:
                slot.error = failure
            if not isinstance(error, Exception):
                raise
        else:
            if self.on_commit is not None:
                try:
                    self.on_commit(took, results)
                except Exception:  # (the rows are committed: a metric that fails never turns them into errors)
                    pass
        finally:
            with self._mutex:
                del self._queued[:len(batch)]
                following = self._queued[0] if self._queued else None
            for slot in batch:
                slot.done = True
                if slot is not batch[0]:
                    slot.wake.release()
            if following is not None:
                following.wake.release()  # the new head leads the next commit
