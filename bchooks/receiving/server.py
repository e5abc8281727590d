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
from ..errors import CannotServe, ConfigError
from ..metrics.directory import prepare_directory
from .receiver import create_app
from ..secrecy import RedactingFilter
from ..store import open_store

log = logging.getLogger("bchooks.server")

# What the parent hands its forked workers: (config, store_events), and the metrics folder (None: metrics off). Set
# by `serve`, read by `worker_app`.
_SERVING = None
_METRICS = None


def worker_app():
    """The WSGI app of one worker process (granian calls this after forking): its own store connection, its own
    group committer."""
    if _SERVING is None:
        raise RuntimeError("bchooks.receiving.server.worker_app runs only in workers forked by "
                           "bchooks.receiving.server.serve")
    config, store_events = _SERVING
    metrics_directory = _METRICS
    _drop_secrets_from_environment()
    store = open_store(config, auto_checkpoint=False)
    # a stop writes what this worker holds in memory (rejections counted, a NOTIFY) and closes its connections:
    # granian's workers are multiprocessing children, which end by os._exit (no atexit) after these finalizers
    multiprocessing.util.Finalize(store, store.close, exitpriority=10)
    if metrics_directory is None:
        return create_app(config, store, appender=GroupCommitter(store), store_events=store_events)
    from ..metrics import MetricsEndpoint, ReceiverMetrics
    metrics = ReceiverMetrics(config.path)
    metrics.worker_started()
    endpoint = None if config.metrics_address else MetricsEndpoint(store, token=config.metrics_token,
                                                                   directory=metrics_directory)
    return create_app(config, store, appender=GroupCommitter(store, on_commit=metrics.observe_commit),
                      store_events=store_events, metrics=metrics, metrics_endpoint=endpoint)


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
    _check_metrics(config)
    metrics_directory = prepare_directory(config)  # (before anything imports prometheus_client, and the workers fork)
    try:
        stop_metrics_server = _metrics_server(config, metrics_directory)
    except BaseException:
        if metrics_directory is not None:
            metrics_directory.remove()
        raise
    try:
        _serve(config, store_events, metrics_directory)
    finally:
        if stop_metrics_server is not None:
            stop_metrics_server()
        if metrics_directory is not None:
            metrics_directory.remove()


def _check_metrics(config):
    """The metrics' path must not be the webhook's nor the health check's; their address not the receiver's."""
    if config.metrics and config.metrics in (config.path, "/healthz"):
        taken = "webhook path" if config.metrics == config.path else "health check"
        raise ConfigError(f"BCHOOKS_METRICS: {config.metrics} is the receiver's {taken}: choose another path")
    if config.metrics_address:
        from ..metrics.endpoint import split_address
        host, port = split_address(config.metrics_address)
        if port == config.port:
            raise ConfigError(f"BCHOOKS_METRICS_ADDRESS: port {port} is the receiver's: choose another")


def _metrics_server(config, directory):
    """The metrics on their own address (`BCHOOKS_METRICS_ADDRESS`), served by threads of this process: a function
    that stops them (None when there are none). The store is opened for reads at the first scrape, once the workers forked (a
    worker respawned later inherits the connection and never uses it)."""
    if directory is None or not config.metrics_address:
        return None
    from ..metrics import MetricsEndpoint, MetricsServer
    opened = []

    def store():
        if not opened:
            opened.append(open_store(config, create=False))
        return opened[0]
    server = MetricsServer(MetricsEndpoint(store, token=config.metrics_token, directory=directory),
                           config.metrics_address, config.metrics or "/metrics")
    log.warning("metrics on %s", server.url)

    def stop():
        server.stop()
        for each in opened:
            each.close()
    return stop


def _serve(config, store_events, metrics_directory):
    global _SERVING, _METRICS
    if not store_events:
        log.warning("--no-store: verified events are answered 200 and NOT STORED (for measurement only)")
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)  # workers inherit `_SERVING`, never re-read secrets
    _SERVING, _METRICS = (config, store_events), metrics_directory
    log.warning("bchooks receiver on %s (store %s, %d workers of %d threads)", config.webhook_url, config.db_display(),
                config.workers, config.threads)
    try:
        _granian(config).serve()
    except (OSError, RuntimeError) as error:  # granian reports a socket it cannot bind as RuntimeError
        _cannot_serve(config, str(error).splitlines()[0])
    finally:
        _SERVING = _METRICS = None
