#!/usr/bin/env python3
"""Metrics benchmark: what one scrape of `/metrics` costs with 1,000 events and with a million, side by side.

    .venv/bin/python bench/metrics.py                       # the 1M-event store at bench1m.db (--large)
    .venv/bin/python bench/metrics.py --large PATH --scrapes 300

SQLite stores: a fresh one of 1,000 events shaped like the large one (one shop, no handler runs, never polled), the
baseline; the large store given (opened for reads only: its events are never written); a fresh one of 1,000 events
in two shops, both polled, with a handler run per event in every state (most done); and one of 1,000 events with a
backlog of a million pending handler runs (a thousand handlers). Each is scraped
in-process by a `MetricsEndpoint` (the store's gauges and the exposition; no worker files) `--scrapes` times after a
warm-up; medians and p90 in ms, and each store's median over the small store's. Beside them, `count(*)` of the
events (what a gauge that counts events would cost) shows the difference a full scan makes.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bchooks import parse_envelope  # noqa: E402
from bchooks.metrics import MetricsEndpoint  # noqa: E402
from bchooks.store import open_store  # noqa: E402


def small_store(path, events=1000, *, shops=1, handlers=0):
    """`events` events in `shops` shops, each shop polled when there are two or more; `handlers` runs per event (one
    handler: most runs done, some dead, the rest pending; more: all pending)."""
    store = open_store(path)
    bodies = [f'{{"account_id":"{1234567 + n % shops}","type":"order.updated","payload":{{"id":"B-{n}"}}}}'.encode()
              for n in range(events)]
    store.append_many([(body, parse_envelope(body)) for body in bodies])
    if handlers:
        store.runs.enqueue([(f"h{n}", ("*",)) for n in range(handlers)], time.time() - 60)
    if handlers == 1:
        for n, (event_id, handler, _) in enumerate(store.runs.claim(["h0"], "bench", time.time(), 60, 950)):
            store.runs.finish(event_id, handler, "bench", "dead" if n % 100 == 0 else "done")
    for shop in range(shops if shops > 1 else 0):
        store.cursors.set(str(1234567 + shop), "orders", "2026-12-01T00:00:00Z")
    return store


def timed(function, times):
    function()  # (warm: connections opened, pages cached)
    took = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.9) - 1]


def measure(name, store, scrapes):
    endpoint = MetricsEndpoint(store)
    status, _, body = endpoint.answer({})
    assert status == 200 and b"bchooks_store_up 1.0" in body, body[:300]
    median, p90 = timed(lambda: endpoint.answer({}), scrapes)
    count_median, _ = timed(lambda: store.count(), 3)
    return {"name": name, "events": store.last_event()[0], "median": median, "p90": p90, "count": count_median,
            "backlog": next(line for line in body.decode().splitlines() if line.startswith("bchooks_handler_backlog"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", default="bench1m.db", help="a store of about a million events (only read)")
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cases = [("1k events, 1 shop", lambda: small_store(Path(folder) / "small.db")),
                 ("1M events, 1 shop", lambda: open_store(args.large, create=False)),
                 ("1k events, 2 shops polled, runs in every state",
                  lambda: small_store(Path(folder) / "runs.db", shops=2, handlers=1)),
                 ("1k events, 1M pending runs", lambda: small_store(Path(folder) / "backlog.db", handlers=1000))]
        for name, opened in cases:
            store = opened()
            try:
                rows.append(measure(name, store, args.scrapes))
            finally:
                store.close()
    base = rows[0]["median"]
    print("| store | events | scrape median ms | scrape p90 ms | × 1k | count(*) of events ms | backlog gauge |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(f"| {row['name']} | {row['events']:,} | {row['median']:.2f} | {row['p90']:.2f} | "
              f"{row['median'] / base:.2f} | {row['count']:.1f} | `{row['backlog']}` |")


if __name__ == "__main__":
    main()
