"""Rejected requests, kept bounded: counted per minute and reason, with a sample of the most recent ones.

A flood of unsigned posts must never fill the database nor compete with verified events for the writers' turn.
So a rejection is first counted in memory; at most one transaction a second (per process) writes what was
counted into `rejection_counts` and the newest rejections into `rejections`, which keeps the last `SAMPLE` rows.
A rejection after a quiet second is written at once, on the rejecting request's thread (so a person looking
right after a failed post sees it); during a flood, a background thread writes once a second. A write that fails
(a locked or full database) keeps what it held in memory, bounded, for the next one.
"""

import os
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone

from ..clock import now_iso
from ..errors import BchooksError
from .interface import StorePart

SAMPLE = 1000  # rows kept in `rejections`
PER_FLUSH = 100  # most sample rows written by one flush (the rest are only counted)
KEEP_DAYS = 30  # `rejection_counts` rows older than this are dropped
FLUSH_EVERY = 1.0  # seconds: the least time between two writes
FLUSH_TIMEOUT = 0.25  # seconds a write waits for the writers' turn; a rejection never waits for a commit longer


class RejectionLog(StorePart):
    def __init__(self, store):
        super().__init__(store)
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._counts = {}  # (minute, reason) -> [count, bytes]
        self._sample = deque(maxlen=PER_FLUSH)
        self._last = 0.0  # monotonic time of the last write
        self._wake = threading.Event()
        self._pid = None

    def record(self, reason, *, path=None, remote_addr=None, size=None):
        received_at = now_iso()
        with self._lock:
            counted = self._counts.setdefault((received_at[:16] + "Z", reason), [0, 0])
            counted[0] += 1
            counted[1] += size or 0
            self._sample.append((received_at, remote_addr, path, reason, size))
        if time.monotonic() - self._last >= FLUSH_EVERY and self.flush(wait=False):
            return
        self._ensure_flusher()
        self._wake.set()

    def flush(self, wait=True):
        """Write what was counted; False when another thread is writing (and `wait` is false) or it failed."""
        if not self._writing.acquire(blocking=wait):
            return False
        try:
            with self._lock:
                counts, self._counts = self._counts, {}
                sample = list(self._sample)
                self._sample.clear()
            if not counts:
                return True
            self._last = time.monotonic()
            try:
                self._write(counts, sample)
            except BchooksError:
                with self._lock:  # keep them for the next write (bounded: minutes x reasons, and the sample)
                    for key, (count, size) in counts.items():
                        counted = self._counts.setdefault(key, [0, 0])
                        counted[0] += count
                        counted[1] += size
                    self._sample = deque([*sample, *self._sample], maxlen=PER_FLUSH)  # (the newest kept)
                return False
            return True
        finally:
            self._writing.release()

    def _write(self, counts, sample):
        """Add `counts` ({(minute, reason): [count, bytes]}) and the `sample` rows in one transaction, keeping the
        newest `SAMPLE` sample rows and `KEEP_DAYS` days of counts."""
        with self.store.transaction(timeout=FLUSH_TIMEOUT) as conn:
            conn.executemany("INSERT INTO rejection_counts (minute, reason, count, bytes) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (minute, reason) DO UPDATE SET count = rejection_counts.count + excluded.count,"
                             " bytes = rejection_counts.bytes + excluded.bytes",
                             [(minute, reason, count, size) for (minute, reason), (count, size) in counts.items()])
            conn.executemany("INSERT INTO rejections (received_at, remote_addr, path, reason, size)"
                             " VALUES (?, ?, ?, ?, ?)", sample)
            conn.execute("DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - ?", (SAMPLE,))
            oldest = datetime.now(timezone.utc) - timedelta(days=KEEP_DAYS)
            conn.execute("DELETE FROM rejection_counts WHERE minute < ?", (oldest.strftime("%Y-%m-%dT%H:%MZ"),))

    def sample(self, limit=20):
        """The newest rejections kept, as dicts, newest first (what this process counted is written first)."""
        self.flush()
        return self.store.read_dicts("SELECT id, received_at, remote_addr, path, reason, size FROM rejections"
                                     " ORDER BY id DESC LIMIT ?", (limit,))

    def counts(self, since=None):
        """{reason: count}, from the minute of `since` (ISO) on, or all kept."""
        self.flush()
        return dict(self.store._read("SELECT reason, CAST(sum(count) AS BIGINT) FROM rejection_counts WHERE minute >= ?"
                                     " GROUP BY reason ORDER BY sum(count) DESC, reason", ((since or "")[:16],)))

    def _ensure_flusher(self):
        if self._pid != os.getpid():  # threads do not survive fork: each process starts its own
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    threading.Thread(target=self._flush_later, name="bchooks-rejections", daemon=True).start()

    def _flush_later(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(max(0.0, self._last + FLUSH_EVERY - time.monotonic()))
            if not self.flush():
                time.sleep(FLUSH_EVERY)
                self._wake.set()
