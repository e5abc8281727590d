"""Keeping a lease while work goes on: a thread renews it every third of its length until the block ends (the
worker's claims on handler runs, a poller's shops)."""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import BchooksError


@contextmanager
def renewing(lease: float, renew: Callable[[], object], log: logging.Logger, what: str) -> Iterator[None]:
    """Call `renew()` every `lease / 3` seconds on a thread until the block ends; a renewal that fails is one
    warning (`what` names whose lease) and the next one comes well within the lease."""
    done = threading.Event()

    def renew_until_done() -> None:
        while not done.wait(lease / 3):
            try:
                renew()
            except BchooksError as error:
                log.warning("could not renew the lease of %s: %s", what, error)
    thread = threading.Thread(target=renew_until_done, name="bchooks-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
