"""Retention on a schedule: the worker calls `Retention.tick()` on each pass; once per BCHOOKS_RETAIN_EVERY it
archives the events older than BCHOOKS_RETAIN_DAYS into BCHOOKS_ARCHIVE_DIR, on a thread of its own (handlers go
on meanwhile; the worker's own store is not used). A failed run is logged in one line and tried again at the next interval."""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ..clock import iso
from ..errors import BchooksError, ConfigError
from .runs import archive

log = logging.getLogger("bchooks.archives")


class Retention:
    def __init__(self, config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.days, self.every = config, config.retain_days, config.retain_every
        self.directory = config.archive_dir
        if self.days and not self.directory:
            raise ConfigError("BCHOOKS_RETAIN_DAYS is set but BCHOOKS_ARCHIVE_DIR is not: say where old events go")
        self._clock = clock
        self._next = clock()  # (the first tick runs at once)
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Retention(days={self.days}, every={self.every:g}s, directory={self.directory!r})"

    def before(self) -> str:
        """The time before which events are archived now."""
        return iso(datetime.now(timezone.utc) - timedelta(days=self.days))

    def tick(self) -> bool:
        """Start a run on a thread when one is due and none is running; whether one started."""
        if not self.days or self._clock() < self._next or (self._thread and self._thread.is_alive()):
            return False
        self._next = self._clock() + self.every
        self._thread = threading.Thread(target=self.run, name="bchooks-retention", daemon=True)
        self._thread.start()
        return True

    def run(self) -> None:
        """Archive what is older than the retention now (errors logged, never raised), through a store of its own
        opened without BCHOOKS_MAX_DB_MB (a full store is archived too)."""
        from ..store import open_store
        try:
            store = open_store(dataclasses.replace(self.config, max_db_mb=0), create=False)
            try:
                done = archive(store, self.before(), self.directory)
            finally:
                store.close()
        except BchooksError as error:
            self.last_error = str(error)
            log.warning("retention: archiving failed (%s); trying again in %g s", error, self.every)
            return
        self.last_error = None
        if done.events:
            log.info("retention: %s", "; ".join(done.lines()))

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
