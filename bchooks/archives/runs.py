"""One archive run: write the old rows to a file set, verify it by reading it back, then delete those rows in
short transactions and give the space back. Killed at any point and run again, nothing is lost and nothing is
archived twice:

    writing    nothing deleted yet; the next run removes the folder and starts again
    deleting   the files are verified; the next run checks them (sha256) and deletes what is left of their ids
    done       the rows are in the files and gone from the store
"""

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..clock import now_iso
from ..errors import ArchiveError, InputError
from .files import FileSetWriter, check_files, event_ids, read_manifest, row_ids, verify

log = logging.getLogger("bchooks.archives")

BATCH = 250  # events a delete transaction: the writers' lock is held for tens of milliseconds
PAGES = 4  # batches a page read from the store (a row group of the file: 1,000 events by default)
PAUSE = 0.02  # least seconds between two transactions; at least as long as the last one took, so the receiver's
#               commits always get half the time or more


@dataclass
class Archived:
    """What `archive` did: each run's folder and rows, and the space before and after."""

    runs: list = field(default_factory=list)  # dicts: name, folder, state, events, handler_runs, ..., deleted
    space_before: dict = field(default_factory=dict)
    space_after: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(run.get("deleted", 0) for run in self.runs)

    def lines(self) -> list[str]:
        out = []
        for run in self.runs:
            if run["state"] == "empty":
                out.append("nothing to archive: no event, rejection or reconciliation that old")
                continue
            tables = ", ".join(f"{count:,} {table}" for table, count in run["tables"].items() if count)
            out.append(f"{run['folder']}: {tables or 'no rows'}{' (an interrupted run, finished)' if run.get('resumed') else ''}"
                       f"; {run['deleted']:,} events deleted from the store")
        before, after = self.space_before, self.space_after
        if before and after:
            given = before["file_bytes"] - after["file_bytes"]
            free = after.get("free_bytes")
            out.append(f"space: {_mb(before['file_bytes'])} before, {_mb(after['file_bytes'])} after"
                       f" ({_mb(given)} given back{f', {_mb(free)} free inside for new events' if free else ''})")
        return out


def _mb(size: int) -> str:
    return f"{size / 2 ** 20:,.1f} MB"


def usable_directory(directory: str | os.PathLike) -> Path:
    """The archive directory, which must exist and be writable: `InputError` (one line) otherwise."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise InputError(f"the archive directory {path} does not exist (create it, or pass another --to)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"the archive directory {path} cannot be written")
    try:
        probe = path / f".bchooks-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(f"the archive directory {path} cannot be written ({error.strerror})") from None
    return path.resolve()


@contextmanager
def _one_at_a_time(directory: Path):
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(f"another archive is running into {directory}") from None
        yield


def archive(store, before: str, directory: str | os.PathLike, *, batch: int = BATCH, pause: float = PAUSE,
            progress: Callable[[str, int], None] | None = None) -> Archived:
    """Archive the rows received before `before` (ISO-8601 UTC) into a new file set in `directory`: events whose
    handler runs are finished (with those runs), the rejections' sample rows and finished reconciliations. Runs an
    interrupted run's rest first. `progress(stage, n)` hears of each page written and each transaction deleted."""
    started = time.monotonic()
    directory = usable_directory(directory)
    done = Archived(space_before=store.archives.space())
    with _one_at_a_time(directory):
        for run in store.archives.unfinished():
            if run["state"] == "writing":
                _abandon(store, run)
            else:
                done.runs.append(_delete(store, run, batch, pause, progress, resumed=True))
        run_id, name = store.archives.begin(str(directory), before)
        run = {"id": run_id, "name": name, "directory": str(directory), "before": before}
        try:
            written = _write(store, run, batch, pause, progress)
        except ArchiveError:  # (the files did not read back equal: nothing was deleted; they go)
            _abandon(store, run)
            raise
        if written is None:
            store.archives.set_state(run_id, "done", events=0)
            done.runs.append({"state": "empty", "deleted": 0})
        else:
            store.archives.set_state(run_id, "deleting", **written)
            done.runs.append(_delete(store, {**run, **written}, batch, pause, progress))
    give_space_back(store, pause)
    done.space_after = store.archives.space()
    done.seconds = time.monotonic() - started
    return done


