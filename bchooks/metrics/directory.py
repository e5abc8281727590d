"""The folder where the receiver's worker processes keep their metrics: prometheus_client's multiprocess mode.

Each process writes its counts into files of its own, named by its pid (`counter_1234.db`); a scrape reads and sums
them all. So a worker killed and respawned by granian leaves its counts behind, still summed: the totals go on
adding up. A live gauge (`bchooks_receiver_workers`) counts only processes alive: a dead one's file is dropped at the
next scrape (`sweep`, prometheus_client's `mark_process_dead`).

prometheus_client decides once, when it is first imported, whether it writes such files (`PROMETHEUS_MULTIPROC_DIR`
set) or keeps counts in memory: `prepare_directory` sets the variable before anything imports it, and before the
workers fork, so they inherit it.
"""

import glob
import logging
import os
import re
import shutil
import sys
import tempfile
from typing import Any

from ..errors import ConfigError

log = logging.getLogger("bchooks.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


class MetricsDirectory:
    """The multiprocess folder of one `serve`: `owned` when made for it (removed at the end), else the operator's
    `PROMETHEUS_MULTIPROC_DIR` (only its metric files are removed)."""

    def __init__(self, path: str, *, owned: bool) -> None:
        self.path = path
        self.owned = owned

    def __repr__(self) -> str:
        return f"MetricsDirectory({self.path!r})"

    def clean(self) -> None:
        """Remove every process's metric files (a new `serve` counts from zero)."""
        for name in glob.glob(os.path.join(self.path, "*.db")):
            try:
                os.remove(name)
            except FileNotFoundError:
                pass

    def sweep(self) -> list[int]:
        """Drop the live gauges of the processes that are gone (a worker killed, granian started another); the pids
        dropped."""
        from prometheus_client.multiprocess import mark_process_dead
        dropped = []
        for name in os.listdir(self.path):
            found = _LIVE_FILE.match(name)
            if found and not process_alive(int(found.group(1))):
                try:
                    mark_process_dead(int(found.group(1)), self.path)
                except FileNotFoundError:
                    pass  # (another process's scrape dropped it first)
                dropped.append(int(found.group(1)))
        return dropped

    def remove(self) -> None:
        """At the end of `serve`: the folder made for it, or the operator's folder's metric files."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.clean()
        if os.environ.get(ENV) == self.path:
            del os.environ[ENV]


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie, ended and not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def prepare_directory(config: Any) -> MetricsDirectory | None:
    """For `serve`, before its workers fork: None when the metrics are off; else the folder, made empty, with
    `PROMETHEUS_MULTIPROC_DIR` set to it (an operator's value is used, its old metric files removed; else a new
    temporary folder). `ConfigError` when prometheus_client was imported already without it (its counts would stay
    in each process)."""
    if not (config.metrics or config.metrics_address):
        return None
    values = sys.modules.get("prometheus_client.values")
    given = os.environ.get(ENV, "").strip()
    if values is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise ConfigError("prometheus_client was imported before the metrics folder was set: start the receiver "
                          "with `bchooks serve` (or set PROMETHEUS_MULTIPROC_DIR before importing it)")
    if given:
        try:
            os.makedirs(given, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{ENV}={given} cannot be used as the metrics folder: {error.strerror}") from None
        directory = MetricsDirectory(os.path.abspath(given), owned=False)
    else:
        directory = MetricsDirectory(tempfile.mkdtemp(prefix="bchooks-metrics-"), owned=True)
    directory.clean()
    os.environ[ENV] = directory.path
    log.info("metrics: the worker processes' counts in %s", directory.path)
    return directory
