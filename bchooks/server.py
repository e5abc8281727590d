"""Serving the receiver on granian: HTTP handled in Rust, the Bottle app on each worker's threads; graceful on
SIGTERM and Ctrl-C.

Why granian: measured here with `bench/receiver.py`, the same app stored about 1.8 times as many signed posts a
second under granian as under gunicorn's threaded workers (whose HTTP parsing and connection handling run in
Python, under the GIL), at a lower p99 (see README, "Architecture and choice of server").
"""

import logging
import multiprocessing
import os
import sys

from .receiver import create_app
from .store import EventStore

log = logging.getLogger("bchooks.server")

# What the parent hands its forked workers: (config, store_events). Set by `serve`, read by `worker_app`.
_SERVING = None


def worker_app():
    """The WSGI app of one worker process (granian calls this after forking): its own store connection, its own
    group committer."""
    if _SERVING is None:
        raise RuntimeError("bchooks.server.worker_app runs only in workers forked by bchooks.server.serve")
    config, store_events = _SERVING
    _drop_secrets_from_environment()
    store = EventStore.from_config(config, group_commit=True)
    return create_app(config, store, store_events=store_events)


def _drop_secrets_from_environment():
    """granian copies the process environment into every request's WSGI environ; the secret, read already, is no
    business of a request's."""
    for name in ("BCHOOKS_SECRET", "BCHOOKS_TOKEN"):
        os.environ.pop(name, None)


# granian's own messages: on stderr in the kit's format, beside the receiver's (which stay as the CLI set them)
_LOGGING = {
    "formatters": {"kit": {"()": "logging.Formatter", "fmt": "%(asctime)s granian %(message)s"}},
    "handlers": {"console": {"formatter": "kit", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {"_granian": {"handlers": ["console"], "level": "WARNING", "propagate": False}},
}


def _granian(config):
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    return Granian(
        "bchooks.server:worker_app",
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.WSGI,
        workers=config.workers,
        blocking_threads=config.threads,
        log_level=LogLevels.warning,
        log_dictconfig=_LOGGING,
    )


def serve(config, *, store_events=True):
    """Open (and migrate) the store, then serve until stopped. Raises BchooksError before binding if unusable."""
    global _SERVING
    EventStore.from_config(config).close()  # migrate once, here: workers only open it
    if not store_events:
        log.warning("--no-store: verified events are answered 200 and NOT STORED (for measurement only)")
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)  # workers inherit `_SERVING`, never re-read secrets
    _SERVING = (config, store_events)
    log.warning("bchooks receiver on %s (store %s, %d workers of %d threads)", config.webhook_url, config.db,
                config.workers, config.threads)
    try:
        _granian(config).serve()
    except OSError as error:
        print(f"bchooks: cannot serve on {config.host}:{config.port}: {error.strerror or error}", file=sys.stderr)
        sys.exit(1)
    finally:
        _SERVING = None
