"""Serving the receiver on gunicorn: pre-forked sync workers, graceful on SIGTERM and Ctrl-C.

Why gunicorn: measured here, 2 sync workers verified and committed more signed posts per second, at a lower p99,
than gthread, waitress, cheroot or wsgiref (see README, "Choice of server").
"""

import logging
import signal
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from .receiver import create_app
from .store import EventStore

log = logging.getLogger("bchooks.server")


class GracefulArbiter(Arbiter):
    """Ctrl-C (SIGINT) stops gracefully like SIGTERM: requests in flight finish first."""

    def handle_int(self):
        raise StopIteration


class GracefulWorker(SyncWorker):
    """A worker that leaves SIGINT to the arbiter (a terminal sends Ctrl-C to the whole process group)."""

    def init_signals(self):
        super().init_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class GracefulThreadWorker(ThreadWorker):
    """The threaded worker (keep-alive, many connections per process), leaving SIGINT to the arbiter too."""

    def init_signals(self):
        super().init_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class ReceiverServer(BaseApplication):
    def __init__(self, config, app):
        self._config = config
        self._app = app
        super().__init__()

    def load_config(self):
        host = f"[{self._config.host}]" if ":" in self._config.host else self._config.host
        settings = {
            "bind": f"{host}:{self._config.port}",
            "workers": self._config.workers,
            "worker_class": ("bchooks.server.GracefulThreadWorker" if self._config.threads > 1
                             else "bchooks.server.GracefulWorker"),
            "threads": self._config.threads,
            "keepalive": 5,
            "graceful_timeout": 30,
            "timeout": 30,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "bchooks-receiver",
            "limit_request_line": 8190,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app

    def run(self):
        try:
            GracefulArbiter(self).run()
        except RuntimeError as error:
            print(f"bchooks: cannot serve: {error}", file=sys.stderr)
            sys.exit(1)


def serve(config, *, store_events=True):
    """Open (and migrate) the store, then serve until stopped. Raises BchooksError before binding if unusable."""
    store = EventStore.from_config(config, group_commit=True)
    app = create_app(config, store, store_events=store_events)
    if not store_events:
        log.warning("--no-store: verified events are answered 200 and NOT STORED (for measurement only)")
    store.close()  # each worker opens its own connection after fork
    log.warning("bchooks receiver on %s (store %s, %d workers)", config.webhook_url, config.db, config.workers)
    ReceiverServer(config, app).run()
