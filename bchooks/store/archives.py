"""Archive runs in the store: choosing the rows an archive takes, deleting them in short transactions, restoring
events, and giving the space back (`bchooks archive`, `bchooks restore`; the files are `bchooks.archives`' part).

The `archives` table keeps one row per run: its folder, its `before` and how far it got (`writing`, `deleting`,
`done`, `abandoned`), so a run killed at any point is finished by the next one. Two rules keep ids an event's
identity for ever: the newest event (and the newest row of each archived table) is never archived, so SQLite never
hands out an archived id again; and events a handler has not finished with (pending, running or failed runs, or
not yet enqueued: above a handler's watermark) stay in the store.
"""

from ..clock import now_iso
from ..errors import StoreError
from .interface import StorePart
from .transfer import EVENT_COLUMNS, TABLES

RUN_COLUMNS = next(t[1] for t in TABLES if t[0] == "handler_runs")
REJECTION_COLUMNS = next(t[1] for t in TABLES if t[0] == "rejections")
RECONCILIATION_COLUMNS = next(t[1] for t in TABLES if t[0] == "reconciliations")
FINISHED = ("done", "dead")
#: the archived tables other than events: (table, columns, the time column a row is old by)
SIDE_TABLES = (("rejections", REJECTION_COLUMNS, "received_at"),
               ("reconciliations", RECONCILIATION_COLUMNS, "started_at"))
_UNFINISHED_RUNS = ("NOT EXISTS (SELECT 1 FROM handler_runs r WHERE r.event_id = events.id"
                    " AND r.status NOT IN ('done', 'dead'))")
_ARCHIVE_COLUMNS = ("id", "name", "directory", "before", "state", "started_at", "finished_at", "first_id",
                    "last_id", "events", "manifest_sha256")


