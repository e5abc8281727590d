#!/usr/bin/env python3
"""Polling benchmark: what a poll cycle costs in time and API requests, against a sandbox process on loopback.

    .venv/bin/python bench/poll.py                      # 10,000 orders, 500 products
    .venv/bin/python bench/poll.py --orders 2000 --products 100

Cycles: the first full sync, a cycle with nothing changed, a cycle with 250 changed orders, and a second full
sync into a fresh store (it must store every order and product once, like the first). Prints wall time, REST
reads (the sandbox counts them) and events stored per cycle, and the goals: a no-change cycle costs one orders
request (plus the catalogue walk, which the API cannot filter); k changed orders cost about k/100 + 1.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bchooks import EventStore  # noqa: E402
from bchooks.shops.poller import OVERLAP, poll_shop  # noqa: E402
from bchooks.shops import ShopBook, connect_basic  # noqa: E402
from bchooks.kit.stack import end_child  # noqa: E402

AUTH = {"Authorization": "Bearer sandbox-token"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reads(url):
    return requests.get(f"{url}/sandbox/healthz", timeout=10).json()["reads"]


def trigger(url, kind, count):
    while count > 0:
        batch = min(count, 10000)
        requests.post(f"{url}/sandbox/events", json={"type": kind, "count": batch}, headers=AUTH,
                      timeout=600).raise_for_status()
        count -= batch


def cycle(name, store, shop, url, overlap):
    before, started = reads(url), time.perf_counter()
    result = poll_shop(store, shop, overlap=overlap)
    seconds = time.perf_counter() - started
    spent = reads(url) - before
    print(f"{name:<32} {seconds:8.2f} s  {spent:6d} requests  {result.orders_stored:6d} orders stored  "
          f"{result.products_stored + result.products_deleted:5d} products stored", flush=True)
    return result, spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--changed", type=int, default=250)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bchooks-bench-poll-"))
    try:
        measure(args, folder)
    finally:  # the stores and the sandbox's files removed however the run ends
        shutil.rmtree(folder, ignore_errors=True)


def measure(args, folder):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "sandbox.log", "wb")
    sandbox = subprocess.Popen([sys.executable, "-m", "bchooks", "sandbox", "--port", str(port)], cwd=folder,
                               env={**os.environ, "BCHOOKS_SECRET": "bench"}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/sandbox/healthz", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        started = time.perf_counter()
        trigger(url, "order.created", args.orders)
        trigger(url, "product.created", max(0, args.products - 20))
        print(f"sandbox: {args.orders:,} orders, {args.products} products made in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        shop = connect_basic(url, "sandbox-shop", "sandbox-password", ShopBook(folder / "shops.json"))
        # the sandbox made every order within the last seconds, so the poller's default overlap (two minutes before
        # the cursor) would read them all again each cycle; a real shop's cycle five minutes later re-reads only the
        # last two minutes' orders. So the cycles run with no overlap (and once with the default, to show it)
        no_overlap = timedelta(0)
        with EventStore(folder / "events.db") as store:
            first, _ = cycle("first full sync", store, shop, url, no_overlap)
            same, same_requests = cycle("nothing changed", store, shop, url, no_overlap)
            cycle("nothing changed (2-min overlap)", store, shop, url, OVERLAP)
            trigger(url, "order.updated", args.changed)
            changed, changed_requests = cycle(f"{args.changed} orders changed", store, shop, url, no_overlap)
        with EventStore(folder / "fresh.db") as fresh:
            again, _ = cycle("full sync, fresh store", fresh, shop, url, no_overlap)
        product_pages = -(-args.products // 100)
        print(f"\ngoals: nothing changed: {same_requests - product_pages} orders request(s) (goal 1) + "
              f"{product_pages} catalogue pages; {args.changed} changed: {changed_requests - product_pages} orders "
              f"requests (goal about {args.changed // 100 + 1}); "
              f"first sync stored {first.orders_stored} orders and {first.products_stored} products, the fresh one "
              f"{again.orders_stored} and {again.products_stored}; unchanged cycle stored "
              f"{same.orders_stored + same.products_stored}", flush=True)
    finally:
        end_child(sandbox)
        log.close()


if __name__ == "__main__":
    main()
