"""What a storage engine of bchooks offers: the narrow interface every other part of the kit uses.

The SQLite engine (`sqlite.EventStore`) and the PostgreSQL engine (`postgres.PostgresStore`) implement it, with
the same guarantees: an append returns only once its row is committed, an identical body is stored
once, and a database that cannot take a write raises `StoreUnavailable` (a 503), never anything else.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredEvent:
    """One stored event: the columns of the public `events` table."""

    id: int
    received_at: str
    type: str
    account_id: str | None
    resource_id: str | None
    body: bytes
    body_sha256: str
    signature_header: str | None
    remote_addr: str | None

    def json(self) -> Any:
        """The body parsed."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Appended:
    """What an append did: the event's id, and whether its body was stored before."""

    id: int
    duplicate: bool


class StorePart:
    """A part of a store with a table or two of its own (handler runs, reconciliations, cursors, rejections)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"


class Store(Protocol):
    """The store every part of bchooks talks to (receiver, worker, reconcile, analysis, widgets, CLI).

    Every engine makes events visible in id order: once an event can be read, so can every event with a smaller id
    that will ever exist. A reader that keeps the last id it saw (the handlers' watermark, the analysis cache,
    `iter_events(after_id=...)`) therefore misses none, however many receivers write at once."""

    path: str  # the SQLite file, or the PostgreSQL URL without its password
    source: str  # what opens this store again in another process (the URL with its password: never shown)
    engine: str  # "sqlite" or "postgresql"
    runs: Any  # runs.HandlerRuns: enqueue, claim, renew, finish, replay, failures, count
    reconciliations: Any  # reconciliations.Reconciliations: start, finish, fail, last
    forwarding: Any  # forwarding.ForwardingPositions: position, start, reset, advance, positions
    polls: Any  # polls.PollOutcomes: record, status
    alerts: Any  # alerts.AlertLog: open, end, active, recovered, recent, claim_send, claim_recovery, size_bytes
    leases: Any  # leases.PollLeases: claim, hold, renew, release, release_all, status, wait (pollers sharing shops)
    shipments: Any  # shipments.Shipments: start, finish, of_orders, recent (the kit's own shipments)

    def append(self, body: bytes, envelope: Any, *, signature_header: str | None = None,
               remote_addr: str | None = None, received_at: str | None = None) -> Appended:
        """Store a verified event once its row is committed; an identical body is a duplicate."""

    def append_rows(self, rows: Sequence[tuple]) -> list:
        """Insert event rows in one transaction; one `Appended` or `UnstorableEvent` per row."""

    def append_when_ready(self, take: Callable[[], list]) -> tuple[list, list]:
        """Insert the rows `take()` returns once the turn to write has begun (group commit)."""

    def write_one(self, sql: str, params: Sequence = ()) -> tuple[int, list]:
        """One write statement in a transaction of its own (for the store's modules); (rows changed, rows returned)."""

    def get(self, event_id: int) -> StoredEvent | None:
        """One event by id."""

    def iter_events(self, *, type: str | tuple | None = None, since: str | None = None, after_id: int = 0,
                    limit: int | None = None, batch: int = 1000) -> Iterator[StoredEvent]:
        """Events in id order."""

    def latest(self, limit: int = 20, *, type: str | tuple | None = None) -> list[StoredEvent]:
        """The newest events, newest first."""

    def count(self, *, type: str | tuple | None = None) -> int:
        """How many events (of a type)."""

    def counts_by_type(self) -> dict[str, int]:
        """Events per type, most first."""

    def resource_ids(self, *, type: str | tuple | None = None) -> Iterator[str | None]:
        """The distinct resource ids of the events (of a type)."""

    def last_event(self) -> tuple[int, str | None]:
        """(id, body_sha256) of the newest event, or (0, None)."""

    def record_rejection(self, reason: str, *, path: str | None = None, remote_addr: str | None = None,
                         size: int | None = None) -> None:
        """Count a rejected request; never raises for a database that cannot be written."""

    def rejections(self, limit: int = 20) -> list[dict]:
        """The newest rejections kept, newest first."""

    def rejection_counts(self, since: str | None = None) -> dict[str, int]:
        """Rejections per reason."""

    def check_files(self, timeout: float | None = None) -> str | None:
        """Recover from files deleted or replaced under the store if possible; the problem left, or None."""

    def checkpoint(self, hold_writers: bool = False) -> int:
        """Copy the log into the database; its length afterwards in bytes, counted since it last started over (0 for
        engines without one)."""

    def wait_for_events(self, timeout: float, stop: Any = None) -> bool:
        """Wait up to `timeout` seconds for new events (PostgreSQL: a NOTIFY; SQLite: a sleep); whether told."""

    def order_rows(self, first_id: int, last_id: int, types: tuple) -> Iterator[tuple]:
        """(id, account_id, body, body_sha256, received_at) of the events of `types` in an id range, in id order."""

    def schema_version(self) -> int:
        """The schema version of the database."""

    def close(self) -> None:
        """Close this process's connections."""
