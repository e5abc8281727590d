"""The counters and histograms of the receiver: what each worker process records as it answers and commits.

Under `serve` they are written to the worker's files in the metrics folder (`directory.py`) and registered nowhere:
a scrape sums the files. Without that folder (the app in one process, as the tests build it), they live in this
object's own registry.
"""

import os
from collections.abc import Sequence
from typing import Any

#: a request's outcome when the app set none (requests Bottle answered itself)
_BY_STATUS = {"404": "not_found", "405": "method_not_allowed", "500": "internal_error"}
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def outcome(environ: dict, status: str) -> str:
    """The reason label of a webhook request: "stored", "duplicate" or "verified" (`--no-store`) for a 200, else
    the JSON error code the receiver answered (`invalid_signature`, `invalid_json`, `store_unavailable`...)."""
    return environ.get("bchooks.outcome") or environ.get("bchooks.reason") or _BY_STATUS.get(status, "other")


class ReceiverMetrics:
    """What one receiver process records: requests to the webhook path by status and reason, their duration, the
    group commits' duration and rows, and the events stored."""

    def __init__(self, webhook_path: str = "/webhook") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.values import ValueClass
        self.webhook_path = webhook_path
        self.multiprocess = bool(getattr(ValueClass, "_multiprocess", False))
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        where = self.registry
        self.requests = Counter("bchooks_webhook_requests", "Requests to the webhook path, by HTTP status and "
                                "reason (stored, duplicate, or the JSON error code answered).",
                                ("status", "reason"), registry=where)
        self.request_seconds = Histogram("bchooks_webhook_request_seconds", "Time from a webhook request's arrival "
                                         "to its answer (its commit included).", buckets=REQUEST_BUCKETS,
                                         registry=where)
        self.commit_seconds = Histogram("bchooks_commit_seconds", "Duration of a group commit, its wait for the "
                                        "writers' turn included.", buckets=COMMIT_BUCKETS, registry=where)
        self.commit_rows = Histogram("bchooks_commit_rows", "Events per group commit (the requests that shared it).",
                                     buckets=BATCH_BUCKETS, registry=where)
        self.events_stored = Counter("bchooks_events_stored", "Events stored (new bodies; duplicates are not).",
                                     registry=where)
        self.workers = Gauge("bchooks_receiver_workers", "Receiver worker processes alive.",
                             multiprocess_mode="livesum", registry=where)

    def __repr__(self) -> str:
        return f"ReceiverMetrics(pid={os.getpid()}, multiprocess={self.multiprocess})"

    def worker_started(self) -> None:
        """Count this process among the live workers (its file is dropped when it dies: `MetricsDirectory.sweep`)."""
        self.workers.set(1)

    def observe_request(self, environ: dict, status: str, seconds: float) -> None:
        """One answered request (the receiver's access log calls this for every request; only the webhook path's
        are counted)."""
        if environ.get("PATH_INFO") != self.webhook_path:
            return
        self.requests.labels(status, outcome(environ, status)).inc()
        self.request_seconds.observe(seconds)

    def observe_commit(self, seconds: float, results: Sequence[Any]) -> None:
        """One group commit: its duration and rows, and how many of them were new events."""
        self.commit_seconds.observe(seconds)
        self.commit_rows.observe(len(results))
        stored = sum(1 for result in results if getattr(result, "duplicate", True) is False)
        if stored:
            self.events_stored.inc(stored)
