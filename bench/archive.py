#!/usr/bin/env python3
"""Archive benchmark: `bchooks archive` of about a million events out of a large SQLite store while the receiver
takes a steady load, against the same load without an archive running (side by side, one run).

    .venv/bin/python bench/archive.py --db bench1m-archive.db                  # the store is changed: a copy!
    .venv/bin/python bench/archive.py --db big.db --events 1000000 --rate 100 --vacuum

Phases, one after the other on the same store and receiver (`bchooks serve`, 2 workers):
  1. baseline   the load alone for --baseline seconds
  2. archive    the load while `bchooks archive --before T` runs (T: the --events+1-th `received_at` in time
                order), split into its writing (and verifying) and its deleting (and space) parts; its wall time, its peak memory (RSS, from the kernel's accounting of the child),
                the store's file size and free pages before and after
  3. vacuum     (with --vacuum) the load while `bchooks archive --vacuum` rewrites the file (nothing left to archive)
The load: --rate signed requests a second (new, distinct order events) from 8 threads, each request's latency
recorded; 503s counted (the receiver answers 503 when it cannot get the writers' turn within the busy timeout).
"""

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bchooks.kit.stack import end_child  # noqa: E402
from bchooks.receiving.signing import sign  # noqa: E402

SECRET = "bench-secret"


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Load:
    """--rate requests a second from 8 threads until stopped; latencies (ms) and statuses per phase."""

    def __init__(self, url, rate):
        self.url, self.rate = url, rate
        self.phase = "warm-up"
        self.samples: dict = {}
        self._stop = threading.Event()
        self._counter = iter(range(10 ** 9))
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(8)]

    def _run(self):
        session = requests.Session()
        interval = 8 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                n = next(self._counter)
            body = json.dumps({"account_id": "bench", "type": "order.created",
                               "payload": {"id": f"ARCH-{os.getpid()}-{n}", "updated_at": "2026-12-03T12:00:00.000Z",
                                           "total": "12.00"}}, separators=(",", ":")).encode()
            headers = {"X-Webhook-Signature": sign(body, SECRET), "Content-Type": "application/json"}
            phase = self.phase
            started = time.perf_counter()
            try:
                status = session.post(self.url, data=body, headers=headers, timeout=30).status_code
            except requests.RequestException:
                status = 0
            elapsed = (time.perf_counter() - started) * 1000
            self.samples.setdefault(phase, []).append((elapsed, status))
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=35)

    def summary(self, phase):
        rows = self.samples.get(phase, [])
        ok = sorted(ms for ms, status in rows if 200 <= status < 300)
        q = statistics.quantiles(ok, n=100) if len(ok) > 2 else [float("nan")] * 99
        return {"requests": len(rows), "2xx": len(ok), "non-2xx": len(rows) - len(ok),
                "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1), "max_ms": round(max(ok), 1) if ok else None}


def space(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return {"file_bytes": os.path.getsize(db), "free_bytes": page * free, "events": events}


def read_state(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT state FROM archives ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def timed(command, env, watch=None):
    """Run a child; (seconds, its peak RSS in MB, its output). `watch()` is called twice a second meanwhile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while child.poll() is None:
        if watch:
            watch()
        time.sleep(0.5)
    out, err = child.communicate()
    result = subprocess.CompletedProcess(command, child.returncode, out, err)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # (the largest child so far: the archive's)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return seconds, round(max(peak, before) / 1024, 1), result.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a SQLite store to archive (it is changed: use a copy)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to archive (the oldest)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second during every phase")
    parser.add_argument("--baseline", type=float, default=60.0, help="seconds of load without an archive")
    parser.add_argument("--vacuum", action="store_true", help="also a phase with `archive --vacuum` (VACUUM)")
    parser.add_argument("--out", default="", help="write the results as JSON here too")
    args = parser.parse_args()
    db = str(Path(args.db).resolve())
    folder = Path(db).parent / f"{Path(db).name}-archive"
    folder.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BCHOOKS_SECRET": SECRET, "BCHOOKS_DB": db}
    python = sys.executable

    started = time.monotonic()  # (opening migrates an older store: before anything is measured)
    subprocess.run([python, "-m", "bchooks", "check"], env=env, check=True, capture_output=True)
    print(f"store opened (and migrated) in {time.monotonic() - started:.1f} s", flush=True)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    row = conn.execute("SELECT received_at FROM events ORDER BY received_at LIMIT 1 OFFSET ?",  # (not by id: a
                       (args.events,)).fetchone()  # store filled by several writers interleaves received_at)
    conn.close()
    before = row[0]
    results = {"before": before, "space_before": space(db)}
    print(f"archiving what was received before {before}: {results['space_before']}", flush=True)

    port = free_port()
    log = open(f"{db}.receiver.log", "ab")
    receiver = subprocess.Popen([python, "-m", "bchooks", "serve", "--port", str(port), "--workers", "2"], env=env,
                                stdout=log, stderr=log)
    load = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or receiver.poll() is not None:
                    raise SystemExit("the receiver did not start")
                time.sleep(0.1)
        load = Load(f"http://127.0.0.1:{port}/webhook", args.rate)
        load.start()
        time.sleep(5)
        load.phase = "baseline"
        time.sleep(args.baseline)
        load.phase = "archive-writing"
        states = {}

        def watch():  # (the run's state in the store: writing, then deleting and giving space back)
            state = read_state(db)
            if state == "deleting" and load.phase == "archive-writing":
                load.phase = "archive-deleting"
                states["writing_seconds"] = round(time.monotonic() - began, 1)
        began = time.monotonic()
        seconds, peak, output = timed([python, "-m", "bchooks", "archive", "--before", before, "--to", str(folder)],
                                      env, watch)
        results["archive"] = {"seconds": round(seconds, 1), "peak_rss_mb": peak, "output": output, **states}
        results["space_after"] = space(db)
        print(output, flush=True)
        if args.vacuum:
            load.phase = "vacuum"
            seconds, peak, output = timed([python, "-m", "bchooks", "archive", "--before", before, "--to",
                                           str(folder), "--vacuum"], env)
            results["vacuum"] = {"seconds": round(seconds, 1), "output": output}
            results["space_after_vacuum"] = space(db)
        load.phase = "done"
    finally:
        if load is not None:
            load.stop()
        end_child(receiver, 35)
        log.close()
    results["space_at_end"] = space(db)  # (the receiver stopped: its last connection checkpointed the log)
    load.samples["archive (all)"] = load.samples.get("archive-writing", []) + load.samples.get("archive-deleting", [])
    results["latency"] = {phase: load.summary(phase) for phase in ("baseline", "archive-writing", "archive-deleting",
                                                                   "archive (all)", "vacuum")
                          if phase in load.samples}
    results["archive_bytes"] = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
