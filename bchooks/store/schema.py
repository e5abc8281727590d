"""The event store's schema: versioned migrations applied in order, the same versions on each engine.

SQLite keeps the version in `PRAGMA user_version`, PostgreSQL in the one-row table `bchooks_schema`. Each version
has one text per engine (`MIGRATIONS`, `POSTGRES_MIGRATIONS`), giving the same tables and the same public columns;
a test holds them equal.
"""

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
    # 7: each shop's newest event found by an index seek (alerts and metrics ask it at every check and scrape)
    """
    CREATE INDEX events_account_id ON events (account_id, id);
    """,
    # 8: forwarding: how far `bchooks listen --forward-to` has sent the events on, per target
    """
    CREATE TABLE forwarding_positions (
        target TEXT PRIMARY KEY,            -- the target URL without credentials or query
        last_id INTEGER NOT NULL,           -- the newest event id delivered (every one before it too)
        forwarded INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    );
    """,
    # 9: alerts: each incident (open while its condition lasts, then its recovery), and each shop's poll outcomes
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,                  -- the rule and what it is about, e.g. quiet:1234567
        rule TEXT NOT NULL,                 -- dead_runs, rejections, quiet, poll_failing, missing_orders, store_size
        subject TEXT,                       -- the shop or reason, or NULL
        state TEXT NOT NULL,                -- active, recovered (recovery not yet sent), closed
        message TEXT NOT NULL,              -- what it says, as of the last evaluation
        started_at TEXT NOT NULL,           -- ISO-8601 UTC
        ended_at TEXT,
        sent_at TEXT,                       -- the last time it was sent (NULL: not yet)
        sends INTEGER NOT NULL DEFAULT 0,
        recovery_sent_at TEXT,
        last_error TEXT                     -- the channel's last failure, redacted
    );
    CREATE UNIQUE INDEX alerts_active_key ON alerts (key) WHERE state = 'active';
    CREATE INDEX alerts_state ON alerts (state, id);
    CREATE TABLE poll_outcomes (
        account_id TEXT PRIMARY KEY,
        last_attempt_at TEXT NOT NULL,
        last_success_at TEXT,
        failures INTEGER NOT NULL DEFAULT 0, -- failed polls in a row
        last_error TEXT,                    -- one line, redacted
        missing INTEGER NOT NULL DEFAULT 0  -- orders the last reconcile found missing
    );
    """,
    # 10: archive runs: which file set holds which events, and how far each run got (a rerun finishes it)
    """
    CREATE TABLE archives (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,                 -- the run's folder in the archive directory
        directory TEXT NOT NULL,            -- the archive directory (absolute)
        before TEXT NOT NULL,               -- rows received before this time (ISO-8601 UTC)
        state TEXT NOT NULL,                -- writing, deleting, done, abandoned
        started_at TEXT NOT NULL,
        finished_at TEXT,
        first_id INTEGER,
        last_id INTEGER,
        events INTEGER,
        manifest_sha256 TEXT
    );
    """,
    # 11: poll leases: which poller polls which shop until when, and when each shop's last poll ended
    """
    CREATE TABLE poll_leases (
        account_id TEXT PRIMARY KEY,
        holder TEXT,                        -- the poller holding it (host:pid:random), NULL when free
        held_until REAL NOT NULL,           -- unix seconds by the database's clock: free after it
        polled_at REAL,                     -- when its last poll ended (unix seconds, the database's clock)
        updated_at TEXT NOT NULL
    );
    """,
    # 12: shipments the kit sent: one row per (account, order, attempt), written before the call and after it
    """
    CREATE TABLE shipments (
        account_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,           -- 1, 2... per order
        who TEXT NOT NULL,                  -- who sent it (user@host, handler:NAME, panel)
        started_at TEXT NOT NULL,           -- ISO-8601 UTC, recorded before the call
        carrier TEXT,
        tracking_number TEXT,
        tracking_url TEXT,
        items TEXT,                         -- JSON [[order_line_item_id, quantity], ...], NULL: every line
        notify INTEGER NOT NULL DEFAULT 0,  -- the customer was to be told
        state TEXT NOT NULL,                -- pending (no answer yet, or none came), shipped, failed
        answered_at TEXT,                   -- when the API answered (NULL: no answer)
        status INTEGER,                     -- the API's HTTP status
        shipment_id TEXT,
        error TEXT,                         -- one line, redacted
        order_updated_at TEXT,              -- the order's updated_at after the change (its echo carries it)
        order_status TEXT,                  -- the order's shipping_status after the change
        PRIMARY KEY (account_id, order_id, attempt)
    );
    CREATE INDEX shipments_started ON shipments (started_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

POSTGRES_MIGRATIONS = (
    # 1
    """
    CREATE TABLE events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        received_at TEXT NOT NULL,
        type TEXT NOT NULL,
        account_id TEXT,
        resource_id TEXT,
        body BYTEA NOT NULL,
        body_sha256 TEXT NOT NULL UNIQUE,
        signature_header TEXT,
        remote_addr TEXT
    );
    CREATE INDEX events_type_id ON events (type, id);
    """,
    # 2
    """
    CREATE TABLE rejections (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        received_at TEXT NOT NULL,
        remote_addr TEXT,
        path TEXT,
        reason TEXT NOT NULL,
        size BIGINT
    );
    """,
    # 3
    """
    CREATE TABLE handler_runs (
        event_id BIGINT NOT NULL,
        handler TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        claimed_by TEXT,
        claimed_until DOUBLE PRECISION,
        last_error TEXT,
        updated_at TEXT,
        PRIMARY KEY (event_id, handler)
    );
    CREATE INDEX handler_runs_due ON handler_runs (status, next_attempt_at);
    CREATE TABLE handler_marks (handler TEXT PRIMARY KEY, watermark BIGINT NOT NULL);
    CREATE TABLE reconciliations (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        since TEXT,
        checked BIGINT,
        missing BIGINT,
        stale BIGINT,
        error TEXT
    );
    """,
    # 4
    """
    CREATE TABLE rejection_counts (
        minute TEXT NOT NULL,
        reason TEXT NOT NULL,
        count BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (minute, reason)
    );
    """,
    # 5
    """
    CREATE TABLE cursors (
        account_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    );
    CREATE INDEX events_account_resource ON events (account_id, resource_id);
    """,
    # 6
    """
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        store_name TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 7
    """
    CREATE INDEX events_account_id ON events (account_id, id);
    """,
    # 8
    """
    CREATE TABLE forwarding_positions (
        target TEXT PRIMARY KEY,
        last_id BIGINT NOT NULL,
        forwarded BIGINT NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    );
    """,
    # 9
    """
    CREATE TABLE alerts (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        key TEXT NOT NULL,
        rule TEXT NOT NULL,
        subject TEXT,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        sent_at TEXT,
        sends INTEGER NOT NULL DEFAULT 0,
        recovery_sent_at TEXT,
        last_error TEXT
    );
    CREATE UNIQUE INDEX alerts_active_key ON alerts (key) WHERE state = 'active';
    CREATE INDEX alerts_state ON alerts (state, id);
    CREATE TABLE poll_outcomes (
        account_id TEXT PRIMARY KEY,
        last_attempt_at TEXT NOT NULL,
        last_success_at TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        missing BIGINT NOT NULL DEFAULT 0
    );
    """,
    # 10
    """
    CREATE TABLE archives (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        directory TEXT NOT NULL,
        before TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        first_id BIGINT,
        last_id BIGINT,
        events BIGINT,
        manifest_sha256 TEXT
    );
    """,
    # 11
    """
    CREATE TABLE poll_leases (
        account_id TEXT PRIMARY KEY,
        holder TEXT,
        held_until DOUBLE PRECISION NOT NULL,
        polled_at DOUBLE PRECISION,
        updated_at TEXT NOT NULL
    );
    """,
    # 12
    """
    CREATE TABLE shipments (
        account_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        who TEXT NOT NULL,
        started_at TEXT NOT NULL,
        carrier TEXT,
        tracking_number TEXT,
        tracking_url TEXT,
        items TEXT,
        notify INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        answered_at TEXT,
        status INTEGER,
        shipment_id TEXT,
        error TEXT,
        order_updated_at TEXT,
        order_status TEXT,
        PRIMARY KEY (account_id, order_id, attempt)
    );
    CREATE INDEX shipments_started ON shipments (started_at);
    """,
)
assert len(POSTGRES_MIGRATIONS) == SCHEMA_VERSION


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


def migrate_postgres(conn, target=SCHEMA_VERSION):
    """The same on PostgreSQL (`conn`: a psycopg connection in autocommit mode), in one transaction under an
    advisory lock, so that receivers starting together on several hosts apply each migration once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7326512)")  # (bchooks' migrations, any number will do)
        conn.execute("CREATE TABLE IF NOT EXISTS bchooks_schema (version INTEGER NOT NULL)")
        if conn.execute("SELECT count(*) FROM bchooks_schema").fetchone()[0] == 0:
            conn.execute("INSERT INTO bchooks_schema (version) VALUES (0)")
        current = conn.execute("SELECT version FROM bchooks_schema").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(f"the database has schema version {current}, newer than this bchooks knows "
                             f"({SCHEMA_VERSION}): upgrade bchooks")
        for version in range(current + 1, target + 1):
            with conn.transaction():  # (a savepoint: a failing migration leaves the versions before it)
                conn.execute(POSTGRES_MIGRATIONS[version - 1])
                conn.execute("UPDATE bchooks_schema SET version = %s", (version,))
