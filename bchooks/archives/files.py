"""An archive's files: one folder a run (a file set), Parquet tables compressed with zstd, and a manifest.

    DIR/20261203T063000Z-000001/
        events.parquet            every column of the events, bodies as the exact bytes
        handler_runs.parquet      the done and dead runs of those events
        rejections.parquet        the rejections' sample rows older than the run's `before`
        reconciliations.parquet   finished reconciliations older than it
        manifest.json             the id ranges, row counts and each file's sha256 (written last)

A folder without a manifest is a run that did not finish writing: readers skip it and the next run removes it.
Files are written as `NAME.partial`, synced, then renamed; the manifest the same way, last.
"""

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ArchiveError
from ..store.archives import RECONCILIATION_COLUMNS, REJECTION_COLUMNS, RUN_COLUMNS

FORMAT = 1
MANIFEST = "manifest.json"
_TEXT, _INT, _REAL = pa.string(), pa.int64(), pa.float64()
SCHEMAS = {
    "events": pa.schema([("id", _INT), ("received_at", _TEXT), ("type", _TEXT), ("account_id", _TEXT),
                         ("resource_id", _TEXT), ("body", pa.binary()), ("body_sha256", _TEXT),
                         ("signature_header", _TEXT), ("remote_addr", _TEXT)]),
    "handler_runs": pa.schema([(name, {"attempts": _INT, "event_id": _INT, "next_attempt_at": _REAL,
                                       "claimed_until": _REAL}.get(name, _TEXT)) for name in RUN_COLUMNS]),
    "rejections": pa.schema([(name, _INT if name in ("id", "size") else _TEXT) for name in REJECTION_COLUMNS]),
    "reconciliations": pa.schema([(name, _INT if name in ("id", "checked", "missing", "stale") else _TEXT)
                                  for name in RECONCILIATION_COLUMNS]),
}
ORDER_ROW = ("id", "account_id", "body", "body_sha256", "received_at")  # what the analysis reads


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(2 ** 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_replace(temporary: Path, final: Path) -> None:
    with open(temporary, "rb") as file:
        os.fsync(file.fileno())
    os.replace(temporary, final)


class FileSetWriter:
    """Writes one run's tables row group by row group (memory bounded by a page of rows), then its manifest."""

    def __init__(self, folder: Path, name: str, before: str) -> None:
        self.folder, self.name, self.before = folder, name, before
        folder.mkdir()
        self._writers: dict = {}
        self.rows = {table: 0 for table in SCHEMAS}
        self.ranges: list = []  # [first, last] runs of consecutive event ids
        self._digest = hashlib.sha256()  # over (id, body_sha256) of every event, in id order

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        schema = SCHEMAS[table]
        if table not in self._writers:
            self._writers[table] = pq.ParquetWriter(self.folder / f"{table}.parquet.partial", schema,
                                                    compression="zstd", compression_level=3)
        columns = list(zip(*rows))
        self._writers[table].write_table(pa.Table.from_arrays(
            [pa.array(column, type=field.type) for column, field in zip(columns, schema)], schema=schema))
        self.rows[table] += len(rows)
        if table == "events":
            for row in rows:
                self._digest.update(f"{row[0]}:{row[6]}\n".encode())
                if self.ranges and self.ranges[-1][1] == row[0] - 1:
                    self.ranges[-1][1] = row[0]
                else:
                    self.ranges.append([row[0], row[0]])

    def close(self, created_at: str, engine: str) -> str:
        """Finish the files and write the manifest; its sha256."""
        files = {}
        for table, writer in self._writers.items():
            writer.close()
            final = self.folder / f"{table}.parquet"
            _sync_replace(self.folder / f"{table}.parquet.partial", final)
            files[final.name] = {"table": table, "rows": self.rows[table], "bytes": final.stat().st_size,
                                 "sha256": file_sha256(final)}
        manifest = {"format": FORMAT, "name": self.name, "before": self.before, "created_at": created_at,
                    "engine": engine, "files": files,
                    "events": {"rows": self.rows["events"], "first_id": self.ranges[0][0] if self.ranges else None,
                               "last_id": self.ranges[-1][1] if self.ranges else None, "ranges": self.ranges,
                               "digest": self._digest.hexdigest()},
                    "tables": self.rows}
        temporary = self.folder / f"{MANIFEST}.partial"
        temporary.write_text(json.dumps(manifest, indent=1))
        _sync_replace(temporary, self.folder / MANIFEST)
        return file_sha256(self.folder / MANIFEST)

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise ArchiveError(f"the archive's manifest {folder / MANIFEST} cannot be read ({error})") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{folder / MANIFEST} is of an archive format this bchooks does not know")
    return manifest


def check_files(folder: Path, manifest: dict) -> None:
    """Every file of the manifest is there with its sha256; `ArchiveError` (one line) otherwise."""
    for name, described in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ArchiveError(f"the archive file {path} is missing")
        if file_sha256(path) != described["sha256"]:
            raise ArchiveError(f"the archive file {path} does not match its manifest (sha256 differs): it was "
                               "changed or damaged; refusing to use it")


def verify(folder: Path, manifest: dict) -> None:
    """Read the files back: each file's sha256 and row count, every event body hashed again and equal to the
    store's `body_sha256`, and the ids and digests in the order they were written."""
    check_files(folder, manifest)
    for name, described in manifest["files"].items():
        if pq.ParquetFile(folder / name).metadata.num_rows != described["rows"]:
            raise ArchiveError(f"the archive file {folder / name} holds another number of rows than written")
    events = folder / "events.parquet"
    if not manifest["events"]["rows"]:
        return
    digest = hashlib.sha256()
    for batch in pq.ParquetFile(events).iter_batches(batch_size=2000, columns=["id", "body", "body_sha256"]):
        for event_id, body, sha in zip(*(column.to_pylist() for column in batch.columns)):
            if hashlib.sha256(body).hexdigest() != sha:
                raise ArchiveError(f"event {event_id} read back from {events} differs from the store's bytes")
            digest.update(f"{event_id}:{sha}\n".encode())
    if digest.hexdigest() != manifest["events"]["digest"]:
        raise ArchiveError(f"the events read back from {events} are not those written")


def event_ids(folder: Path) -> list[int]:
    path = folder / "events.parquet"
    return pq.read_table(path, columns=["id"])["id"].to_pylist() if path.exists() else []


def row_ids(folder: Path, table: str) -> list[int]:
    path = folder / f"{table}.parquet"
    return pq.read_table(path, columns=["id"])["id"].to_pylist() if path.exists() else []


def file_sets(directory: str | os.PathLike) -> list[tuple[Path, dict]]:
    """The complete file sets of an archive directory (those with a manifest), oldest first."""
    root = Path(directory)
    if not root.is_dir():
        raise ArchiveError(f"no archive directory at {root}")
    return [(folder, read_manifest(folder)) for folder in sorted(root.iterdir())
            if folder.is_dir() and (folder / MANIFEST).is_file()]


def archived_events(directory: str | os.PathLike, *, first_id: int | None = None, last_id: int | None = None,
                    since: str | None = None, until: str | None = None, ids: list[int] | None = None,
                    types: tuple | None = None, columns: tuple | None = None,
                    sets: list | None = None) -> Iterator[pa.RecordBatch]:
    """The archived events selected (an id range, received since/until, ids, types) as record batches, set by
    set (oldest first) and in id order within a set. An event archived twice (restored, then archived again) is
    given by each set that holds it: callers that need it once drop repeated ids."""
    wanted = set(ids) if ids else None
    for folder, manifest in sets if sets is not None else file_sets(directory):
        low, high = manifest["events"]["first_id"], manifest["events"]["last_id"]
        if low is None or (first_id is not None and high < first_id) or (last_id is not None and low > last_id):
            continue
        if wanted is not None and not any(low <= i <= high for i in wanted):
            continue
        for batch in pq.ParquetFile(folder / "events.parquet").iter_batches(batch_size=5000, columns=columns):
            mask = None
            for condition in _conditions(batch, first_id, last_id, since, until, wanted, types):
                mask = condition if mask is None else pc.and_(mask, condition)
            yield batch if mask is None else batch.filter(mask)


def _conditions(batch, first_id, last_id, since, until, wanted, types):
    names = batch.schema.names
    if first_id is not None:
        yield pc.greater_equal(batch.column(names.index("id")), first_id)
    if last_id is not None:
        yield pc.less_equal(batch.column(names.index("id")), last_id)
    if since:
        yield pc.greater_equal(batch.column(names.index("received_at")), since)
    if until:
        yield pc.less(batch.column(names.index("received_at")), until)
    if wanted is not None:
        yield pc.is_in(batch.column(names.index("id")), value_set=pa.array(sorted(wanted), type=pa.int64()))
    if types:
        yield pc.is_in(batch.column(names.index("type")), value_set=pa.array(list(types), type=pa.string()))


def order_rows(directory: str | os.PathLike, first_id: int, last_id: int, types: tuple) -> list[tuple]:
    """(id, account_id, body, body_sha256, received_at) of the archived events of `types` with first_id <= id <=
    last_id, in id order, each id once (what `Store.order_rows` gives for stored events: the analysis reads both)."""
    found: dict = {}
    for batch in archived_events(directory, first_id=first_id, last_id=last_id, types=types,
                                 columns=(*ORDER_ROW, "type")):
        for row in zip(*(batch.column(name).to_pylist() for name in ORDER_ROW)):
            found.setdefault(row[0], row)
    return [found[key] for key in sorted(found)]


def event_found(directory: str | os.PathLike, event_id: int) -> str | None:
    """The `body_sha256` of an archived event, or None."""
    for batch in archived_events(directory, first_id=event_id, last_id=event_id, columns=("id", "body_sha256")):
        if batch.num_rows:
            return batch.column(1)[0].as_py()
    return None
