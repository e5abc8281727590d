"""Several `bchooks poll` processes on one store share the shops: every shop polled, never by two at once, a killed
poller's shop taken over after its lease, a stopped one's at once, `--account` pinned. Real processes (a sandbox
with four shops, the pollers), both engines.

Who polled which shop when: each poller logs `shop S: taken by NAME` once its lease is committed and `shop S:
released by NAME` before it lets go (the `bchooks.pollers` logger at DEBUG), so a logged interval lies within the
lease: two intervals of one shop from two pollers that overlap are two pollers polling it at once."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bchooks.shops import ShopBook, connect_basic
from bchooks.store import open_store
from conftest import SandboxProcess, wait_until

PASSWORD = "sandbox-password"
AUTH = {"Authorization": "Bearer sandbox-token", "Accept": "application/vnd.api+json"}
SHOPS = ("1234567", "1234568", "1234569", "1234570")
ROOT = Path(__file__).resolve().parent.parent
# `bchooks poll` itself, its lease log switched on (the operator's way: `logging.getLogger("bchooks.pollers")`)
POLL = ("import logging, sys; logging.getLogger('bchooks.pollers').setLevel(logging.DEBUG); "
        "from bchooks.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def shops(tmp_path):
    """A sandbox with four shops of 30 orders each, all connected with their store passwords:
    (sandbox, environment of a poller)."""
    sandbox = SandboxProcess(tmp_path, "--shops", str(len(SHOPS)))
    try:
        book = ShopBook(tmp_path / "private" / "shops.json")
        for n, account in enumerate(SHOPS):
            requests.post(f"{sandbox.url}/sandbox/events", headers=AUTH, timeout=30,
                          json={"type": "order.created", "count": 30, "account_id": account}).raise_for_status()
            connect_basic(sandbox.url, "sandbox-shop" + (f"-{n + 1}" if n else ""), PASSWORD, book)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")},
               "BCHOOKS_SHOPS": str(book.path), "BCHOOKS_POLL_EVERY": "1", "BCHOOKS_POLL_LEASE": "1.5",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        yield sandbox, env
    finally:
        sandbox.stop()


class Pollers:
    """The `bchooks poll` processes of a test, each logging to a file of its own; stopped by pid at the end."""

    def __init__(self, folder, env, db):
        self.folder, self.env, self.db = Path(folder), {**env, "BCHOOKS_DB": db}, db
        self.processes, self.logs, self.killed = {}, {}, {}

    def start(self, key, *args, **env):
        self.logs[key] = self.folder / f"poller-{key}.log"
        with open(self.logs[key], "wb") as log:
            self.processes[key] = subprocess.Popen([sys.executable, "-c", POLL, "poll", *args], cwd=self.folder,
                                                   env={**self.env, **env}, stdout=log, stderr=log)

    def name(self, key):
        """The poller's name (it says it as it starts)."""
        def said():
            for line in self.text(key).splitlines():
                if " bchooks.pollers poller " in line and ": polling every " in line:
                    return line.split(" bchooks.pollers poller ")[1].split(": polling every ")[0]
            return None
        return wait_until(said, deadline=30)

    def text(self, key):
        return self.logs[key].read_text(errors="replace")

    def kill(self, key):
        self.processes[key].send_signal(signal.SIGKILL)
        self.processes[key].wait()
        self.killed[key] = time.time()

    def terminate(self, key):
        self.processes[key].send_signal(signal.SIGTERM)
        return self.processes[key].wait(timeout=20)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def intervals(self, key):
        """[(shop, taken, released)] of this poller, in unix seconds; a poll cut by kill -9 ends at the kill."""
        polls, open_ = [], {}
        for line in self.text(key).splitlines():
            if " bchooks.pollers shop " not in line:
                continue
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            shop = line.split(" bchooks.pollers shop ")[1].split(":")[0]
            if ": taken by " in line:
                open_[shop] = stamp
            elif ": released by " in line:
                polls.append((shop, open_.pop(shop), stamp))
        if key in self.killed:
            polls += [(shop, taken, self.killed[key]) for shop, taken in open_.items()]
        else:
            polls += [(shop, taken, float("inf")) for shop, taken in open_.items()]
        return polls

    def polled(self, key, shop=None, after=0.0):
        """How many polls this poller ended (of `shop`), taken after `after`."""
        return sum(1 for s, taken, released in self.intervals(key)
                   if released != float("inf") and (shop is None or s == shop) and taken > after)

    def taken(self, key, shop):
        """When this poller first took `shop`, or None."""
        return min((taken for s, taken, _ in self.intervals(key) if s == shop), default=None)

    def assert_one_at_a_time(self):
        """No shop was held by two pollers at once (strict: the logs keep milliseconds, and one poller's release
        line comes before the other's take)."""
        every = [(key, *poll) for key in self.logs for poll in self.intervals(key)]
        for key, shop, start, end in every:
            for other, shop2, start2, end2 in every:
                if other != key and shop2 == shop:
                    assert not (start < end2 and start2 < end), (shop, key, start, end, other, start2, end2)

    def leases(self):
        with open_store(self.db, create=False) as store:
            return {row["account_id"]: row for row in store.leases.status()}


@pytest.fixture
def pollers(tmp_path, shops, engine_db):
    started = Pollers(tmp_path, shops[1], engine_db)
    yield started
    started.stop()


