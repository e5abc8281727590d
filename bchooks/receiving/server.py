"""Serving the receiver on granian: HTTP handled in Rust, the Bottle app on each worker's threads; graceful on
SIGTERM and Ctrl-C.

Why granian: measured here with `bench/receiver.py`, the same app stored about 1.6 times as many signed posts a
second under granian as under gunicorn's threaded workers (whose HTTP parsing and connection handling run in
Python, under the GIL), at a lower p99 (see README, "Architecture and choice of server").
"""

import errno
import logging
import multiprocessing
import multiprocessing.util
import os
import socket

from .committer import GroupCommitter
from ..config import SECRET_ENV
from ..errors import CannotServe
from .receiver import create_app
from ..secrecy import RedactingFilter
from ..store import open_store

log = logging.getLogger("bchooks.server")

# What the parent hands its forked workers: (config, store_events). Set by `serve`, read by `worker_app`.
_SERVING = None


def worker_app():
    """The WSGI app of one worker process (granian calls this after forking): its own store connection, its own
    group committer."""
    if _SERVING is None:
        raise RuntimeError("bchooks.receiving.server.worker_app runs only in workers forked by "
                           "bchooks.receiving.server.serve")
    config, store_events = _SERVING
    _drop_secrets_from_environment()
    store = open_store(config, auto_checkpoint=False)
    # a stop writes what this worker holds in memory (rejections counted, a NOTIFY) and closes its connections:
    # granian's workers are multiprocessing children, which end by os._exit (no atexit) after these finalizers
    multiprocessing.util.Finalize(store, store.close, exitpriority=10)
    return create_app(config, store, appender=GroupCommitter(store), store_events=store_events)


def _drop_secrets_from_environment():
    """granian copies the process environment into every request's WSGI environ; the secrets, read already, are no
    business of a request's."""
    for name in SECRET_ENV:
        os.environ.pop(name, None)


class _Advice(logging.Filter):
    """Drops granian's advice against more Python threads than cores: the threads are meant (requests waiting on
    a commit hold a thread, not a core, and share the commit)."""

    def filter(self, record):
        return not record.getMessage().startswith("Configuration allows spawning up to")


# granian's own messages: on stderr in the kit's format, beside the receiver's (which stay as the CLI set them)
_LOGGING = {
    "formatters": {"kit": {"()": "logging.Formatter", "fmt": "%(asctime)s granian %(message)s"}},
    "filters": {"advice": {"()": _Advice}, "redact": {"()": RedactingFilter}},
    "handlers": {"console": {"formatter": "kit", "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                             "filters": ["advice", "redact"]}},
    "loggers": {"_granian": {"handlers": ["console"], "level": "WARNING", "propagate": False}},
}


def _granian(config):
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    return Granian(
        "bchooks.receiving.server:worker_app",
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.WSGI,
        workers=config.workers,
        blocking_threads=config.threads,
        log_level=LogLevels.warning,
        log_dictconfig=_LOGGING,
        respawn_failed_workers=True,  # a worker that dies is replaced; the others go on answering
        workers_kill_timeout=config.stop_timeout,  # a trickling sender must not hold a stop forever
    )


def _check_port(config):
    """`CannotServe` (one line and exit 1 from the CLI), instead of granian's traceback, when the address cannot be
    bound."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as error:
            reason = "the port is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
            _cannot_serve(config, reason)


def _cannot_serve(config, reason):
    raise CannotServe(f"cannot serve on {config.host}:{config.port}: {reason}")


def serve(config, *, store_events=True):
    """Open (and migrate) the store, then serve until stopped. Raises BchooksError before binding if unusable."""
    global _SERVING
    open_store(config).close()  # migrate once, here: workers only open it
    _check_port(config)
    if not store_events:
        log.warning("--no-store: verified events are answered 200 and NOT STORED (for measurement only)")
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)  # workers inherit `_SERVING`, never re-read secrets
    _SERVING = (config, store_events)
    log.warning("bchooks receiver on %s (store %s, %d workers of %d threads)", config.webhook_url, config.db_display(),
                config.workers, config.threads)
    try:
        _granian(config).serve()
    except (OSError, RuntimeError) as error:  # granian reports a socket it cannot bind as RuntimeError
        _cannot_serve(config, str(error).splitlines()[0])
    finally:
        _SERVING = None