class ArchiveLog(StorePart):
    # -- the runs
    def unfinished(self) -> list[dict]:
        """The runs a crash left in `writing` or `deleting`, oldest first."""
        return self.store.read_dicts(f"SELECT {', '.join(_ARCHIVE_COLUMNS)} FROM archives"
                                     " WHERE state IN ('writing', 'deleting') ORDER BY id")

    def runs(self, limit: int = 20) -> list[dict]:
        """The newest runs, newest first."""
        return self.store.read_dicts(f"SELECT {', '.join(_ARCHIVE_COLUMNS)} FROM archives ORDER BY id DESC LIMIT ?",
                                     (limit,))

    def last_finished_at(self) -> str | None:
        """When the last run finished (the retention schedule's clock), or None."""
        return self.store.read_value("SELECT max(finished_at) FROM archives WHERE state = 'done'")

    def begin(self, directory: str, before: str) -> tuple[int, str]:
        """A new run in `writing`: (its id, its folder's name)."""
        started = now_iso()
        with self.store.transaction() as conn:
            run_id = conn.execute("INSERT INTO archives (name, directory, before, state, started_at)"
                                  " VALUES ('', ?, ?, 'writing', ?) RETURNING id",
                                  (directory, before, started)).fetchone()[0]
            name = f"{started[:19].replace('-', '').replace(':', '')}Z-{run_id:06d}"
            conn.execute("UPDATE archives SET name = ? WHERE id = ?", (name, run_id))
        return run_id, name

    def set_state(self, run_id: int, state: str, **fields) -> None:
        """Move a run on (`first_id`, `last_id`, `events`, `manifest_sha256` recorded with it)."""
        names = [name for name in ("first_id", "last_id", "events", "manifest_sha256") if name in fields]
        finished = now_iso() if state in ("done", "abandoned") else None
        self.store.write_one(f"UPDATE archives SET state = ?, finished_at = ?"
                             f"{''.join(f', {name} = ?' for name in names)} WHERE id = ?",
                             (state, finished, *(fields[name] for name in names), run_id))

    # -- choosing the rows
    def upper_id(self) -> int:
        """Events with an id below this may be archived: the newest event, and any event a handler has not yet
        been given (above the lowest watermark), stay."""
        newest = self.store.read_value("SELECT coalesce(max(id), 0) FROM events")
        marks = self.store.read_value("SELECT min(watermark) FROM handler_marks")
        return newest if marks is None else min(newest, int(marks) + 1)

    def old_events(self, before: str, after_id: int, upper: int, limit: int) -> list[tuple]:
        """The next `limit` events (all columns, `transfer.EVENT_COLUMNS`) with after_id < id < upper received
        before `before` whose handler runs are all finished, in id order; bodies as bytes."""
        rows = self.store._read(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > ? AND id < ?"
                                f" AND received_at < ? AND {_UNFINISHED_RUNS} ORDER BY id LIMIT ?",
                                (after_id, upper, before, limit))
        return [(*row[:5], row[5].encode("utf-8", "surrogatepass") if isinstance(row[5], str) else bytes(row[5]),
                 *row[6:]) for row in rows]

    def finished_runs(self, first_id: int, last_id: int) -> list[tuple]:
        """The done and dead handler runs of the events first_id..last_id (`RUN_COLUMNS`)."""
        return self.store._read(f"SELECT {', '.join(RUN_COLUMNS)} FROM handler_runs WHERE event_id BETWEEN ? AND ?"
                                " AND status IN ('done', 'dead') ORDER BY event_id, handler", (first_id, last_id))

    def old_rows(self, table: str, before: str) -> list[tuple]:
        """The rows of a side table (`SIDE_TABLES`: the rejections' bounded sample, finished reconciliations)
        older than `before`, but its newest row."""
        columns, when = next((c, w) for t, c, w in SIDE_TABLES if t == table)
        finished = " AND finished_at IS NOT NULL" if table == "reconciliations" else ""
        return self.store._read(f"SELECT {', '.join(columns)} FROM {table} WHERE {when} < ?{finished}"
                                f" AND id < (SELECT max(id) FROM {table}) ORDER BY id", (before,))

    # -- deleting
    def delete_events(self, ids: list[int], timeout: float | None = None) -> int:
        """Delete these events and their finished handler runs in one transaction (an event whose runs were put
        back to pending meanwhile stays); how many events were deleted."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self.store.transaction(timeout) as conn:
            conn.execute(f"DELETE FROM handler_runs WHERE event_id IN ({marks}) AND status IN ('done', 'dead')", ids)
            return conn.execute(f"DELETE FROM events WHERE id IN ({marks}) AND {_UNFINISHED_RUNS}", ids).rowcount

    def delete_rows(self, table: str, ids: list[int], timeout: float | None = None) -> int:
        """Delete rows of a side table by id in one transaction."""
        if table not in {t for t, _, _ in SIDE_TABLES}:
            raise StoreError(f"not an archived table: {table}")
        if not ids:
            return 0
        with self.store.transaction(timeout) as conn:
            return conn.execute(f"DELETE FROM {table} WHERE id IN ({','.join('?' * len(ids))})", ids).rowcount

    # -- restoring
    def insert_events(self, rows: list[tuple]) -> int:
        """Insert archived events with their ids and bytes (`EVENT_COLUMNS`) in one transaction; an id or a body
        still stored is skipped (never stored twice); how many were new. An id held by *other* bytes is refused."""
        if not rows:
            return 0
        marks = ", ".join("?" * len(EVENT_COLUMNS))
        with self.store.transaction(appending=True) as conn:
            ids = [row[0] for row in rows]
            there = dict(conn.execute(f"SELECT id, body_sha256 FROM events WHERE id IN ({','.join('?' * len(ids))})",
                                      ids).fetchall())
            for row in rows:
                if row[0] in there and there[row[0]] != row[6]:
                    raise StoreError(f"the store holds another event under id {row[0]}: not restoring over it")
            new = [self.store._text_safe(row) for row in rows if row[0] not in there]
            if not new:
                return 0
            return conn.executemany(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})"
                                    " ON CONFLICT DO NOTHING", new).rowcount

    def stored_ids(self, first_id: int, last_id: int) -> set[int]:
        """The ids stored between first_id and last_id."""
        return {row[0] for row in self.store._read("SELECT id FROM events WHERE id BETWEEN ? AND ?",
                                                   (first_id, last_id))}

    def advance_ids(self) -> None:
        """PostgreSQL: keep the events' id sequence above every id (restored ids are explicit)."""
        if self.store.engine == "postgresql":
            self.store.write_one("SELECT setval(pg_get_serial_sequence('events', 'id'), greatest((SELECT max(id) FROM"
                                 " events), pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass),"
                                 " 1))")

    # -- the space
    def space(self) -> dict:
        """SQLite: {file_bytes, free_bytes, auto_vacuum}; PostgreSQL: {file_bytes} of the archived tables."""
        if self.store.engine == "postgresql":
            size = self.store.read_value("SELECT CAST(sum(pg_total_relation_size(c)) AS BIGINT) FROM unnest("
                                         "ARRAY['events', 'handler_runs', 'rejections', 'reconciliations']) AS c")
            return {"file_bytes": int(size or 0), "free_bytes": None, "auto_vacuum": None}
        page = self.store.read_value("PRAGMA page_size")
        pages = self.store.read_value("PRAGMA page_count")
        free = self.store.read_value("PRAGMA freelist_count")
        mode = {0: "none", 1: "full", 2: "incremental"}.get(self.store.read_value("PRAGMA auto_vacuum"), "?")
        return {"file_bytes": page * pages, "free_bytes": page * free, "auto_vacuum": mode}

    def release(self, pages: int = 2000, timeout: float | None = None) -> int:
        """Give space back a step: SQLite with incremental auto-vacuum returns up to `pages` free pages to the
        file system in one short transaction (how many were free before; 0: done). Other SQLite files keep their
        free pages for new events (0). PostgreSQL: nothing here (`vacuum`)."""
        if self.store.engine != "sqlite" or self.store.read_value("PRAGMA auto_vacuum") != 2:
            return 0
        free = self.store.read_value("PRAGMA freelist_count")
        if free:
            with self.store.transaction(timeout) as conn:
                for _ in range(min(free, pages)):  # (Python's sqlite3 steps this pragma once: one page a call)
                    conn.execute("PRAGMA incremental_vacuum")
        return free

    def vacuum(self, full: bool = False) -> None:
        """PostgreSQL: a plain VACUUM of the archived tables (space reused, writers never blocked). SQLite with
        `full`: VACUUM, switching the file to incremental auto-vacuum (rewrites it: writers wait until it ends)."""
        if self.store.engine == "postgresql":
            with self.store._one_statement() as conn:
                conn.execute("SET statement_timeout = 0")
                try:
                    conn.execute("VACUUM (ANALYZE) events, handler_runs, rejections, reconciliations")
                finally:
                    conn.execute("RESET statement_timeout")
        elif full:
            with self.store.writers_turn(), self.store._lock:
                conn = self.store._connection()
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("VACUUM")