def _abandon(store, run: dict) -> None:
    """A run killed while writing: nothing was deleted for it; its folder goes."""
    folder = Path(run["directory"]) / run["name"]
    if run["name"] and folder.is_dir():
        shutil.rmtree(folder)
    store.archives.set_state(run["id"], "abandoned")
    log.info("archive %s was interrupted while writing: its files were removed (nothing had been deleted)",
             run["name"])


def _write(store, run: dict, batch: int, pause: float, progress) -> dict | None:
    """Write and verify the run's file set; its manifest's facts, or None when there was nothing to archive."""
    folder = Path(run["directory"]) / run["name"]
    writer = FileSetWriter(folder, run["name"], run["before"])
    try:
        upper, after = store.archives.upper_id(), 0
        while True:
            rows = store.archives.old_events(run["before"], after, upper, batch * PAGES)
            if not rows:
                break
            writer.write("events", rows)
            ids = {row[0] for row in rows}
            writer.write("handler_runs", [r for r in store.archives.finished_runs(rows[0][0], rows[-1][0])
                                          if r[0] in ids])
            after = rows[-1][0]
            if progress:
                progress("written", len(rows))
            time.sleep(pause)
        for table in ("rejections", "reconciliations"):
            writer.write(table, store.archives.old_rows(table, run["before"]))
        if not any(writer.rows.values()):
            writer.abort()
            shutil.rmtree(folder)
            return None
        manifest_sha256 = writer.close(now_iso(), store.engine)
    except BaseException:
        writer.abort()
        raise
    manifest = read_manifest(folder)
    verify(folder, manifest)
    return {"first_id": manifest["events"]["first_id"], "last_id": manifest["events"]["last_id"],
            "events": manifest["events"]["rows"], "manifest_sha256": manifest_sha256}


def _delete(store, run: dict, batch: int, pause: float, progress, resumed: bool = False) -> dict:
    """Delete the rows of a verified file set, a transaction of `batch` events at a time (what an earlier,
    interrupted run deleted is simply not found again)."""
    from .files import file_sha256, MANIFEST
    folder = Path(run["directory"]) / run["name"]
    if not (folder / MANIFEST).is_file() or file_sha256(folder / MANIFEST) != run["manifest_sha256"]:
        raise ArchiveError(f"the archive {folder} of an interrupted run is missing or changed: its rows are left "
                           "in the store until its files are back")
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    ids, deleted = event_ids(folder), 0
    for start in range(0, len(ids), batch):
        began = time.monotonic()
        deleted += store.archives.delete_events(ids[start:start + batch])
        if progress:
            progress("deleted", len(ids[start:start + batch]))
        time.sleep(max(pause, time.monotonic() - began))
    for table in ("rejections", "reconciliations"):
        store.archives.delete_rows(table, row_ids(folder, table))
    store.archives.set_state(run["id"], "done")
    return {"state": "done", "name": run["name"], "folder": str(folder), "tables": manifest["tables"],
            "deleted": deleted, "resumed": resumed}


def give_space_back(store, pause: float = PAUSE) -> None:
    """SQLite with incremental auto-vacuum: free pages returned to the file system a short transaction at a time;
    PostgreSQL: a plain VACUUM (space reused by new rows; readers and writers go on)."""
    if store.engine == "postgresql":
        store.archives.vacuum()
        return
    for _ in range(100_000):  # (bounded: each step returns up to 2000 pages)
        began = time.monotonic()
        if not store.archives.release(2000):
            break
        time.sleep(max(pause, time.monotonic() - began))
    store.checkpoint(hold_writers=True)  # (the file shrinks when the log is copied into it to its end)
