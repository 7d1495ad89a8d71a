//! Opening connections and migrating the schema. The schema version lives in
//! SQLite's `user_version`; migration `i` takes it from `i` to `i + 1`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::failed;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
use crate::incident::store::StoreError;

/// Applied in order, each in its own transaction; never edit a shipped one,
/// append a new one.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// Timestamps are RFC 3339 UTC with nine fractional digits, so text order is
/// time order. The JSON columns hold the whole value and the others are
/// copies for querying, except a run's since V2.
const V1: &str = "
CREATE TABLE runs (
    seq          INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL UNIQUE,
    check_name   TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    duration_ms  REAL NOT NULL,
    result       TEXT NOT NULL,
    reason       TEXT,
    step         TEXT,
    message      TEXT,
    json         TEXT NOT NULL
);
CREATE INDEX runs_by_check ON runs (check_name, seq);

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    key              TEXT NOT NULL,
    check_name       TEXT NOT NULL,
    severity         TEXT NOT NULL,
    title            TEXT NOT NULL,
    first_failure_at TEXT NOT NULL,
    declared_at      TEXT NOT NULL,
    resolved_at      TEXT,
    resolution       TEXT,
    note             TEXT,
    evidence         TEXT NOT NULL,
    run_ids          TEXT NOT NULL,
    json             TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX incidents_by_declared ON incidents (declared_at, id);
CREATE INDEX incidents_open ON incidents (declared_at, id) WHERE resolved_at IS NULL;
CREATE INDEX incidents_by_check ON incidents (check_name, declared_at);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX events_by_incident ON events (incident_id, at, id);

CREATE TABLE check_states (
    check_name TEXT PRIMARY KEY,
    state      TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    sink            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    incident_id     TEXT NOT NULL,
    item            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (created_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_incident ON outbox (incident_id, created_at, id);
";

/// The schema version this build writes and reads.
pub(super) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Runs cost less to write, the daemon's largest cost after the requests
/// themselves: a run's `json` holds its steps only (the rest was a copy of
/// the columns, serialized and written twice), and `run_id` loses its
/// unique index (ids are fresh UUIDs and nothing looks a run up by id).
/// SQLite drops a column constraint only by copying the table.
const V2: &str = "
CREATE TABLE runs_v2 (
    seq          INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL,
    check_name   TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    duration_ms  REAL NOT NULL,
    result       TEXT NOT NULL,
    reason       TEXT,
    step         TEXT,
    message      TEXT,
    json         TEXT NOT NULL
);
INSERT INTO runs_v2
    SELECT seq, run_id, check_name, started_at, round(duration_ms, 3), result, reason, step,
           message, json_extract(json, '$.steps')
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE INDEX runs_by_check ON runs (check_name, seq);
";

/// Outbox claims: the worker that holds a pending item (`claimed_by`) and
/// until when (`claimed_until`, a timestamp like the others); an item no
/// one holds has neither. Items are claimed by incident and sink.
const V3: &str = "
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
CREATE INDEX outbox_pending_pair ON outbox (incident_id, sink, created_at, id)
    WHERE state = 'pending';
";

/// Where each run ran (`location`): one daemon writes a SQLite store, so
/// its runs share the daemon's location.
const V4: &str = "
ALTER TABLE runs ADD COLUMN location TEXT NOT NULL DEFAULT 'default';
";

/// WAL pages between automatic checkpoints (see `open_writer`).
const WAL_AUTOCHECKPOINT: u32 = 10_000;

/// The writer's connection: WAL, `synchronous=NORMAL` (a committed
/// transaction survives the process being killed), migrated.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(failed("opening the database", path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(failed("setting busy_timeout", path))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(failed("switching to WAL", path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError(format!(
            "{}: journal_mode is {mode:?}, expected \"wal\"",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(failed("setting synchronous=NORMAL", path))?;
    // A checkpoint copies each page once however many commits rewrote it
    // since the last one, and the same pages (the newest index page of each
    // check) are rewritten by every batch. SQLite's default checkpoints
    // after 1,000 pages, which one batch of runs exceeds; every 10,000
    // (a WAL of up to 40 MB) the writer spent 0.6 µs less per run at
    // 10,000 runs a second.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)
        .map_err(failed("setting wal_autocheckpoint", path))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// A connection for the CLI and the HTTP API: never writes, waits for the
/// writer instead of failing, and refuses a file it does not understand.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError(format!(
            "no database at {}: has the daemon run with this state path?",
            path.display()
        )));
    }
    // Read-write so WAL can use the shared-memory index; SQLite falls back
    // to read-only when the file is write-protected.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn =
        Connection::open_with_flags(path, flags).map_err(failed("opening the database", path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(failed("setting busy_timeout", path))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(failed("setting query_only", path))?;
    let version = user_version(&conn).map_err(failed("reading the schema version", path))?;
    let current = current_version();
    if version != current {
        let hint = if version < current {
            "start the daemon once to migrate it"
        } else {
            "it was written by a newer scarecrow"
        };
        return Err(StoreError(format!(
            "{}: schema version {version}, this scarecrow reads version {current}; {hint}",
            path.display()
        )));
    }
    Ok(conn)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = user_version(conn).map_err(failed("reading the schema version", path))?;
    let current = current_version();
    if !(0..=current).contains(&version) {
        return Err(StoreError(format!(
            "{}: schema version {version} is not one this scarecrow knows (0 to {current}); refusing to touch it",
            path.display()
        )));
    }
    for (to, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip_while(|(to, _)| *to <= version)
    {
        let doing = format!("migrating the schema to version {to}");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(&doing, path))?;
        tx.execute_batch(sql).map_err(failed(&doing, path))?;
        tx.pragma_update(None, "user_version", to)
            .map_err(failed(&doing, path))?;
        tx.commit().map_err(failed(&doing, path))?;
    }
    Ok(())
}
