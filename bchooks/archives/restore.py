"""Bringing archived events back into the store byte for byte: the same ids, bytes and `received_at`; an event
still stored is never stored twice. Every file set read is first checked against its manifest (sha256)."""

import os
from dataclasses import dataclass

from ..errors import InputError
from ..store.transfer import EVENT_COLUMNS
from .files import archived_events, check_files, file_sets


@dataclass
class Restored:
    restored: int = 0
    present: int = 0  # selected events already in the store

    def lines(self) -> list[str]:
        return [f"{self.restored:,} events restored, {self.present:,} already in the store"]


def restore(store, directory: str | os.PathLike, *, since: str | None = None, until: str | None = None,
            ids: list[int] | None = None, batch: int = 1000) -> Restored:
    """Restore the archived events received since/until (ISO-8601) or with these ids (all, without either)."""
    if since and until and since >= until:
        raise InputError("--since must be before --until")
    sets = file_sets(directory)
    for folder, manifest in sets:  # (all checked before one row is written)
        check_files(folder, manifest)
    done, seen = Restored(), set[int]()
    for record in archived_events(directory, since=since, until=until, ids=ids, sets=sets):
        rows = [tuple(row[name] for name in EVENT_COLUMNS) for row in record.to_pylist()]
        rows = [row for row in rows if row[0] not in seen]  # (an event two sets hold: once)
        seen.update(row[0] for row in rows)
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            new = store.archives.insert_events(chunk)
            done.restored += new
            done.present += len(chunk) - new
    if done.restored:
        store.archives.advance_ids()
    return done
