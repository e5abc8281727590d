"""`bchooks listen --forward-to URL`: every event the store commits, sent on to a development app as it comes,
like `stripe listen --forward-to`.

A process of its own that follows the store (as the worker does: `iter_events(after_id=...)`, woken by
PostgreSQL's NOTIFY or polling SQLite), so it never delays the receiver's answer to Big Cartel. Events go one at a
time, in id order; the target's position in the store (`store.forwarding`) moves after each answer, so a listener
stopped or killed at any moment starts again after the last event delivered: every event is delivered at least
once, in order (the one in flight at a kill may come twice: its Standard Webhooks `webhook-id` stays the same).

A target that does not answer, or answers 5xx or 429, is retried without end, each wait twice the one before up to
`max_backoff`: the listener waits for it and never skips an event. Any other 4xx is the target's final word on
that event: said in one line, and the listener goes on (`bchooks forward ID` sends it again).
"""

import logging
import threading
from collections.abc import Callable

import requests

from ..errors import StoreUnavailable
from ..store import Store, StoredEvent
from .delivery import Delivery, Target, deliver

log = logging.getLogger("bchooks.forward")


class Listener:
    """Forwards `store`'s events to `target` from its position on; `run(stop)` until `stop` is set."""

    def __init__(self, store: Store, target: Target, *, poll: float = 0.5,
                 report: Callable[[StoredEvent, Delivery], None] | None = None,
                 waiting: Callable[[StoredEvent, int | None, str, float], None] | None = None) -> None:
        """`report(event, delivery)` after each event answered; `waiting(event, status, error, wait)` before
        each wait for a target that is down."""
        self.store = store
        self.target = target
        self.poll = poll
        self.report = report
        self.waiting = waiting
        self.key = target.shown

    def __repr__(self) -> str:
        return f"Listener({self.target.shown!r})"

    def start(self, after: int | None = None) -> int:
        """The position forwarding goes on from: `after` when given (moved there), else the stored one, else (a
        new target) the newest event now: like `stripe listen`, only what comes from now on."""
        if after is not None:
            self.store.forwarding.reset(self.key, after)
            return after
        return self.store.forwarding.start(self.key, self.store.last_event()[0])

    def run_once(self, session: requests.Session, stop: threading.Event | None = None) -> int:
        """Forward every event after the position, in order; how many were answered. Returns early when `stop`
        is set (the event in flight is not marked delivered)."""
        position = self.store.forwarding.position(self.key) or 0
        done = 0
        for event in self.store.iter_events(after_id=position, batch=100):
            if stop is not None and stop.is_set():
                break
            delivery = deliver(session, self.target, event, retries=-1, stop=stop, on_retry=self.waiting)
            if not delivery.final:
                break  # (stopped while the target was down: this event is sent again next time)
            self.store.forwarding.advance(self.key, event.id)
            done += 1
            if self.report is not None:
                self.report(event, delivery)
        return done

    def run(self, stop: threading.Event) -> None:
        """Forward until `stop` is set, waiting for new events between passes (a store that is unavailable
        meanwhile is waited for, like the worker does)."""
        waited = 0.0
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    self.run_once(session, stop)
                except StoreUnavailable as error:
                    if not waited:
                        log.warning("forwarding to %s: the store is unavailable (%s); trying again until it is back",
                                    self.key, error)
                    waited = min(30.0, max(self.poll, waited * 2))
                    stop.wait(waited)
                    continue
                if waited:
                    log.warning("forwarding to %s: the store is back", self.key)
                    waited = 0.0
                self.store.wait_for_events(self.poll, stop)
