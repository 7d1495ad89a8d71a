//! The schema and its migrations. Versions live in `scarecrow_schema`, one
//! row per migration applied; migrations are written expand-then-contract,
//! so that during a rolling upgrade a newer daemon and an older one share
//! the store: a migration that only adds (a table, a nullable column, an
//! index) keeps `compatible_from`, and one that removes or changes what
//! older code reads raises it, shipped a release after the code stopped
//! reading it.

use postgres::Client;

use super::error::chain;

/// One migration: its SQL and the oldest schema version whose code can
/// still use the store once it is applied.
struct Migration {
    sql: &'static str,
    compatible_from: i32,
}

/// Applied in order, each in its own transaction; never edit a shipped one,
/// append a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        compatible_from: 1,
    },
    // Raises `compatible_from`: a version 1 daemon would neither count its
    // runs for the leader nor check the lease's epoch.
    Migration {
        sql: V2,
        compatible_from: 2,
    },
    // Raises `compatible_from`: a version 2 daemon would count its runs
    // under a key the counters no longer have.
    Migration {
        sql: V3,
        compatible_from: 3,
    },
];

/// Serializes migrations of daemons starting together (a session lock,
/// held from before the version table is made to the last migration).
const MIGRATION_LOCK: i64 = 0x5ca7_ec40;

/// The SQLite schema's tables, with the same text columns, so that both
/// backends share the rows and the queries' meaning: timestamps are
/// RFC 3339 UTC with nine fractional digits, and the `C` collation makes
/// text order time order (and id order byte order, as in SQLite).
///
/// Runs are partitioned by the day they started (`runs_pYYYYMMDD`, made
/// as runs arrive): retention drops a day's partition instead of deleting
/// its rows. `runs_default` takes runs of days older than the retention
/// and the runs incidents refer to when their day is dropped.
const V1: &str = r#"
CREATE TABLE runs (
    seq          bigserial NOT NULL,
    run_id       text COLLATE "C" NOT NULL,
    check_name   text COLLATE "C" NOT NULL,
    started_at   text COLLATE "C" NOT NULL,
    duration_ms  double precision NOT NULL,
    result       text NOT NULL,
    reason       text,
    step         text,
    message      text,
    json         text NOT NULL
) PARTITION BY RANGE (started_at);
CREATE TABLE runs_default PARTITION OF runs DEFAULT;
CREATE INDEX runs_by_check ON runs (check_name, seq);
CREATE UNIQUE INDEX runs_by_id ON runs (run_id, started_at);

CREATE TABLE incidents (
    id               text COLLATE "C" PRIMARY KEY,
    key              text NOT NULL,
    check_name       text COLLATE "C" NOT NULL,
    severity         text NOT NULL,
    title            text NOT NULL,
    first_failure_at text COLLATE "C" NOT NULL,
    declared_at      text COLLATE "C" NOT NULL,
    resolved_at      text COLLATE "C",
    resolution       text,
    note             text,
    evidence         text NOT NULL,
    run_ids          text NOT NULL,
    json             text NOT NULL,
    updated_at       text COLLATE "C" NOT NULL
);
CREATE INDEX incidents_by_declared ON incidents (declared_at, id);
CREATE INDEX incidents_open ON incidents (declared_at, id) WHERE resolved_at IS NULL;
CREATE INDEX incidents_by_check ON incidents (check_name, declared_at);

CREATE TABLE events (
    id          text COLLATE "C" PRIMARY KEY,
    incident_id text COLLATE "C" NOT NULL,
    kind        text NOT NULL,
    at          text COLLATE "C" NOT NULL
);
CREATE INDEX events_by_incident ON events (incident_id, at, id);

CREATE TABLE check_states (
    check_name text COLLATE "C" PRIMARY KEY,
    state      text NOT NULL
);

