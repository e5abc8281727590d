#!/usr/bin/env python3
"""Benchmark of the order analysis: naive json_normalize vs the projection (first build, warm path, refresh).

    .venv/bin/python bench/analysis.py                     # 1,000,000 orders (about 10 minutes here)
    .venv/bin/python bench/analysis.py --orders 20000      # a quick run
    .venv/bin/python bench/analysis.py --db big.db --keep  # reuse (or keep) a generated store
    .venv/bin/python bench/analysis.py --postgresql        # also the first build from PostgreSQL (same events)

With `--postgresql` the generated store is copied (`bchooks migrate`'s copy) into a throwaway PostgreSQL cluster
(tools/pgcluster.py), and the first build and the warm path are measured from it too: the events read over the
connection into the local cache instead of from the file.

The store holds N order.created events and N/10 order.updated events from the simulator (two shops generated in
parallel). Each measured phase runs in a fresh process, so its peak memory (its own, plus its worker processes')
is its own. Ratios are against the naive approach.
"""

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bchooks import EventStore, parse_envelope  # noqa: E402
from bchooks.analysis.rows import ORDER_TYPES  # noqa: E402
from bchooks.simulator.shop import Shop  # noqa: E402

CHUNK = 5000


def generate(path, seed, prefix, orders, updates, start_after=0):
    """A store of `orders` new orders and `updates` updates of them, from one simulated shop."""
    shop = Shop(seed, order_prefix=prefix, mean_gap_minutes=2.0)
    with EventStore(path) as store:
        for kind, total in (("order.created", orders), ("order.updated", updates)):
            for done in range(0, total, CHUNK):
                bodies = shop.events(kind, min(CHUNK, total - done))
                store.append_many([(body, parse_envelope(body)) for body in bodies])
    return path