def test_two_pollers_share_the_shops_one_at_a_time_and_one_left_polls_them_all(shops, pollers):
    sandbox, _ = shops
    pollers.start("a")
    pollers.start("b")
    # (a first poll walks each shop's whole history, with two processes taking turns at one SQLite file: on a busy
    # machine that took over 30 s; the wait ends as soon as it is done)
    wait_until(lambda: all(pollers.polled("a", s) + pollers.polled("b", s) for s in SHOPS)
               and pollers.polled("a") and pollers.polled("b"), deadline=120)
    # a walk longer than the lease (a 429 waited out for 2 s, the lease 1.5 s): renewed, so no one else takes it
    requests.post(f"{sandbox.url}/sandbox/faults", json={"status": 429, "count": 1, "retry_after": 2}, headers=AUTH)
    wait_until(lambda: any(end - start > 1.5 for key in "ab" for _, start, end in pollers.intervals(key)
                           if end != float("inf")), deadline=30)
    pollers.kill("a")  # wherever it was: a shop it held is taken over once its lease runs out
    killed = pollers.killed["a"]
    wait_until(lambda: all(pollers.polled("b", s, after=killed) for s in SHOPS), deadline=90)
    pollers.assert_one_at_a_time()
    assert pollers.terminate("b") == 0
    assert {s: row["holder"] for s, row in pollers.leases().items()} == {s: None for s in SHOPS}
    assert "Traceback" not in pollers.text("a") + pollers.text("b")


def test_a_pinned_poller_holds_its_shop_a_stopped_one_lets_go_at_once_a_killed_one_after_its_lease(
        shops, pollers, tmp_path):
    first, second = SHOPS[:2]
    pollers.start("pinned", "--account", first, BCHOOKS_POLL_LEASE="1")
    pollers.start("stopped", "--account", second, BCHOOKS_POLL_LEASE="600")
    pollers.name("pinned"), pollers.name("stopped")  # (holding their shops before the shared poller starts)
    pollers.start("shared")
    wait_until(lambda: pollers.polled("pinned", first) >= 2 and pollers.polled("stopped", second)
               and all(pollers.polled("shared", s) for s in SHOPS[2:]), deadline=30)
    assert pollers.taken("shared", first) is None and pollers.taken("shared", second) is None  # never the pinned
    # SIGTERM: a pinned poller lets its shop go as it stops (its lease had 10 minutes left): taken over at once
    assert pollers.terminate("stopped") == 0
    assert pollers.leases()[second]["holder"] in (None, pollers.name("shared"))
    stopped = time.time()
    wait_until(lambda: pollers.polled("shared", second, after=stopped), deadline=30)
    # `poll --once` polls the others now, and names the pinned shop's poller after waiting out its lease
    once = subprocess.run([sys.executable, "-m", "bchooks", "poll", "--once"], cwd=tmp_path, env=pollers.env,
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert f"shop {first}: skipped, being polled by {pollers.name('pinned')}" in once.stderr
    assert all(any(line.startswith(f"shop {s}: ") and "orders read" in line for line in once.stderr.splitlines())
               for s in SHOPS[1:])
    # kill -9: the pinned shop stays its poller's until the lease runs out, then the shared poller takes it
    pollers.kill("pinned")
    lease = pollers.leases()[first]
    assert lease["holder"] == pollers.name("pinned") and lease["held_for"] > 0
    ends = pollers.killed["pinned"] + lease["held_for"]
    wait_until(lambda: pollers.polled("shared", first), deadline=30)
    assert pollers.taken("shared", first) >= ends - 0.05  # (the log's milliseconds against the database's clock)
    pollers.assert_one_at_a_time()


CLAIM_ALL = """
import json, sys, time
from bchooks.store import open_store
db, name, start_at, accounts = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
with open_store(db) as store:
    time.sleep(max(0.0, start_at - time.time()))
    mine = []  # (a new holder name each claim: a holder's own shop is its to take again)
    while len(mine) <= len(accounts) and (shop := store.leases.claim(f"{name}-{len(mine)}", accounts, lease=60,
                                                                     every=3600)) is not None:
        mine.append(shop)
print(json.dumps(mine))
"""


def test_pollers_claiming_at_once_take_each_shop_once_and_a_lease_run_out_is_lost(engine_db):
    """The claim is one atomic statement: four poller processes claiming at once take forty shops between them, each
    once; a lease run out goes to the next poller, and its old holder can no longer renew or release it."""
    import json
    accounts = [f"shop{n:02}" for n in range(40)]
    open_store(engine_db).close()  # (created once, before the pollers race)
    start_at = time.time() + 1.5  # (the four processes started by then, as a rule: each claims all the same)
    processes = {f"p{n}": subprocess.Popen([sys.executable, "-c", CLAIM_ALL, engine_db, f"p{n}", str(start_at),
                                            *accounts], stdout=subprocess.PIPE, text=True,
                                           env={**os.environ, "PYTHONPATH": str(ROOT)})
                 for n in range(4)}
    try:
        taken = {name: json.loads(process.communicate(timeout=60)[0]) for name, process in processes.items()}
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
    assert sorted(shop for mine in taken.values() for shop in mine) == accounts  # each shop once
    with open_store(engine_db) as store:
        leases = store.leases
        holder = next(f"{name}-{mine.index('shop00')}" for name, mine in taken.items() if "shop00" in mine)
        assert leases.claim("late", accounts, lease=60, every=0) is None  # all held
        assert leases.release(holder, "shop00", polled=True)
        assert leases.claim("late", accounts, lease=60, every=3600) is None  # free, but polled just now: not due
        assert leases.claim("late", accounts, lease=60, every=0) == "shop00"
        assert not leases.release(holder, "shop00", polled=True)  # no longer its own
        assert leases.hold("late", "shop00", lease=-1)  # (a lease that has run out)
        assert leases.claim("next", ["shop00"], lease=60, every=0) == "shop00"
        assert leases.renew("late", 60) == 0 and not leases.release("late", "shop00", polled=True)
        assert leases.release_all("next") == 1 and leases.status(["shop00"])[0]["holder"] is None