CREATE TABLE outbox (
    id              text COLLATE "C" PRIMARY KEY,
    event_id        text NOT NULL,
    sink            text COLLATE "C" NOT NULL,
    kind            text NOT NULL,
    incident_id     text COLLATE "C" NOT NULL,
    item            text NOT NULL,
    state           text NOT NULL,
    attempts        bigint NOT NULL,
    next_attempt_at text COLLATE "C" NOT NULL,
    created_at      text COLLATE "C" NOT NULL,
    delivered_at    text,
    last_error      text,
    claimed_by      text COLLATE "C",
    claimed_until   text COLLATE "C"
);
CREATE INDEX outbox_pending ON outbox (created_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_incident ON outbox (incident_id, created_at, id);
CREATE INDEX outbox_pending_pair ON outbox (incident_id, sink, created_at, id)
    WHERE state = 'pending';

-- The daemon that writes to this store (see lease.rs); times from the
-- database's clock, never a member's.
CREATE TABLE lease (
    id         int PRIMARY KEY CHECK (id = 1),
    holder     text NOT NULL,
    host       text NOT NULL,
    pid        bigint NOT NULL,
    version    text NOT NULL,
    since      timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
"#;

/// Replicas (see `cluster.rs`): the members, the leader's epoch, each
/// check's counters written with its runs, and the write calls a replica
/// that does not lead hands to the leader.
const V2: &str = r#"
ALTER TABLE lease ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

CREATE TABLE members (
    id         text COLLATE "C" PRIMARY KEY,
    location   text COLLATE "C" NOT NULL,
    host       text NOT NULL,
    pid        bigint NOT NULL,
    version    text NOT NULL,
    since      timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE check_counters (
    check_name   text COLLATE "C" PRIMARY KEY,
    failures     bigint NOT NULL,
    passes       bigint NOT NULL,
    last_run     text COLLATE "C" NOT NULL,
    last_started text COLLATE "C" NOT NULL,
    version      bigint NOT NULL
);

CREATE TABLE asks (
    id          bigserial PRIMARY KEY,
    incident    text NOT NULL,
    note        text,
    asked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    answer      text,
    answered_at timestamptz
);
CREATE INDEX asks_open ON asks (id) WHERE answer IS NULL;
"#;

/// Locations: where each run ran, and a check's counters per location,
/// so that the leader judges each location's failures in a row. The
/// counters are emptied: the next runs make them again, at the locations
/// the replicas now name, and none is left behind at `default`, stale.
const V3: &str = r#"
ALTER TABLE runs ADD COLUMN location text COLLATE "C" NOT NULL DEFAULT 'default';
DELETE FROM check_counters;
ALTER TABLE check_counters ADD COLUMN location text COLLATE "C" NOT NULL;
ALTER TABLE check_counters DROP CONSTRAINT check_counters_pkey;
ALTER TABLE check_counters ADD PRIMARY KEY (check_name, location);
"#;

/// The schema version this build writes.
pub(super) fn current_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Applies the migrations this store lacks; refuses a store a newer
/// scarecrow migrated beyond what this one can use.
pub(super) fn migrate(client: &mut Client) -> Result<(), String> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| format!("waiting for other migrations: {}", chain(&e)))?;
    let migrated = apply(client);
    // On an error the connection is dropped, which releases it too.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| format!("after migrating: {}", chain(&e)))?;
    migrated?;
    compatible(client, current_version())
}

fn apply(client: &mut Client) -> Result<(), String> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS scarecrow_schema (
                version         int PRIMARY KEY,
                compatible_from int NOT NULL,
                applied_at      timestamptz NOT NULL DEFAULT clock_timestamp()
            )",
        )
        .map_err(|e| format!("creating scarecrow_schema: {}", chain(&e)))?;
    for (to, migration) in (1..).zip(MIGRATIONS) {
        let doing = |e: postgres::Error| format!("migrating to version {to}: {}", chain(&e));
        let mut tx = client.transaction().map_err(doing)?;
        let applied: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM scarecrow_schema WHERE version = $1)",
                &[&to],
            )
            .map_err(doing)?
            .get(0);
        if applied {
            continue;
        }
        tx.batch_execute(migration.sql).map_err(doing)?;
        tx.execute(
            "INSERT INTO scarecrow_schema (version, compatible_from) VALUES ($1, $2)",
            &[&to, &migration.compatible_from],
        )
        .map_err(doing)?;
        tx.commit().map_err(doing)?;
    }
    Ok(())
}

/// Whether this build can use the store as it is: migrated to at least its
/// version, and by no newer scarecrow that removed what it reads.
pub(super) fn compatible(client: &mut Client, current: i32) -> Result<(), String> {
    let row = client
        .query_opt(
            "SELECT version, compatible_from FROM scarecrow_schema ORDER BY version DESC LIMIT 1",
            &[],
        )
        .map_err(|e| format!("reading the schema version: {}", chain(&e)))?;
    let Some(row) = row else {
        return Err("the store has no schema yet: start the daemon once to create it".to_owned());
    };
    let (version, from): (i32, i32) = (row.get(0), row.get(1));
    if version < current {
        return Err(format!(
            "schema version {version}, this scarecrow uses version {current}: start the daemon once to migrate it"
        ));
    }
    if from > current {
        return Err(format!(
            "schema version {version}, usable from version {from} on; this scarecrow uses version {current}: it was migrated by a newer scarecrow"
        ));
    }
    Ok(())
}
