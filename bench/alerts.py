#!/usr/bin/env python3
"""Benchmark of one alert evaluation: a store of 1,000 events against one of N (default 1,000,000).

    .venv/bin/python bench/alerts.py                  # 1,000 vs 1,000,000 events (about 2 minutes here)
    .venv/bin/python bench/alerts.py --events 100000  # a quicker run

Both stores hold the same other rows: 100 shops (the events spread over them, each with a poll outcome), 500 dead
handler runs, 30 days of per-minute rejection counts for 3 reasons, a few alerts of history. Each evaluation reads
the rules' rows and writes its probe; nothing is sent (no BCHOOKS_NOTIFY_URLS). Median of 30 evaluations each,
and the ratio of the large store's to the small one's (1.0: the cost does not grow with the events).
"""

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bchooks import Config  # noqa: E402
from bchooks.alerts import Evaluator  # noqa: E402
from bchooks.store import EventStore  # noqa: E402

SHOPS = 100


def build(path, events):
    now = datetime.now(timezone.utc)
    with EventStore(path) as store, store.transaction() as conn:
        rows = []
        for i in range(events):
            body = b'{"account_id":"%d","type":"order.created","payload":{"id":"%d"}}' % (i % SHOPS, i)
            received = (now - timedelta(seconds=events - i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rows.append((received, "order.created", str(i % SHOPS), str(i), body, hashlib.sha256(body).hexdigest()))
            if len(rows) == 50000 or i == events - 1:
                conn.executemany("INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256)"
                                 " VALUES (?, ?, ?, ?, ?, ?)", rows)
                rows = []
        conn.executemany("INSERT INTO handler_runs (event_id, handler, status, attempts, next_attempt_at)"
                         " VALUES (?, 'h', 'dead', 3, 0)", [(i,) for i in range(1, 501)])
        minutes = [(now - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%MZ") for m in range(30 * 24 * 60)]
        conn.executemany("INSERT INTO rejection_counts (minute, reason, count, bytes) VALUES (?, ?, 1, 10)",
                         [(minute, reason) for minute in minutes for reason in ("a", "b", "c")])
        at = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        conn.executemany("INSERT INTO poll_outcomes (account_id, last_attempt_at, last_success_at, failures)"
                         " VALUES (?, ?, ?, 0)", [(str(s), at, at) for s in range(SHOPS)])


def measure(path, rounds=30):
    config = Config.load(env={}, db=str(path))
    with EventStore(path) as store:
        evaluator = Evaluator(store, config)
        evaluator.evaluate()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            evaluator.evaluate()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = []
        for events in (1000, args.events):
            path = Path(folder) / f"{events}.db"
            started = time.perf_counter()
            build(path, events)
            built = time.perf_counter() - started
            results.append((events, measure(path), built))
    base = results[0][1]
    print("| events | evaluation ms (median of 30) | × 1,000 events |")
    print("| ---: | ---: | ---: |")
    for events, took, _ in results:
        print(f"| {events:,} | {took * 1000:.2f} | {took / base:.2f} |")


if __name__ == "__main__":
    main()
