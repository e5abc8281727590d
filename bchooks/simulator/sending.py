"""Posting signed webhook bodies: one delivery (`post_signed`) and a concurrent run with a summary (`send`)."""

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from ..secrecy import printable
from ..receiving.signing import sign
from ..wire import SIGNATURE_HEADERS



@dataclass(frozen=True)
class Attempt:
    status: int | None  # None when no HTTP answer came back
    latency_ms: float
    error: str = ""

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


def post_signed(session, url, body, secret, *, header=SIGNATURE_HEADERS["docs"], timeout=10.0):
    """POST the exact `body` bytes with their signature; never raises for network trouble."""
    headers = {"Content-Type": "application/json", header: sign(body, secret),
               "User-Agent": "bchooks-simulator"}
    started = time.perf_counter()
    try:
        reply = session.post(url, data=body, headers=headers, timeout=timeout)
        error = "" if reply.ok else printable(reply.text, limit=200)
        return Attempt(reply.status_code, (time.perf_counter() - started) * 1000, error)
    except requests.RequestException as failure:
        return Attempt(None, (time.perf_counter() - started) * 1000, describe_failure(failure))


def describe_failure(failure):
    if isinstance(failure, requests.Timeout):
        return "timed out"
    if isinstance(failure, requests.ConnectionError):
        return "connection failed"
    return type(failure).__name__


#: deliveries that were never attempted, with what to say about them
NOT_SENT = {"dropped": "dropped on purpose by the sandbox (--drop)"}


@dataclass
class Summary:
    sent: int = 0
    ok: int = 0
    failures: Counter = field(default_factory=Counter)  # status code (or "connection failed") -> count
    latencies_ms: list = field(default_factory=list)
    not_sent: Counter = field(default_factory=Counter)  # "dropped" -> count: never attempted, on purpose
    failed_urls: set = field(default_factory=set)

    def add(self, attempt, url=None):
        if attempt.status is None and attempt.error in NOT_SENT:
            self.not_sent[attempt.error] += 1
            return
        self.sent += 1
        self.latencies_ms.append(attempt.latency_ms)
        if attempt.ok:
            self.ok += 1
        else:
            self.failures[attempt.status if attempt.status is not None else attempt.error] += 1
            if url:
                self.failed_urls.add(url)

    def percentile(self, q):
        if not self.latencies_ms:
            return 0.0
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    def as_dict(self):
        return {"sent": self.sent, "ok": self.ok, "failures": {str(k): v for k, v in self.failures.items()},
                "not_sent": dict(self.not_sent), "failed_urls": sorted(self.failed_urls),
                "p50_ms": round(self.percentile(50), 2), "p99_ms": round(self.percentile(99), 2)}

    def __str__(self):
        failures = ", ".join(f"{n}× {k}" for k, n in sorted(self.failures.items(), key=str)) or "none"
        if self.failed_urls:
            failures += f" (at {', '.join(sorted(self.failed_urls))})"
        not_sent = "".join(f"; not sent: {n} {NOT_SENT[k]}" for k, n in sorted(self.not_sent.items()))
        return (f"sent {self.sent}, 2xx {self.ok}, failures: {failures}{not_sent}; "
                f"latency p50 {self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms")


def send(url, bodies, secret, *, header=SIGNATURE_HEADERS["docs"], concurrency=4, timeout=10.0, progress=None):
    """Post every body to `url` with `concurrency` connections; `progress(n)` is called after each."""
    summary = Summary()
    lock = threading.Lock()
    local = threading.local()
    sessions = []

    def one(body):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            with lock:
                sessions.append(local.session)
        attempt = post_signed(local.session, url, body, secret, header=header, timeout=timeout)
        with lock:
            summary.add(attempt, url)
        if progress:
            progress(1)

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(one, bodies))
    finally:
        for session in sessions:
            session.close()
    return summary
