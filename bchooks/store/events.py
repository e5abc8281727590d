"""The queries every engine shares: appending events, reading them back, and the rejections kept beside them.

An engine (`sqlite.EventStore`, `postgres.PostgresStore`) provides `transaction()` (a write transaction yielding a
connection with `execute`), `_query(sql, params)` (a read that never waits for a writer's turn) and
`append_rows(rows)`; the SQL here is written once, with `?` placeholders, for both.
"""

from collections.abc import Iterator
from typing import Any

from .interface import Appended, StoredEvent
from .sql import _EVENT_COLUMNS, event_filter, event_row


#: each shop's newest event: the shops found one after the other by the (account_id, id) index, then each one's
#: largest id from the same index
NEWEST_BY_SHOP = (
    "WITH RECURSIVE shops(account_id) AS ("
    " SELECT min(account_id) FROM events"
    " UNION ALL SELECT (SELECT min(account_id) FROM events WHERE account_id > shops.account_id)"
    " FROM shops WHERE shops.account_id IS NOT NULL),"
    " newest(account_id, id) AS (SELECT account_id, (SELECT max(id) FROM events"
    " WHERE events.account_id = shops.account_id) FROM shops WHERE account_id IS NOT NULL)"
    " SELECT newest.account_id, newest.id, events.received_at FROM newest JOIN events ON events.id = newest.id")


def _where(conditions):
    return " AND ".join(conditions) or "true"


