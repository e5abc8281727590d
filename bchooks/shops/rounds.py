"""Pollers sharing the shops: which shop this poller polls next, polling it, letting it go.

Any number of `bchooks poll` processes may run on one store, on one host or several. None is told its shops: each
takes the next shop that is due and that no other poller holds (a lease in the store, `store.leases`), polls it,
marks it polled and lets it go, then takes the next; when none is due it sleeps until one is. So the shops divide
between the pollers by themselves, a shop is polled by one poller at a time, and every shop is polled every
`every` seconds as long as one poller lives.

- **Renewed while polling.** A thread renews this poller's leases every third of `lease`, however long a walk
  takes; a lease runs out only when the process is dead or frozen (or the store unreachable) for two thirds of it.
- **A dead poller's shop** (kill -9, a host lost) is free once its lease runs out, and the next poller takes it.
- **Stopping** (SIGTERM, Ctrl-C) releases every lease at once: the others take those shops without waiting.
- **A pinned poller** (`--account`) holds its one shop all the time it runs (renewed like the others), so no other
  poller polls it while it lives; it still waits for a poller that was polling that shop when it started, and once
  it dies or stops the shop goes back to the shared pollers. Two pinned to one shop: one polls, one waits.
- **With `once`** every shop is polled once now, due or not; one another poller holds is waited for until that
  lease could have run out (a killed poller's), then skipped if still held (its poller lives: said, not a failure).

Two pollers on one shop would do no harm to the data (an identical event body is stored once), only waste requests;
a lease lost to a frozen process can let that happen once, and the poller then says so.
"""

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..leasing import renewing
from ..errors import BchooksError
from ..secrecy import printable, redact
from .poller import PollResult, poll_shop


log = logging.getLogger("bchooks.pollers")

SHORTEST_WAIT = 0.05  # (a poller with nothing due never spins faster than this)


@dataclass
class Outcome:
    """What became of one shop this round: its `result`, or the `error` (one line, secrets redacted), or the
    `holder` of the lease that made this poller skip it (with `once`)."""

    account_id: str
    result: PollResult | None = None
    error: str | None = None
    holder: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def __str__(self) -> str:
        if self.error is not None:
            return f"shop {self.account_id}: {self.error}"
        if self.holder is not None:
            return f"shop {self.account_id}: skipped, being polled by {self.holder}"
        return str(self.result)


def poll_one(store, shop, *, stop: threading.Event, max_retry_after: float = 60.0) -> Outcome:
    """Poll one shop this poller holds; one shop failing never stops the others (the next round retries). The
    outcome is kept in the store for the alerts (`store.polls`)."""
    outcome = _poll(store, shop, stop=stop, max_retry_after=max_retry_after)
    try:
        store.polls.record(shop.account_id, ok=not outcome.failed, error=outcome.error)
    except BchooksError as failure:  # (a store that cannot take it: one line, and polling goes on)
        log.warning("shop %s: the poll's outcome was not recorded: %s", shop.account_id, _line(failure))
    return outcome


def _poll(store, shop, *, stop: threading.Event, max_retry_after: float) -> Outcome:
    try:
        with shop.client(max_retry_after=max_retry_after, stop=stop) as client:
            result = poll_shop(store, shop, stop=stop, client=client)
        return Outcome(shop.account_id, result=result)
    except BchooksError as error:
        return Outcome(shop.account_id, error=_line(error))
    except Exception as error:  # (a defect of the kit's own: one line, and the other shops still polled)
        return Outcome(shop.account_id, error=_line(f"unexpected {type(error).__name__}: {error} (please report it)"))


def _line(error) -> str:
    return printable(redact(str(error)), limit=2000)


