#!/usr/bin/env python3
"""Receiver benchmark: the guide's Express receiver vs `bchooks serve`, with and without storage, under wrk.

    .venv/bin/python bench/receiver.py                       # 3 rounds x (16, 64 connections), 10 s each
    .venv/bin/python bench/receiver.py --rounds 1 --duration 3 --skip-reference
    .venv/bin/python bench/receiver.py --postgresql          # also on PostgreSQL: one receiver, then two
    .venv/bin/python bench/receiver.py --db postgresql://bchooks@127.0.0.1/bench   # ... on a server of yours
    .venv/bin/python bench/receiver.py --connections 16 --compare before=../old   # also another checkout's code

With `--compare NAME=FOLDER` (repeatable) the same load also goes to `bchooks serve` (SQLite) running the code of
another checkout, in the same rounds as this one's, so that before and after are measured at the same moments.

With `--postgresql` (or a `--db` URL) the same load also goes to `bchooks serve` on PostgreSQL, one receiver, then
two receivers on one cluster (each behind its own port, the load split between two wrk processes, as a load
balancer would): a throwaway cluster in a temporary folder (tools/pgcluster.py), or the server of `--db`, a fresh
database per run.

Needs wrk (Debian's `wrk`) and, for the reference, node and npm (express is installed into a temporary folder).
Every target gets the same signed, compact bodies (a product drop: order.created and product.updated events, about
1.3 KB on average), all distinct, with both signature headers. After each bchooks run with storage, the rows added
must equal the 2xx answers. Figures with non-2xx answers are flagged and not to be trusted.
"""

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bchooks.receiving.signing import sign  # noqa: E402
from bchooks.simulator.shop import Shop  # noqa: E402
from bchooks.kit.stack import end_child  # noqa: E402

SECRET = "bench-secret"
LUA = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  ok = 0
  other = 0
  stride = tonumber(args[1])
  offset = tonumber(args[2] or "0")
end
function request()
  counter = counter + 1
  local i = (offset + id + (counter - 1) * stride) % #bodies + 1
  return wrk.format("POST", "/webhook", {["Host"] = "127.0.0.1", ["Content-Type"] = "application/json",
    ["X-Webhook-Signature"] = sigs[i], ["X-Bigcartel-Signature"] = sigs[i]}, bodies[i])
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local total_ok, total_other, sent = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
    sent = sent + thread:get("counter")
  end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "ok": %d, "non2xx": %d, "errors": %d, "seconds": %f, ' ..
    '"p50_ms": %f, "p99_ms": %f, "sent": %d, "bodies": %d}\n', summary.requests, total_ok, total_other,
    e.connect + e.read + e.write + e.timeout, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, sent, #bodies))
end
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_script(folder, count):
    shop = Shop(11, order_prefix="W")
    bodies = []
    for _ in range(count // 2):
        bodies += shop.events("order.created", 1) + shop.events("product.updated", 1)
    for body in bodies:  # the guide signs JSON.stringify(req.body): bodies must survive it byte for byte
        assert json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode() == body
        assert b"]==]" not in body
    lines = ["bodies = {" + ",".join(f"[==[{b.decode()}]==]" for b in bodies) + "}",
             "sigs = {" + ",".join(f'"{sign(b, SECRET)}"' for b in bodies) + "}", LUA]
    path = folder / "post.lua"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, sum(map(len, bodies)) / len(bodies)


def wait(url, process, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise TimeoutError(url)


class Target:
    def __init__(self, name, folder):
        self.name, self.folder = name, folder

    def start(self, port):
        raise NotImplementedError

    def stop(self):
        end_child(self.process)
        self.log.close()


class Reference(Target):
    def prepare(self):
        app = self.folder / "reference"
        shutil.copytree(ROOT / "bench" / "reference", app)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=app, check=True)
        self.app = app

    def start(self, port):
        self.log = open(self.folder / "reference-bodies.log", "wb")
        self.process = subprocess.Popen(["node", "server.js"], cwd=self.app, stdout=self.log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "SECRET": SECRET,
                                                                       "PORT": str(port)})
        wait(f"http://127.0.0.1:{port}/healthz", self.process)

    def rows(self):
        return None