class EventQueries:
    """Mixed into each engine's store class."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        raise NotImplementedError  # (each engine's own)

    def append_rows(self, rows: Any) -> list:
        raise NotImplementedError  # (each engine's own)

    @staticmethod
    def _text_safe(row):
        """The row as this engine can store its text values (SQLite: as it is)."""
        return row

    def _read(self, sql, params=()):
        return self._query(sql, params)[1]

    def read_dicts(self, sql, params=()):
        """The rows of a read as dicts keyed by column name (for the store's own modules)."""
        names, rows = self._query(sql, params)
        return [dict(zip(names, row)) for row in rows]

    def _one_statement(self):
        """Where a single write statement runs: a transaction (PostgreSQL: a connection in autocommit mode)."""
        return self.transaction()

    def write_one(self, sql, params=()):
        """One write statement in a transaction of its own; (rows changed, rows it returned). (PostgreSQL sends it
        alone, in autocommit mode: one round trip instead of three.)"""
        with self._one_statement() as conn:
            cursor = conn.execute(sql, params)
            return cursor.rowcount, cursor.fetchall() if cursor.description else []

    def read_value(self, sql, params=()):
        """The first column of the first row of a read (for the store's own modules)."""
        return self._read(sql, params)[0][0]

    def append(self, body: bytes, envelope: Any, *, signature_header: str | None = None,
               remote_addr: str | None = None, received_at: str | None = None) -> Appended:
        """Store a verified event; an identical body already stored is not stored again. Returns only once the
        row is committed (with group commit, together with the other appends waiting at that moment)."""
        row = event_row(body, envelope, signature_header=signature_header, remote_addr=remote_addr,
                        received_at=received_at)
        result = self.append_rows([row])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def record_rejection(self, reason, *, path=None, remote_addr=None, size=None):
        """Count a rejected request (never its body); written at once after a quiet second, else within one
        (`rejections.py`). Never raises for a database that cannot be written."""
        self.rejection_log.record(reason, path=path, remote_addr=remote_addr, size=size)

    def get(self, event_id: int) -> StoredEvent | None:
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return StoredEvent(*rows[0]) if rows else None

    def iter_events(self, *, type: str | tuple | None = None, since: str | None = None, after_id: int = 0,
                    limit: int | None = None, batch: int = 1000) -> Iterator[StoredEvent]:
        """Events in id order: of one `type` (or a tuple of types), received at or after `since` (ISO text),
        with id > `after_id`."""
        where, params = event_filter(type=type, since=since)
        where, params = ["id > ?", *where], [after_id, *params]
        remaining = limit
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE {_where(where)} ORDER BY id LIMIT ?",
                              (*params, size))
            for row in rows:
                yield StoredEvent(*row)
            if len(rows) < size:
                return
            params[0] = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def order_rows(self, first_id: int, last_id: int, types: tuple) -> Iterator[tuple]:
        """(id, account_id, body, body_sha256, received_at) of the events of `types` with first_id <= id <= last_id,
        in id order, read in batches (what the analysis cache reads)."""
        marks = ",".join("?" * len(types))
        after = first_id - 1
        while after < last_id:
            rows = self._read(f"SELECT id, account_id, body, body_sha256, received_at FROM events WHERE id > ?"
                              f" AND id <= ? AND type IN ({marks}) ORDER BY id LIMIT 5000", (after, last_id, *types))
            yield from rows
            if len(rows) < 5000:
                return
            after = rows[-1][0]

    def latest(self, limit: int = 20, *, type: str | tuple | None = None) -> list[StoredEvent]:
        """The newest `limit` events, newest first."""
        where, params = event_filter(type=type)
        rows = self._read(f"SELECT {_EVENT_COLUMNS} FROM events WHERE {_where(where)} ORDER BY id DESC LIMIT ?",
                          (*params, limit))
        return [StoredEvent(*row) for row in rows]

    def count(self, *, type: str | tuple | None = None) -> int:
        where, params = event_filter(type=type)
        return self._read(f"SELECT count(*) FROM events WHERE {_where(where)}", params)[0][0]

    def resource_ids(self, *, type=None):
        """The distinct resource ids of the events of one `type` (or a tuple of types), in no particular order."""
        where, params = event_filter(type=type)
        for (resource_id,) in self._read(f"SELECT DISTINCT resource_id FROM events WHERE {_where(where)}", params):
            yield resource_id

    def live_resources(self, account_id: str | None, types: tuple, deleted: str) -> set[str]:
        """The resource ids (of `types`) of this account whose newest event is not of type `deleted`."""
        rows = self._read(f"SELECT resource_id, type FROM events WHERE id IN (SELECT max(id) FROM events"
                          f" WHERE account_id IS NOT DISTINCT FROM ? AND type IN ({','.join('?' * len(types))})"
                          f" AND resource_id IS NOT NULL GROUP BY resource_id)", (account_id, *types))
        return {resource for resource, kind in rows if kind != deleted}

    def latest_states(self, account_id: str | None, types: tuple, resource_ids: list[str]) -> dict[str, tuple]:
        """{resource id: (type, body)} of the newest event of `types` of each of `resource_ids` of this account
        that has one (the poller compares what it reads with it)."""
        found: dict[str, tuple] = {}
        kinds = ",".join("?" * len(types))
        ids = sorted(set(resource_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._read(f"SELECT resource_id, type, body FROM events WHERE id IN (SELECT max(id) FROM events"
                              f" WHERE account_id IS NOT DISTINCT FROM ? AND type IN ({kinds}) AND resource_id IN"
                              f" ({','.join('?' * len(chunk))}) GROUP BY resource_id)", (account_id, *types, *chunk))
            found.update((resource, (kind, bytes(body))) for resource, kind, body in rows)
        return found

    def counts_by_type(self) -> dict[str, int]:
        return dict(self._read("SELECT type, count(*) FROM events GROUP BY type ORDER BY count(*) DESC, type"))

    def rejections(self, limit=20):
        """The newest rejections as dicts, newest first (a bounded sample: `rejection_counts` has them all)."""
        return self.rejection_log.sample(limit)

    def rejection_counts(self, since=None):
        """{reason: count} of the rejected requests, all kept (30 days) or from the minute of `since` (ISO) on."""
        return self.rejection_log.counts(since)

    def last_event_by_shop(self) -> dict[str, tuple[int, str]]:
        """{account_id: (id, received_at) of that shop's newest event}. Index seeks only (the shops one after the
        other, then each one's largest id): as fast with a million events as with ten."""
        rows = self._read(NEWEST_BY_SHOP)
        return {account: (int(event_id), received_at) for account, event_id, received_at in rows}

    def last_event(self):
        """(id, body_sha256) of the newest event, or (0, None)."""
        rows = self._read("SELECT id, body_sha256 FROM events ORDER BY id DESC LIMIT 1")
        return tuple(rows[0]) if rows else (0, None)
