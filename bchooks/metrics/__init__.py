"""Prometheus metrics of the receiver: what its worker processes counted, and gauges read from the store when
scraped.

    directory.py    the folder where each worker process keeps its counts (prometheus_client's multiprocess mode):
                    made empty when `serve` starts, a dead worker's live gauges dropped
    instruments.py  the counters and histograms the receiver and its group committer record
    gauges.py       the store's gauges, read at scrape time by index seeks and bounded counts, within a deadline
    endpoint.py     `/metrics`: the token check, the exposition, and its own address served from `serve`'s process

`serve` calls `prepare_directory(config)` before its workers fork (prometheus_client chooses its multiprocess mode
when it is first imported, from `PROMETHEUS_MULTIPROC_DIR`); each worker records through a `ReceiverMetrics`; a
scrape (`MetricsEndpoint`) sums every worker's files, dead ones included, and adds the store's gauges. Nothing here
imports prometheus_client before the directory is set. See docs/metrics.md.
"""

from .directory import MetricsDirectory, prepare_directory
from .endpoint import MetricsEndpoint, MetricsServer
from .gauges import StoreGauges
from .instruments import ReceiverMetrics

__all__ = ["MetricsDirectory", "MetricsEndpoint", "MetricsServer", "ReceiverMetrics", "StoreGauges",
           "prepare_directory"]
