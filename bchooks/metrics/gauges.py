"""The store's gauges, read when Prometheus scrapes: how long since each shop's last event and last poll, the
handlers' backlog and the age of its oldest waiting run, the dead runs, the newest event id.

Every read is an index seek or a count stopped at `CAP` rows, never a scan: a scrape costs the same with a million
events as with a thousand (`bench/metrics.py`). The reads run on a thread of their own and are waited for `DEADLINE`
seconds at most: a store that is locked or down gives `bchooks_store_up 0` and no store gauges, in time, never a
hung or failed scrape (a read still waiting is shared by the next scrapes, not started again).
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..clock import parse_iso
from ..store.runs import DEAD, FAILED, PENDING, RUNNING

log = logging.getLogger("bchooks.metrics")

DEADLINE = 2.0  # seconds a scrape waits for the store's reads
CAP = 10000  # handler runs counted per status at most (a gauge at CAP means CAP or more)
RUN_STATUSES = (PENDING, RUNNING, FAILED, DEAD)


def read_store(store: Any, cap: int = CAP) -> dict:
    """What the gauges show, read from `store` (each read an index seek or a bounded count)."""
    return {"last_event": store.last_event_by_shop(), "last_id": store.last_event()[0],
            "runs": store.runs.counts_up_to(cap, RUN_STATUSES), "oldest_pending": store.runs.oldest_due(PENDING),
            "last_polled": store.cursors.last_polled()}


def _unix(moment: Any) -> float | None:
    try:
        return parse_iso(str(moment)).timestamp()
    except (TypeError, ValueError):
        return None


class StoreGauges:
    """A prometheus_client custom collector of the store's gauges. `store` is the store, or a function that
    returns it (opened at the first scrape: `serve`'s own process opens its store only once its workers forked)."""

    def __init__(self, store: Any, *, deadline: float = DEADLINE, cap: int = CAP,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.deadline = deadline
        self.cap = cap
        self.clock = clock
        self._lock = threading.Lock()
        self._reading: tuple[threading.Thread, dict] | None = None

    def __repr__(self) -> str:
        return f"StoreGauges(deadline={self.deadline})"

    def describe(self) -> list:
        return []  # (no read when registered)

    def _read(self, box: dict) -> None:
        try:
            store = self._store() if callable(self._store) else self._store
            box["value"] = read_store(store, self.cap)
        except Exception as error:  # a failed read is `bchooks_store_up 0`, never a failed scrape
            box["error"] = error

    def read(self) -> tuple[dict | None, str | None]:
        """(the reads' values, None), or (None, why not) when they failed or took longer than the deadline."""
        with self._lock:
            if self._reading is None or not self._reading[0].is_alive():
                box: dict = {}
                thread = threading.Thread(target=self._read, args=(box,), name="bchooks-metrics-store", daemon=True)
                thread.start()
                self._reading = (thread, box)
            thread, box = self._reading
        thread.join(self.deadline)
        if thread.is_alive():
            return None, f"the store did not answer within {self.deadline:g} s"
        if "error" in box:
            error = box["error"]
            return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return box["value"], None

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        started = time.perf_counter()
        value, problem = self.read()
        up = GaugeMetricFamily("bchooks_store_up", "1 when the store's gauges were read within the deadline, else 0 "
                               "(and the store's gauges are left out).")
        up.add_metric([], 0 if value is None else 1)
        yield up
        took = GaugeMetricFamily("bchooks_store_read_seconds", "Time the store's gauges took to read at this scrape.")
        took.add_metric([], time.perf_counter() - started)
        yield took
        if value is None:
            log.warning("metrics: store gauges left out: %s", problem)
            return
        yield from self._families(value, GaugeMetricFamily)

    def _families(self, value: dict, family: Any) -> Iterator[Any]:
        now = self.clock()
        last_id = family("bchooks_store_last_event_id", "Id of the newest stored event (it grows by one per event "
                         "stored, on every host).")
        last_id.add_metric([], value["last_id"])
        yield last_id
        yield from self._per_shop(family, "bchooks_last_event", "the shop's newest stored event was received",
                                  {shop: received for shop, (_, received) in value["last_event"].items()}, now)
        yield from self._per_shop(family, "bchooks_last_poll", "the shop's polling cursors were last written (a "
                                  "complete poll)", value["last_polled"], now)
        runs = family("bchooks_handler_runs", f"Handler runs by status (pending, running, failed, dead), each counted "
                      f"up to {self.cap}.", labels=["status"])
        for status in RUN_STATUSES:
            runs.add_metric([status], value["runs"].get(status, 0))
        yield runs
        backlog = family("bchooks_handler_backlog", "Handler runs not finished: pending, running and failed awaiting "
                         "a retry (each status counted up to the cap).")
        backlog.add_metric([], sum(value["runs"].get(status, 0) for status in (PENDING, RUNNING, FAILED)))
        yield backlog
        oldest = family("bchooks_handler_oldest_pending_age_seconds", "Seconds the oldest pending handler run has "
                        "waited (0 when none waits).")
        queued = value["oldest_pending"]
        oldest.add_metric([], max(0.0, now - queued) if queued is not None else 0.0)
        yield oldest

    @staticmethod
    def _per_shop(family: Any, name: str, what: str, moments: dict, now: float) -> Iterator[Any]:
        stamp = family(f"{name}_timestamp_seconds", f"Unix time {what}, per shop.", labels=["account_id"])
        age = family(f"{name}_age_seconds", f"Seconds since {what}, per shop.", labels=["account_id"])
        for shop, moment in sorted(moments.items(), key=lambda item: str(item[0])):
            seconds = _unix(moment)
            if shop is None or seconds is None:
                continue
            stamp.add_metric([str(shop)], seconds)
            age.add_metric([str(shop)], max(0.0, now - seconds))
        yield stamp
        yield age
