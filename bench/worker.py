#!/usr/bin/env python3
"""Worker benchmark: handler runs completed per second by two `bchooks worker` processes, on each engine.

    .venv/bin/python bench/worker.py                  # 20,000 events, no-op handler, SQLite then PostgreSQL
    .venv/bin/python bench/worker.py --events 5000 --rounds 1

Each round stores N events in a fresh store (SQLite file; a fresh database of a throwaway PostgreSQL cluster,
tools/pgcluster.py), then starts two workers with `--once` and a no-op handler at the same moment and times them
until both exit. Every run must be done exactly once (counted in the store, and by the handler's own log).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bchooks import parse_envelope  # noqa: E402
from bchooks.simulator.shop import Shop  # noqa: E402
from bchooks.kit.stack import end_child  # noqa: E402
from bchooks.store import open_store  # noqa: E402

HANDLER = """
import os
from bchooks.processing.handlers import on

LOG = open(os.environ["BENCH_LOG"], "a", buffering=1)

@on("*", name="noop")
def noop(event):
    LOG.write(f"{event.id}\\n")
"""


def fill(db, bodies):
    with open_store(db) as store:
        store.append_many([(body, parse_envelope(body)) for body in bodies])


def run(db, folder, events):
    log = folder / f"runs-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": str(folder), "BENCH_LOG": str(log)}
    started = time.perf_counter()
    workers = []
    try:
        for _ in range(2):
            workers.append(subprocess.Popen([sys.executable, "-m", "bchooks", "worker", "--db", db, "--handlers",
                                             "benchnoop", "--once"], env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True))
        errors = [worker.communicate()[1] for worker in workers]
    finally:  # (interrupted: the workers this run started are ended, by their pids)
        for worker in workers:
            end_child(worker)
    seconds = time.perf_counter() - started
    if any(worker.returncode for worker in workers):
        raise RuntimeError(f"a worker failed: {errors}")
    with open_store(db, create=False) as store:
        done = store.runs.count("done")
    ran = log.read_text().split()
    trouble = [] if done == events and sorted(map(int, ran)) == list(range(1, events + 1)) else [
        f"{db}: {done} done, {len(ran)} runs logged, {len(set(ran))} distinct, for {events} events"]
    return events / seconds, trouble


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from pgcluster import Cluster
    folder = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    cluster = None
    results, trouble = {"sqlite": [], "postgresql": []}, []
    try:  # the cluster stopped (by its pid if it will not stop) and the folder removed, however the run ends
        (folder / "benchnoop.py").write_text(HANDLER)
        shop = Shop(5, order_prefix="WB")
        bodies = shop.events("order.created", args.events)
        cluster = Cluster(folder / "postgresql")
        cluster.start()
        cluster.psql("CREATE ROLE bchooks LOGIN CREATEDB")
        for round_number in range(args.rounds):
            for engine in ("sqlite", "postgresql") if round_number % 2 == 0 else ("postgresql", "sqlite"):
                if engine == "sqlite":
                    db = str(folder / f"round{round_number}.db")
                else:
                    db = cluster.create_database(f"round{round_number}")
                fill(db, bodies)
                rate, problems = run(db, folder, args.events)
                results[engine].append(rate)
                trouble += problems
                print(f"round {round_number + 1} {engine:<11} {rate:>8.0f} runs/s", file=sys.stderr)
    finally:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{args.events:,} events, no-op handler, two workers (--once), {args.rounds} rounds; medians")
    print(f"{'engine':<12}{'runs/s':>10}{'× sqlite':>10}")
    base = statistics.median(results["sqlite"])
    for engine, rates in results.items():
        print(f"{engine:<12}{statistics.median(rates):>10.0f}{statistics.median(rates) / base:>10.2f}")
    if trouble:
        print("\nNOT TRUSTWORTHY:\n  " + "\n  ".join(trouble))
        return 1
    print("\nevery run done exactly once on both engines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
