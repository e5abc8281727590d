#!/usr/bin/env python3
"""Checkpoint benchmark: how long the background checkpointer holds the writers back, and what appends wait,
under steady load on SQLite without HTTP.

    .venv/bin/python bench/checkpoint.py                                   # 3 rounds of 8 s, this checkout
    .venv/bin/python bench/checkpoint.py --compare before=../old --compare main=../main   # interleaved

Each run: a fresh store, two processes (as `bchooks serve`'s two workers) of 8 threads each appending distinct
1 KB events through the group committer for `--duration` seconds. Reported per run: appends a second, their
p50/p99/p99.9/max latency, and the writers' turns the checkpointer took (how many, their total and longest
length: every append queued meanwhile waited for it). The turns are timed by wrapping the store module's
`writers_turn`, which only the checkpoint takes (commits take theirs through `WriterLock`), in this checkout's
code and in older ones alike. With `--compare NAME=FOLDER` the same runs use the code of another checkout, in
the same rounds, in turn with this one's.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _body(process, thread, n):
    resource = f"{process}-{thread}-{n}"
    return json.dumps({"type": "order.created", "account_id": "1", "resource_id": resource,
                       "data": {"id": resource, "note": "x" * 1000}}).encode()


def _appender(db, seconds, queue):
    from bchooks import parse_envelope
    from bchooks.receiving.committer import GroupCommitter
    from bchooks.store import sqlite as sqlite_store
    held = []
    turn = sqlite_store.writers_turn

    @contextmanager
    def timed_turn(path, timeout):
        with turn(path, timeout):
            started = time.monotonic()
            try:
                yield
            finally:
                held.append(time.monotonic() - started)
    sqlite_store.writers_turn = timed_turn
    store = sqlite_store.EventStore(db, auto_checkpoint=False)
    grouped = GroupCommitter(store)
    latencies = []
    end = time.monotonic() + seconds

    def work(thread):
        n = 0
        while time.monotonic() < end:
            body = _body(os.getpid(), thread, n)
            started = time.monotonic()
            grouped.append(body, parse_envelope(body))
            latencies.append(time.monotonic() - started)
            n += 1
    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((latencies, held))


def one_run(seconds):
    """In a child process whose PYTHONPATH names the code measured: one run; its figures as JSON."""
    from bchooks.store.sqlite import EventStore
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as folder:
        db = os.path.join(folder, "events.db")
        EventStore(db).close()
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        processes = [context.Process(target=_appender, args=(db, seconds, queue)) for _ in range(2)]
        for process in processes:
            process.start()
        try:
            parts = [queue.get(timeout=seconds + 120) for _ in processes]
        finally:
            for process in processes:
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join()
        latencies = sorted(sum((part[0] for part in parts), []))
        held = sum((part[1] for part in parts), [])
        wal = os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal") else 0

    def at(share):
        return latencies[min(len(latencies) - 1, int(len(latencies) * share))] * 1000
    print(json.dumps({"rate": len(latencies) / seconds, "p50": at(0.5), "p99": at(0.99), "p999": at(0.999),
                      "max": latencies[-1] * 1000, "turns": len(held), "held_ms": sum(held) * 1000,
                      "longest_ms": max(held, default=0) * 1000, "wal_mb": wal / 2 ** 20}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=FOLDER",
                        help="also the code of the checkout in FOLDER, reported as NAME")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        return one_run(args.duration)
    codes = {"this": ROOT}
    for name, equals, folder in (spec.partition("=") for spec in args.compare):
        if not equals or not name or not (Path(folder) / "bchooks" / "__init__.py").is_file():
            parser.error(f"--compare wants NAME=FOLDER, FOLDER a bchooks checkout: {name}{equals}{folder}")
        codes[name] = Path(folder).resolve()
    results = {name: [] for name in codes}
    for round_number in range(args.rounds):
        order = list(codes) if round_number % 2 == 0 else list(codes)[::-1]
        for name in order:
            out = subprocess.run([sys.executable, __file__, "--one-run", "--duration", str(args.duration)],
                                 env={**os.environ, "PYTHONPATH": str(codes[name])}, cwd=codes[name],
                                 capture_output=True, text=True, timeout=args.duration + 300)
            if out.returncode:
                sys.exit(f"bench: the run of {name} failed: {out.stderr.strip()[-2000:]}")
            result = json.loads(out.stdout)
            results[name].append(result)
            print(f"round {round_number + 1} {name:<8} {result['rate']:>6.0f} appends/s  p50 {result['p50']:.1f}  "
                  f"p99 {result['p99']:.1f}  p99.9 {result['p999']:.1f}  max {result['max']:.0f} ms; writers held "
                  f"{result['turns']}x, {result['held_ms']:.0f} ms in all, longest {result['longest_ms']:.0f} ms; "
                  f"log file {result['wal_mb']:.0f} MB", file=sys.stderr, flush=True)
    print(f"\n{args.rounds} rounds of {args.duration:g} s, 2 processes x 8 threads; medians (min-max)")
    for name, runs in results.items():
        def cell(key, digits=1):
            values = [run[key] for run in runs]
            return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"
        print(f"{name:<8} appends/s {cell('rate', 0)}  p99 {cell('p99')}  p99.9 {cell('p999')}  max {cell('max', 0)}"
              f"  held {cell('turns', 0)}x  longest {cell('longest_ms', 0)} ms  in all {cell('held_ms', 0)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
