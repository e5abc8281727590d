"""The event store's schema: versioned migrations applied in order (`PRAGMA user_version`)."""

from ..errors import StoreError

MIGRATIONS = (
    # 1: the events table (public contract)
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,          -- ISO-8601 UTC, milliseconds
        type TEXT NOT NULL,
        account_id TEXT,
        resource_id TEXT,
        body BLOB NOT NULL,                 -- the exact bytes received
        body_sha256 TEXT NOT NULL UNIQUE,
        signature_header TEXT,
        remote_addr TEXT
    );
    CREATE INDEX events_type_id ON events (type, id);
    """,
    # 2: rejected requests, never with their body
    """
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        remote_addr TEXT,
        path TEXT,
        reason TEXT NOT NULL,
        size INTEGER
    );
    """,
    # 3: durable processing: one row per (event, handler); reconciliation runs
    """
    CREATE TABLE handler_runs (
        event_id INTEGER NOT NULL,
        handler TEXT NOT NULL,
        status TEXT NOT NULL,               -- pending, running, done, failed, dead
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,      -- unix seconds
        claimed_by TEXT,
        claimed_until REAL,
        last_error TEXT,
        updated_at TEXT,
        PRIMARY KEY (event_id, handler)
    );
    CREATE INDEX handler_runs_due ON handler_runs (status, next_attempt_at);
    CREATE TABLE handler_marks (handler TEXT PRIMARY KEY, watermark INTEGER NOT NULL);
    CREATE TABLE reconciliations (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        since TEXT,
        checked INTEGER,
        missing INTEGER,
        stale INTEGER,
        error TEXT
    );
    """,
    # 4: rejections counted per minute and reason (the `rejections` table keeps a bounded sample)
    """
    CREATE TABLE rejection_counts (
        minute TEXT NOT NULL,               -- ISO-8601 UTC, e.g. 2026-11-28T03:17Z
        reason TEXT NOT NULL,
        count INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (minute, reason)
    );
    """,
    # 5: polling: where each shop's last walk of each resource ended
    """
    CREATE TABLE cursors (
        account_id TEXT NOT NULL,
        name TEXT NOT NULL,                 -- orders, products
        value TEXT NOT NULL,                -- orders: the newest updated_at stored
        updated_at TEXT NOT NULL,           -- when the cursor last moved (the shop's last poll)
        PRIMARY KEY (account_id, name)
    );
    CREATE INDEX events_account_resource ON events (account_id, resource_id);
    """,
    # 6: the shops seen, by account: their names, for the analysis frames
    """
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        store_name TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn, target=SCHEMA_VERSION):
    """Apply the migrations after the file's `user_version`, up to `target`, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(f"the database has schema version {current}, newer than this bchooks knows "
                         f"({SCHEMA_VERSION}): upgrade bchooks")
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