class Poller:
    """One poller among those sharing a store's shops. `every`: seconds between two polls of a shop; `lease`:
    seconds a hold lasts unless renewed; `pinned`: the one account this poller polls and holds (`--account`)."""

    def __init__(self, store, *, every: float, lease: float, pinned: str | None = None, name: str | None = None,
                 max_retry_after: float = 60.0) -> None:
        self.store = store
        self.every = every
        self.lease = lease
        self.pinned = pinned
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.max_retry_after = max_retry_after

    def __repr__(self) -> str:
        return f"Poller({self.name!r}, every={self.every:g}, lease={self.lease:g}, pinned={self.pinned!r})"

    def run(self, shops: list, *, stop: threading.Event, report: Callable[[Outcome], None],
            refresh: Callable[[], list] | None = None) -> None:
        """Poll the shops in turn with the other pollers until `stop` is set, then let every lease go. `report`
        gets each outcome as it happens; `refresh()` (when given) gives the shops again each time this poller has
        nothing due (a shop disconnected meanwhile is no longer polled)."""
        log.info("poller %s: polling every %g s, with a lease of %g s%s", self.name, self.every, self.lease,
                 f", pinned to shop {self.pinned}" if self.pinned else "")
        with self._renewing():
            try:
                while not stop.is_set():
                    try:
                        taken = self._take(shops)
                        if taken is not None:
                            report(self._poll(taken, stop))
                            continue
                        wait = self._wait(shops)
                    except BchooksError as error:  # (the store busy or down: tried again after a while)
                        log.warning("poller %s: could not take a shop: %s", self.name, error)
                        wait = self.lease / 3
                    if stop.wait(wait):
                        break
                    if refresh is not None:
                        shops = refresh()
            finally:
                self._let_go()

    def run_once(self, shops: list, *, stop: threading.Event, report: Callable[[Outcome], None]) -> list[Outcome]:
        """Poll each of these shops once now, due or not, each under its lease. A shop another poller holds is
        waited for until its lease could have run out (a dead poller's), then skipped (said: its poller is alive
        and polling it). Returns the outcomes."""
        outcomes, held = [], []
        with self._renewing():
            try:
                for shop in shops:
                    if stop.is_set():
                        break
                    if self._claim_now(shop):
                        outcomes.append(self._report(self._poll(shop, stop), report))
                    else:
                        held.append(shop)
                deadline = time.monotonic() + self._longest_hold(held) + 1.0  # (renewed past it: its poller lives)
                while held and not stop.wait(min(1.0, self.lease / 3)):
                    for shop in [shop for shop in held if self._claim_now(shop)]:
                        held.remove(shop)
                        outcomes.append(self._report(self._poll(shop, stop), report))
                    if time.monotonic() >= deadline:
                        break
                for shop in held:
                    outcome = Outcome(shop.account_id, holder=self._holder(shop.account_id) or "another poller")
                    outcomes.append(self._report(outcome, report))
            finally:
                self._let_go()
        return outcomes

    def _longest_hold(self, shops) -> float:
        """Seconds until the last of these shops' leases runs out, as they are now (said when there are some)."""
        if not shops:
            return 0.0
        longest = max((row["held_for"] for row in self.store.leases.status([s.account_id for s in shops])),
                      default=0.0)
        log.info("poller %s: shop(s) %s held by another poller: waiting up to %.1f s for its lease", self.name,
                 ", ".join(shop.account_id for shop in shops), longest)
        return longest

    def _claim_now(self, shop) -> bool:
        return self.store.leases.claim(self.name, [shop.account_id], lease=self.lease, every=0) is not None

    @staticmethod
    def _report(outcome, report):
        report(outcome)
        return outcome

    def _take(self, shops):
        """The shop to poll now, or None."""
        by_id = {shop.account_id: shop for shop in shops}
        if self.pinned is not None:
            if self.pinned not in by_id or not self.store.leases.hold(self.name, self.pinned, lease=self.lease):
                return None
            return by_id[self.pinned] if self.store.leases.wait(self.name, [self.pinned], self.every) <= 0 else None
        taken = self.store.leases.claim(self.name, list(by_id), lease=self.lease, every=self.every)
        return by_id.get(taken) if taken is not None else None

    def _wait(self, shops) -> float:
        """Seconds to sleep before a shop may be due (at most `every`)."""
        ids = [self.pinned] if self.pinned is not None else [shop.account_id for shop in shops]
        if self.pinned is not None and not self.store.leases.hold(self.name, self.pinned, lease=self.lease):
            return min(self.every, self.lease / 3)  # (another poller is polling it: look again soon)
        return min(self.every, max(SHORTEST_WAIT, self.store.leases.wait(self.name, ids, self.every,
                                                                         recheck=self.lease / 3)))

    def _poll(self, shop, stop) -> Outcome:
        """Poll a shop this poller holds, then let it go (a pinned poller keeps it) marked polled (a poll cut
        short by `stop` is not: another poller goes on with it at once)."""
        log.debug("shop %s: taken by %s", shop.account_id, self.name)
        outcome = poll_one(self.store, shop, stop=stop, max_retry_after=self.max_retry_after)
        log.debug("shop %s: released by %s", shop.account_id, self.name)
        try:
            polled = outcome.result is None or outcome.result.complete  # (a failure too: retried when due again)
            kept = self.store.leases.release(self.name, shop.account_id, polled=polled,
                                             keep=self.pinned == shop.account_id and not stop.is_set())
        except BchooksError as error:  # (still this poller's, and due: it takes it again, a holder's own to take)
            log.warning("poller %s: could not release shop %s: %s", self.name, shop.account_id, error)
        else:
            if not kept:
                log.warning("poller %s: its lease on shop %s ran out during the poll (another poller may have polled "
                            "it meanwhile): was the process frozen or the store unreachable? a longer "
                            "BCHOOKS_POLL_LEASE helps", self.name, shop.account_id)
        return outcome

    def _holder(self, account_id) -> str | None:
        rows = self.store.leases.status([account_id])
        return rows[0]["holder"] if rows else None

    def _let_go(self) -> None:
        try:
            self.store.leases.release_all(self.name)
        except BchooksError as error:  # (its leases run out by themselves)
            log.warning("poller %s: could not release its shops: %s", self.name, error)

    def _renewing(self):
        """Renew this poller's leases every third of the lease until the block ends."""
        return renewing(self.lease, lambda: self.store.leases.renew(self.name, self.lease), log,
                        f"poller {self.name}")


__all__ = ["Outcome", "Poller", "poll_one"]
