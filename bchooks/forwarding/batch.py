"""`bchooks forward`: stored events sent on to a URL at once, by id or by type and time, with a few connections
in parallel, each event retried on its own (`delivery.deliver`), and a summary like the simulator's."""

import statistics
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import requests

from ..errors import InputError
from ..store import Store, StoredEvent
from .delivery import Delivery, Target, deliver

#: failed event ids named in a summary's line at most (all of them are in `Summary.failed`)
SHOWN_IDS = 20


@dataclass
class Summary:
    """What a forward run did: events sent, answered 2xx, failures by status (or "connection failed"), the
    failed events' ids, retries made, and each event's last attempt's time."""

    sent: int = 0
    ok: int = 0
    failures: Counter = field(default_factory=Counter)
    failed: list = field(default_factory=list)
    retries: int = 0
    latencies_ms: list = field(default_factory=list)

    def add(self, delivery: Delivery) -> None:
        self.sent += 1
        self.retries += delivery.attempts - 1
        self.latencies_ms.append(delivery.latency_ms)
        if delivery.ok:
            self.ok += 1
        else:
            self.failures[delivery.reason] += 1
            self.failed.append(delivery.event_id)

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    def as_dict(self) -> dict:
        return {"sent": self.sent, "ok": self.ok, "failures": dict(self.failures), "failed": sorted(self.failed),
                "retries": self.retries, "p50_ms": round(self.percentile(50), 2),
                "p99_ms": round(self.percentile(99), 2)}

    def __str__(self) -> str:
        failures = ", ".join(f"{n}× {reason}" for reason, n in sorted(self.failures.items())) or "none"
        if self.failed:
            ids = sorted(self.failed)
            more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
            failures += f" (event{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids[:SHOWN_IDS]))}{more})"
        return (f"sent {self.sent}, 2xx {self.ok}, failures: {failures}; {self.retries} "
                f"retr{'y' if self.retries == 1 else 'ies'}; latency p50 {self.percentile(50):.1f} ms, "
                f"p99 {self.percentile(99):.1f} ms")


def select(store: Store, ids: Sequence[int] = (), *, type: str | None = None,
           since: str | None = None) -> Iterator[StoredEvent]:
    """The events to forward: these ids (each once, in the order given; `InputError` naming those not stored,
    before anything is sent), or those of `type` received at or after `since` (ISO), in id order."""
    if ids and (type or since):
        raise InputError("give event ids, or --type/--since, not both")
    if not ids and not (type or since):
        raise InputError("say what to forward: event ids, or --type and/or --since")
    if ids:
        unique = list(dict.fromkeys(int(i) for i in ids))
        events = {i: store.get(i) for i in unique}
        missing = [str(i) for i, event in events.items() if event is None]
        if missing:
            raise InputError(f"no event {', '.join(missing)} in the store {store.path}")
        return iter([event for event in events.values() if event is not None])
    return store.iter_events(type=type, since=since)


def forward(events: Iterable[StoredEvent], target: Target, *, concurrency: int = 4,
            progress: Callable[[Delivery], None] | None = None) -> Summary:
    """Send every event to `target` with `concurrency` connections (each retried on its own as the target
    says); `progress(delivery)` after each. Events are taken from `events` as connections free up (a selection
    of a million is never held in memory)."""
    summary = Summary()
    source = iter(events)
    taking, adding = threading.Lock(), threading.Lock()
    failed: list[BaseException] = []

    def work():
        with requests.Session() as session:
            while not failed:
                with taking:
                    try:
                        event = next(source, None)
                    except BaseException as error:  # (the store failing mid-selection: raised below)
                        failed.append(error)
                        return
                if event is None:
                    return
                delivery = deliver(session, target, event)
                with adding:
                    summary.add(delivery)
                if progress is not None:
                    progress(delivery)

    threads = [threading.Thread(target=work, name=f"bchooks-forward-{n}", daemon=True)
               for n in range(max(1, concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return summary