def build_store(path, orders, workers=2):
    folder = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    share = [orders // workers + (1 if i < orders % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(generate, [str(folder / f"part{i}.db") for i in range(workers)], range(1, workers + 1),
                              [f"B{i}" for i in range(workers)], share, [n // 10 for n in share]))
    EventStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    for part in parts:
        conn.execute("ATTACH DATABASE ? AS part", (part,))
        conn.execute("INSERT INTO events (received_at, type, account_id, resource_id, body, body_sha256, "
                     "signature_header, remote_addr) SELECT received_at, type, account_id, resource_id, body, "
                     "body_sha256, signature_header, remote_addr FROM part.events ORDER BY id")
        conn.execute("DETACH DATABASE part")
    conn.close()
    shutil.rmtree(folder)


# -- phases (each runs in its own process)
def phase_naive(db):
    import pandas as pd
    conn = sqlite3.connect(db)
    marks = ",".join("?" * len(ORDER_TYPES))
    payloads = []
    for (body,) in conn.execute(f"SELECT body FROM events WHERE type IN ({marks}) ORDER BY id", ORDER_TYPES):
        document = json.loads(body)
        payloads.append(document.get("payload", document.get("data")))
    orders = pd.json_normalize(payloads)
    items = pd.json_normalize(payloads, record_path="items", meta=["id"], meta_prefix="order_")
    return {"rows": len(orders), "items": len(items)}


def phase_build(db):
    from bchooks.analysis.cache import Projection
    from bchooks.store import open_store
    with open_store(db, create=False) as store:
        projection = Projection(store)
        shutil.rmtree(projection.cache_dir, ignore_errors=True)
        return {"events": projection.refresh()}


def phase_warm(db):
    from bchooks import analysis
    from bchooks.store import open_store
    with open_store(db, create=False) as store:
        orders, items = analysis.Projection(store).frames()
        reports = [analysis.revenue(orders, f) for f in ("D", "W", "M")]
        reports += [analysis.top_products(items, by=b, n=20, options=o) for b in ("revenue", "units")
                    for o in (False, True)]
        reports += [analysis.customers(orders), analysis.sales_by_country(orders), analysis.open_orders(orders),
                    analysis.shipping_times(orders), analysis.summary(orders, items)]
        # the seller's reports
        reports += [analysis.order_values(orders, "M"), analysis.refunds(orders, "W"), analysis.discounts(orders),
                    analysis.compare_periods(orders, "M"), analysis.retention(orders),
                    analysis.returning_customer_rate(orders), analysis.late_orders(orders, items),
                    analysis.weekday_hours(orders)]
        return {"orders": len(orders), "items": len(items), "repeat_rate": round(analysis.repeat_rate(orders), 4)}


def phase_refresh(db):
    from bchooks.analysis.cache import Projection
    with EventStore(db) as store:
        return {"events": Projection(store).refresh()}


def phase_notebook(db):
    """A notebook's session: the frames read, 10,000 events arrive, the frames read again in the same process
    (it folds in only what is new), then the seller's reports on them; each step timed on its own."""
    from bchooks import analysis
    from bchooks.store import open_store
    timings = {}
    with open_store(db, create=False) as store:
        started = time.perf_counter()
        analysis.frames(store)
        timings["first read"] = round(time.perf_counter() - started, 2)
        events = store.count()
    generate(db, 1000 + events % 7, f"N{events}", 8000, 2000)
    with open_store(db, create=False) as store:
        started = time.perf_counter()
        orders, items = analysis.frames(store)
        timings["read after 10,000 new events"] = round(time.perf_counter() - started, 2)
    for name, report in (("order_values", lambda: analysis.order_values(orders, "M")),
                         ("refunds", lambda: analysis.refunds(orders, "W")),
                         ("discounts", lambda: analysis.discounts(orders)),
                         ("compare_periods", lambda: analysis.compare_periods(orders, "M")),
                         ("retention", lambda: analysis.retention(orders)),
                         ("late_orders", lambda: analysis.late_orders(orders, items)),
                         ("weekday_hours", lambda: analysis.weekday_hours(orders))):
        started = time.perf_counter()
        report()
        timings[name] = round(time.perf_counter() - started, 2)
    return timings


PHASES = {"naive": phase_naive, "build": phase_build, "warm": phase_warm, "refresh": phase_refresh,
          "notebook": phase_notebook}


def run_phase(name, db):
    """Run one phase in a fresh process; (seconds, peak MiB, result)."""
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--db", str(db)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db", help="store to use; generated when missing")
    parser.add_argument("--keep", action="store_true", help="keep the generated store")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the (slow, memory-hungry) naive way")
    parser.add_argument("--postgresql", action="store_true", help="also build from a copy in PostgreSQL")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        import pandas  # noqa: F401  (libraries load before the clock starts, for every phase alike)
        import pyarrow.parquet  # noqa: F401
        started = time.perf_counter()
        result = PHASES[args.phase](args.db)
        seconds = time.perf_counter() - started
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(json.dumps({"seconds": seconds, "peak_mib": peak, "result": result}))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    db = Path(args.db) if args.db else folder / "events.db"
    try:
        if not db.exists():
            started = time.perf_counter()
            build_store(str(db), args.orders)
            print(f"generated {db} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with EventStore(db) as store:
            events = store.count()
        print(f"store: {events:,} events ({os.path.getsize(db) / 2 ** 20:,.0f} MiB)", file=sys.stderr)
        results = {}
        for name in ([] if args.skip_naive else ["naive"]) + ["build", "warm"]:
            results[name] = run_phase(name, db)
            print(f"  {name}: {results[name]['seconds']:.2f} s", file=sys.stderr)
        if args.postgresql:
            sys.path.insert(0, str(ROOT / "tools"))
            from pgcluster import Cluster

            from bchooks.store import open_store
            from bchooks.store.transfer import copy_store
            cluster = Cluster(folder / "postgresql").start()
            try:
                url = cluster.create_database("analysis")
                started = time.perf_counter()
                with open_store(str(db), create=False) as source, open_store(url) as target:
                    copy_store(source, target, batch=5000)
                print(f"copied into PostgreSQL in {time.perf_counter() - started:.1f} s", file=sys.stderr)
                for name in ("build", "warm"):
                    results[f"{name} (PostgreSQL)"] = run_phase(name, url)
                    print(f"  {name} (PostgreSQL): {results[f'{name} (PostgreSQL)']['seconds']:.2f} s",
                          file=sys.stderr)
            finally:
                cluster.stop()
        extra = max(10, min(10_000, args.orders // 100))
        generate(str(db), events, f"R{events}", extra * 4 // 5, extra // 5)  # new orders, and updates of them
        results["refresh"] = run_phase("refresh", db)
        results["warm after refresh"] = run_phase("warm", db)  # merges the delta, saves the merged base
        results["warm again"] = run_phase("warm", db)
        results["notebook session"] = run_phase("notebook", db)
        base = results.get("naive", results["build"])
        print(f"\norders: {args.orders:,}; events: {events:,}; refresh after {extra:,} new events")
        print(f"{'phase':<20}{'seconds':>10}{'peak MiB':>10}{'× naive time':>14}  result")
        for name, r in results.items():
            print(f"{name:<20}{r['seconds']:>10.2f}{r['peak_mib']:>10.0f}{r['seconds'] / base['seconds']:>14.3f}  "
                  f"{json.dumps(r['result'])}")
        if "build (PostgreSQL)" in results:
            print(f"\nfirst build from PostgreSQL: {results['build (PostgreSQL)']['seconds'] / results['build']['seconds']:.2f}"
                  "× the time of the first build from SQLite")
        if "naive" in results:
            print(f"\nwarm path is {results['naive']['seconds'] / results['warm']['seconds']:.0f}× faster than naive,"
                  f" with {results['warm']['peak_mib'] / results['naive']['peak_mib']:.2f}× its memory")
    finally:
        if not args.keep and not args.db:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
