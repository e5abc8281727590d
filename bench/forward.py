"""Forwarding: `bchooks forward`'s rate by concurrency, and how long `bchooks listen` takes from commit to delivery.

    python bench/forward.py [--events 2000] [--delay-ms 5] [--rounds 3]

Part 1: `--events` stored events sent to an HTTP sink on 127.0.0.1 that answers after `--delay-ms` (an app doing a
little work), with 1, 4 and 8 connections (`forwarding.forward`, as the command runs it); events/s and p99 per
round, medians. Part 2: a `Listener` following a SQLite store (polling, 0.5 s: the default) and a PostgreSQL store
(a throwaway cluster, tools/pgcluster.py: woken by NOTIFY) while 40 events are appended 50 ms apart; the time from
each append's return to the sink's receipt, p50 and max. Ratios side by side; nothing is asserted.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from bchooks.forwarding import Listener, Target, forward, signer  # noqa: E402
from bchooks.simulator.shop import Shop  # noqa: E402
from bchooks.store import open_store  # noqa: E402
from bchooks.wire import parse_envelope  # noqa: E402


class Sink:
    def __init__(self, delay):
        sink = self
        self.arrived = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                sink.arrived[int(self.headers["X-Bchooks-Event-Id"])] = time.perf_counter()
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def rates(db, events, delay, rounds):
    """{concurrency: [(events/s, p99 ms)]} of `forward` over every event of the store at `db`."""
    sink = Sink(delay)
    target = Target(sink.url, signer("bigcartel", "bench-secret"))
    found = {1: [], 4: [], 8: []}
    try:
        with open_store(db) as store:
            for round_number in range(rounds):
                for concurrency in (found if round_number % 2 == 0 else reversed(list(found))):
                    started = time.perf_counter()
                    summary = forward(store.iter_events(), target, concurrency=concurrency)
                    seconds = time.perf_counter() - started
                    assert summary.ok == summary.sent == events, summary
                    found[concurrency].append((events / seconds, summary.percentile(99)))
                    print(f"round {round_number + 1}, {concurrency} connection(s): {events / seconds:,.0f} events/s",
                          file=sys.stderr)
    finally:
        sink.stop()
    return found


def listen_latency(db, bodies):
    """Seconds from each append's return to the sink's receipt, for a listener following the store at `db`."""
    sink = Sink(0)
    stop = threading.Event()
    appended = {}
    try:
        with open_store(db) as store:
            listener = Listener(store, Target(sink.url, signer("none")), poll=0.5)
            listener.start()
            thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
            thread.start()
            time.sleep(1.0)  # (the listener waiting, as it would be)
            for body in bodies:
                event_id = store.append(body, parse_envelope(body)).id
                appended[event_id] = time.perf_counter()
                time.sleep(0.05)
            deadline = time.monotonic() + 10
            while len(sink.arrived) < len(appended) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            thread.join(5)
    finally:
        sink.stop()
    return [sink.arrived[i] - appended[i] for i in appended if i in sink.arrived], len(appended)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--delay-ms", dest="delay_ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from pgcluster import Cluster
    folder = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    cluster = None
    shop = Shop(9, order_prefix="FW")
    try:
        db = str(folder / "events.db")
        with open_store(db) as store:
            store.append_many([(body, parse_envelope(body)) for body in shop.events("order.created", args.events)])
        found = rates(db, args.events, args.delay_ms / 1000, args.rounds)
        cluster = Cluster(folder / "postgresql")
        cluster.start()
        cluster.psql("CREATE ROLE bchooks LOGIN CREATEDB")
        latencies = {}
        for engine in ("sqlite", "postgresql"):
            where = str(folder / "listen.db") if engine == "sqlite" else cluster.create_database("listen")
            latencies[engine] = listen_latency(where, shop.events("order.created", 40))
    finally:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n`forward`: {args.events:,} events, a sink answering after {args.delay_ms:g} ms, {args.rounds} rounds; "
          "medians (min-max)")
    print("| connections | events/s | × 1 connection | p99 ms |\n| ---: | ---: | ---: | ---: |")
    base = statistics.median(rate for rate, _ in found[1])
    for concurrency, runs in found.items():
        values = [rate for rate, _ in runs]
        print(f"| {concurrency} | {statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) | "
              f"{statistics.median(values) / base:.2f} | {statistics.median(p99 for _, p99 in runs):.1f} |")
    print("\n`listen`: 40 events appended 50 ms apart; from the append's return to the sink's receipt")
    print("| engine | delivered | p50 ms | max ms |\n| --- | ---: | ---: | ---: |")
    for engine, (values, sent) in latencies.items():
        print(f"| {engine} | {len(values)}/{sent} | {statistics.median(values) * 1000:.0f} | "
              f"{max(values) * 1000:.0f} |")


if __name__ == "__main__":
    main()
