"""Copying one store into another (`bchooks migrate --from bchooks.db --to postgresql://...`, or back).

Every event keeps its id and its exact bytes; rejections (the sample and the counts), handler runs and their marks,
reconciliations, polling cursors, shop names and forwarding positions come along. Events are copied in id order, a
batch a transaction, so an interrupted copy goes on from the last batch that committed, and running it again copies
nothing twice (every insert is `ON CONFLICT DO NOTHING`). A target that already holds *other* events under the same ids is
refused: ids are the event's identity for the worker and the analysis cache.
"""

from dataclasses import dataclass, field

from ..errors import StoreError

#: the tables after `events`: (name, columns, key columns, whether it has its own generated id)
TABLES = (
    ("rejections", ("id", "received_at", "remote_addr", "path", "reason", "size"), ("id",), True),
    ("rejection_counts", ("minute", "reason", "count", "bytes"), ("minute", "reason"), False),
    ("handler_runs", ("event_id", "handler", "status", "attempts", "next_attempt_at", "claimed_by", "claimed_until",
                      "last_error", "updated_at"), ("event_id", "handler"), False),
    ("handler_marks", ("handler", "watermark"), ("handler",), False),
    ("reconciliations", ("id", "started_at", "finished_at", "since", "checked", "missing", "stale", "error"),
     ("id",), True),
    ("cursors", ("account_id", "name", "value", "updated_at"), ("account_id", "name"), False),
    ("accounts", ("account_id", "store_name", "updated_at"), ("account_id",), False),
    ("forwarding_positions", ("target", "last_id", "forwarded", "updated_at"), ("target",), False),
    ("alerts", ("id", "key", "rule", "subject", "state", "message", "started_at", "ended_at", "sent_at", "sends",
                "recovery_sent_at", "last_error"), ("id",), True),
    ("poll_outcomes", ("account_id", "last_attempt_at", "last_success_at", "failures", "last_error", "missing"),
     ("account_id",), False),
    ("archives", ("id", "name", "directory", "before", "state", "started_at", "finished_at", "first_id", "last_id",
                  "events", "manifest_sha256"), ("id",), True),
    ("poll_leases", ("account_id", "holder", "held_until", "polled_at", "updated_at"), ("account_id",), False),
    ("shipments", ("account_id", "order_id", "attempt", "who", "started_at", "carrier", "tracking_number",
                   "tracking_url", "items", "notify", "state", "answered_at", "status", "shipment_id", "error",
                   "order_updated_at", "order_status"), ("account_id", "order_id", "attempt"), False),
)
EVENT_COLUMNS = ("id", "received_at", "type", "account_id", "resource_id", "body", "body_sha256", "signature_header",
                 "remote_addr")


@dataclass
class Copied:
    """What a copy did: rows copied and rows already in the target, per table."""

    copied: dict = field(default_factory=dict)
    present: dict = field(default_factory=dict)

    def lines(self):
        return [f"{table}: {self.copied[table]:,} copied, {self.present.get(table, 0):,} already there"
                for table in self.copied]


def _insert(target, conn, table, columns, rows):
    """Insert rows, skipping those whose key is already there; how many were new. (Text the target cannot hold, a
    NUL character on PostgreSQL, is written as the store writes it, `\\u0000`.)"""
    if not rows:
        return 0
    marks = ", ".join("?" * len(columns))
    try:
        return conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                                [target._text_safe(row) for row in rows]).rowcount
    except ValueError as error:  # (text that is not UTF-8: one sentence, never a traceback)
        raise StoreError(f"a row of {table} cannot be copied into {target.path}: {error}") from None


def _resume_point(source, target, last_id):
    """The id after which events still need copying: the target's newest event up to `last_id`, if it is the
    source's event of that id (an earlier copy's last batch), else 0 (the checks of every batch then apply)."""
    rows = target._read("SELECT id, body_sha256 FROM events WHERE id <= ? ORDER BY id DESC LIMIT 1", (last_id,))
    if not rows:
        return 0
    found = source._read("SELECT body_sha256 FROM events WHERE id = ?", (rows[0][0],))
    return rows[0][0] if found and found[0][0] == rows[0][1] else 0


def _copy_events(source, target, batch, progress, copied):
    last_id, _ = source.last_event()
    after = _resume_point(source, target, last_id)
    present = source.read_value("SELECT count(*) FROM events WHERE id <= ?", (after,))
    if progress:
        progress(present, source.count())
    while True:
        rows = source._read(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > ? ORDER BY id LIMIT ?",
                            (after, batch))
        if not rows:
            break
        rows = [(*row[:5], row[5].encode("utf-8", "surrogatepass") if isinstance(row[5], str) else bytes(row[5]),
                 *row[6:]) for row in rows]
        with target.transaction(appending=True) as conn:
            new = _insert(target, conn, "events", EVENT_COLUMNS, rows)
            if new < len(rows):  # each row not inserted must be the same event (id and bytes), already there
                ids = [row[0] for row in rows]
                marks = ",".join("?" * len(ids))
                there = dict(conn.execute(f"SELECT id, body_sha256 FROM events WHERE id IN ({marks})",
                                          ids).fetchall())
                for row in rows:
                    if there.get(row[0]) != row[6] and not conn.execute(
                            "SELECT 1 FROM events WHERE body_sha256 = ?", (row[6],)).fetchall():
                        raise StoreError(f"the target {target.path} holds another event under id {row[0]}: "
                                         "migrate into an empty store (or one an earlier migrate filled)")
        copied.copied["events"] = copied.copied.get("events", 0) + new
        present += len(rows) - new
        after = rows[-1][0]
        if progress:
            progress(len(rows), None)
    copied.copied.setdefault("events", 0)
    copied.present["events"] = present


def _copy_table(source, target, table, columns, keys, batch, copied):
    """Copy a table in key order, a batch a transaction (keyset pages: each page a seek, however large the table)."""
    new = seen = 0
    after = None
    order = ", ".join(keys)
    positions = [columns.index(key) for key in keys]
    while True:
        where = "" if after is None else f"WHERE ({order}) > ({', '.join('?' * len(keys))}) "
        rows = source._read(f"SELECT {', '.join(columns)} FROM {table} {where}ORDER BY {order} LIMIT ?",
                            (*(after or ()), batch))
        if not rows:
            break
        with target.transaction() as conn:
            new += _insert(target, conn, table, columns, [tuple(row) for row in rows])
        seen += len(rows)
        after = tuple(rows[-1][i] for i in positions)
    copied.copied[table] = new
    copied.present[table] = seen - new


def _advance_ids(target):
    """After explicit ids were inserted, let the target's own ids start above them (PostgreSQL's identity
    sequences; SQLite takes max(id) + 1 by itself)."""
    if target.engine != "postgresql":
        return
    with target.transaction() as conn:
        for table in ("events", "rejections", "reconciliations", "alerts", "archives"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" greatest((SELECT max(id) FROM {table}), 1), (SELECT max(id) FROM {table}) IS NOT NULL)")


def copy_store(source, target, *, batch: int = 2000, progress=None) -> Copied:
    """Copy every row of `source` into `target` (two open stores, of either engine); `progress(n, total)` is told
    of each batch of events (`total` once, first)."""
    if source.path == target.path and source.engine == target.engine:
        raise StoreError("--from and --to name the same store")
    copied = Copied()
    _copy_events(source, target, batch, progress, copied)
    for table, columns, keys, _ in TABLES:
        _copy_table(source, target, table, columns, keys, batch, copied)
    _advance_ids(target)
    return copied