class Bchooks(Target):
    def __init__(self, name, folder, store=True, code=ROOT):
        super().__init__(name, folder)
        self.store = store
        self.code = code  # the checkout whose `bchooks` package serves
        self.runs = 0

    def prepare(self):
        pass

    def start(self, port):
        self.runs += 1
        self.db = self.folder / f"{self.name}-{self.runs}.db"
        self.log = open(self.folder / f"{self.name}.log", "ab")
        args = [sys.executable, "-m", "bchooks", "serve", "--port", str(port), "--db", str(self.db)]
        if not self.store:
            args.append("--no-store")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.code,
                                        env={**os.environ, "BCHOOKS_SECRET": SECRET, "PYTHONPATH": str(self.code)})
        wait(f"http://127.0.0.1:{port}/healthz", self.process)

    def rows(self):
        if not self.store:
            return None
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()


class BchooksPostgres(Target):
    """`bchooks serve` on PostgreSQL: `receivers` processes (2 workers each) on one database, a fresh one a run."""

    def __init__(self, name, folder, server, receivers=1):
        super().__init__(name, folder)
        self.server, self.receivers, self.runs = server, receivers, 0

    def prepare(self):
        pass

    def start(self, port):
        import psycopg

        from bchooks.store import open_store
        self.runs += 1
        self.database = f"bench_{self.name.replace('-', '_')}_{self.runs}_{os.getpid()}"
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.database}")
        self.db = self.server.rsplit("/", 1)[0] + "/" + self.database
        open_store(self.db).close()
        self.log = open(self.folder / f"{self.name}.log", "ab")
        self.ports = [port] + [free_port() for _ in range(self.receivers - 1)]
        self.processes = [subprocess.Popen([sys.executable, "-m", "bchooks", "serve", "--port", str(p), "--db",
                                            self.db], stdout=self.log, stderr=subprocess.STDOUT,
                                           env={**os.environ, "BCHOOKS_SECRET": SECRET}) for p in self.ports]
        for p, process in zip(self.ports, self.processes):
            wait(f"http://127.0.0.1:{p}/healthz", process)

    def stop(self):
        for process in self.processes:
            end_child(process)
        self.log.close()

    def rows(self):
        import psycopg
        with psycopg.connect(self.db) as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def _wrk(port, script, connections, duration, threads, offset):
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                             str(script), f"http://127.0.0.1:{port}/webhook", "--", str(threads), str(offset)],
                            stdout=subprocess.PIPE, text=True)


def _result(out):
    return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


def run(target, script, connections, duration):
    port = free_port()
    target.start(port)
    try:
        ports = getattr(target, "ports", [port])
        if len(ports) == 1:
            loads = [_wrk(port, script, connections, duration, 2, 0)]
        else:  # one wrk a receiver, the connections and the bodies split between them (a load balancer's share)
            loads = [_wrk(p, script, connections // len(ports), duration, 1, n * 40000) for n, p in enumerate(ports)]
        outs = [load.communicate()[0] for load in loads]
        if any(load.returncode for load in loads):
            raise RuntimeError("wrk failed")
    finally:
        target.stop()
    parts = [_result(out) for out in outs]
    result = {key: sum(part[key] for part in parts) for key in ("requests", "ok", "non2xx", "errors", "sent")}
    result["seconds"] = max(part["seconds"] for part in parts)
    result["bodies"] = parts[0]["bodies"]
    result["p50_ms"] = max(part["p50_ms"] for part in parts)  # (the slower receiver's: a bound, not a blend)
    result["p99_ms"] = max(part["p99_ms"] for part in parts)
    result["rps"] = result["ok"] / result["seconds"]
    result["rows"] = target.rows()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--bodies", type=int, default=80000, help="distinct bodies (more than any run sends)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help="also on a throwaway PostgreSQL cluster")
    parser.add_argument("--db", help="also on this PostgreSQL server (a postgresql:// URL whose user may create "
                        "databases)")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=FOLDER",
                        help="also `bchooks serve` (SQLite) from the checkout in FOLDER, reported as NAME")
    args = parser.parse_args()
    compare = [spec.partition("=") for spec in args.compare]
    for name, equals, code in compare:
        if not equals or not name or not (Path(code) / "bchooks" / "__init__.py").is_file():
            parser.error(f"--compare wants NAME=FOLDER, FOLDER a bchooks checkout: {name}{equals}{code}")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="bench-receiver-"))
    cluster = None
    try:
        script, size = write_script(folder, args.bodies)
        targets = [] if args.skip_reference else [Reference("reference", folder)]
        targets += [Bchooks("bchooks", folder), Bchooks("bchooks-no-store", folder, store=False)]
        targets += [Bchooks(name, folder, code=Path(code).resolve()) for name, _, code in compare]
        server = args.db
        if args.postgresql and not server:
            sys.path.insert(0, str(ROOT / "tools"))
            from pgcluster import Cluster
            cluster = Cluster(folder / "postgresql").start()
            cluster.psql("CREATE ROLE bchooks LOGIN CREATEDB")
            server = cluster.url("postgres")
        if server:
            targets += [BchooksPostgres("bchooks-postgresql", folder, server),
                        BchooksPostgres("bchooks-postgresql-x2", folder, server, receivers=2)]
        for target in targets:
            target.prepare()
        connections = [int(c) for c in args.connections.split(",")]
        results = {(t.name, c): [] for t in targets for c in connections}
        trouble = []
        for round_number in range(args.rounds):
            order = targets if round_number % 2 == 0 else targets[::-1]
            for c in connections:
                for target in order:
                    result = run(target, script, c, args.duration)
                    results[(target.name, c)].append(result)
                    print(f"round {round_number + 1} {target.name:<17} c={c:<3} {result['rps']:>7.0f} req/s  "
                          f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  non-2xx "
                          f"{result['non2xx']}  errors {result['errors']}"
                          + (f"  rows {result['rows']}" if result["rows"] is not None else ""), file=sys.stderr)
                    if result["non2xx"] or result["errors"]:
                        trouble.append(f"{target.name} c={c}: {result['non2xx']} non-2xx, {result['errors']} errors")
                    # wrk stops counting with up to c requests in flight: their rows may be committed unseen
                    if result["rows"] is not None and not 0 <= result["rows"] - result["ok"] <= c:
                        trouble.append(f"{target.name} c={c}: {result['rows']} rows for {result['ok']} 2xx answers")
                    if result["sent"] > result["bodies"]:
                        trouble.append(f"{target.name} c={c}: sent {result['sent']} > {result['bodies']} bodies")
        print(f"\nbodies: {args.bodies:,} distinct, {size:.0f} bytes on average; {args.rounds} rounds of "
              f"{args.duration} s; medians")
        print(f"{'target':<18}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
              f"{'× ref req/s':>13}{'× ref p99':>11}{'× no-store':>12}")
        for c in connections:
            medians = {t.name: {k: statistics.median(r[k] for r in results[(t.name, c)])
                                for k in ("rps", "p50_ms", "p99_ms", "non2xx")} for t in targets}
            for t in targets:
                m = medians[t.name]
                ref = medians.get("reference")
                own = medians["bchooks-no-store"]
                print(f"{t.name:<18}{c:>6}{m['rps']:>9.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}{m['non2xx']:>9.0f}"
                      f"{(m['rps'] / ref['rps']) if ref else float('nan'):>13.2f}"
                      f"{(m['p99_ms'] / ref['p99_ms']) if ref else float('nan'):>11.2f}"
                      f"{m['rps'] / own['rps']:>12.2f}")
        if trouble:
            print("\nNOT TRUSTWORTHY:\n  " + "\n  ".join(trouble))
            return 1
        print("\nall runs: every answer 2xx; with storage, rows added = 2xx answers (plus at most the requests still"
              " in flight when wrk stopped counting)")
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
