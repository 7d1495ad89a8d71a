//! The writer's statements. Each function is one transaction: it either
//! commits whole or leaves the database as it was.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, ToSql, Transaction, TransactionBehavior, params};

use super::rows::{CommitRows, OutboxRow, RunRow, StateRow};
use super::{DbError, decode};
use crate::check::FastHash;
use crate::incident::store::Snapshot;

const UPSERT_STATE: &str = "INSERT INTO check_states (check_name, state) VALUES (?1, ?2)
    ON CONFLICT (check_name) DO UPDATE SET state = excluded.state";

const UPSERT_INCIDENT: &str = "INSERT INTO incidents (id, key, check_name, severity, title,
        first_failure_at, declared_at, resolved_at, resolution, note, evidence, run_ids, json, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
    ON CONFLICT (id) DO UPDATE SET key = excluded.key, check_name = excluded.check_name,
        severity = excluded.severity, title = excluded.title,
        first_failure_at = excluded.first_failure_at, declared_at = excluded.declared_at,
        resolved_at = excluded.resolved_at, resolution = excluded.resolution, note = excluded.note,
        evidence = excluded.evidence, run_ids = excluded.run_ids, json = excluded.json,
        updated_at = excluded.updated_at
    WHERE excluded.updated_at >= incidents.updated_at";

const INSERT_EVENT: &str = "INSERT INTO events (id, incident_id, kind, at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (id) DO NOTHING";

const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (id, event_id, sink, kind, incident_id, item, state,
        attempts, next_attempt_at, created_at, delivered_at, last_error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (id) DO NOTHING";

const UPSERT_OUTBOX: &str =
    "INSERT INTO outbox (id, event_id, sink, kind, incident_id, item, state,
        attempts, next_attempt_at, created_at, delivered_at, last_error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (id) DO UPDATE SET item = excluded.item, state = excluded.state,
        attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
        delivered_at = excluded.delivered_at, last_error = excluded.last_error";

const INSERT_RUN: &str = "INSERT INTO runs (run_id, check_name, started_at, duration_ms, result,
        reason, step, message, json)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Deletes a check's runs beyond the newest ?2 and those started before ?3,
/// except runs an incident refers to. A check's runs never overlap, so its
/// `seq` order is its time order: both limits are one `seq` bound, and the
/// delete walks `runs_by_check` over just the rows it removes. (With an `OR`
/// on `started_at` it read every row of the check, and at 10,000 runs a
/// second the writer fell behind once checks reached their history.)
const PRUNE_RUNS: &str = "DELETE FROM runs WHERE check_name = ?1
    AND seq < max(
        coalesce((SELECT seq FROM runs WHERE check_name = ?1
                  ORDER BY seq DESC LIMIT 1 OFFSET ?2) + 1, 0),
        coalesce((SELECT seq FROM runs WHERE check_name = ?1 AND started_at >= ?3
                  ORDER BY seq LIMIT 1), 9223372036854775807))
    AND run_id NOT IN (SELECT j.value FROM incidents AS i, json_each(i.run_ids) AS j
                       WHERE i.check_name = ?1)";

fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    // Take the write lock up front, so a busy database waits (busy_timeout)
    // instead of failing halfway through.
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

fn upsert_state(tx: &Transaction, s: &StateRow) -> rusqlite::Result<()> {
    tx.prepare_cached(UPSERT_STATE)?
        .execute(params![s.check, s.json])?;
    Ok(())
}

fn outbox_params(o: &OutboxRow) -> [&dyn ToSql; 12] {
    [
        &o.id,
        &o.event_id,
        &o.sink,
        &o.kind,
        &o.incident_id,
        &o.item,
        &o.state,
        &o.attempts,
        &o.next_attempt_at,
        &o.created_at,
        &o.delivered_at,
        &o.last_error,
    ]
}

/// The incident, the check's state, the timeline event and the outbox rows.
/// An outbox row that already exists is kept as it is: committing the same
/// transition again must not undo a delivery that happened in between.
pub(super) fn commit(conn: &mut Connection, c: &CommitRows) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    let i = &c.incident;
    tx.prepare_cached(UPSERT_INCIDENT)?.execute(params![
        i.id,
        i.key,
        i.check,
        i.severity,
        i.title,
        i.first_failure_at,
        i.declared_at,
        i.resolved_at,
        i.resolution,
        i.note,
        i.evidence,
        i.run_ids,
        i.json,
        i.updated_at,
    ])?;
    upsert_state(&tx, &c.state)?;
    let e = &c.event;
    tx.prepare_cached(INSERT_EVENT)?
        .execute(params![e.id, e.incident_id, e.kind, e.at])?;
    {
        let mut insert = tx.prepare_cached(INSERT_OUTBOX)?;
        for o in &c.outbox {
            insert.execute(outbox_params(o))?;
        }
    }
    tx.commit()
}

/// A batch of runs and the states after them, then the history trimmed to
/// `keep` runs for every check the batch touched.
pub(super) fn record_runs<'a>(
    conn: &mut Connection,
    runs: impl Iterator<Item = &'a RunRow>,
    keep: super::Retention,
    prune: &BTreeSet<&str>,
) -> rusqlite::Result<()> {
    let cutoff = chrono::TimeDelta::from_std(keep.max_age)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let tx = immediate(conn)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RUN)?;
        // A check's state after the batch is the state of its last run;
        // the ones before it would only be overwritten.
        let mut states = HashMap::with_hasher(FastHash::default());
        for r in runs {
            insert.execute(params![
                r.run_id,
                r.check,
                r.started_at,
                r.duration_ms,
                r.result,
                r.reason,
                r.step,
                r.message,
                r.json,
            ])?;
            if let Some(state) = &r.state {
                states.insert(r.check.as_str(), state);
            }
        }
        for state in states.values() {
            upsert_state(&tx, state)?;
        }
        let mut statement = tx.prepare_cached(PRUNE_RUNS)?;
        for check in prune {
            let count = i64::try_from(keep.runs_per_check).unwrap_or(i64::MAX);
            statement.execute(params![check, count, cutoff])?;
        }
    }
    tx.commit()
}

/// The item as it now is; inserted if the commit that made it was lost.
pub(super) fn update_delivery(conn: &mut Connection, o: &OutboxRow) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    tx.prepare_cached(UPSERT_OUTBOX)?
        .execute(outbox_params(o))?;
    tx.commit()
}

pub(super) fn forget_check(conn: &mut Connection, check: &str) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    tx.prepare_cached("DELETE FROM check_states WHERE check_name = ?1")?
        .execute([check])?;
    tx.commit()
}

/// Rows whose JSON does not decode are reported by name, not skipped: a
/// state silently lost could mean an incident silently lost.
pub(super) fn load(conn: &mut Connection) -> Result<Snapshot, DbError> {
    let tx = conn.transaction()?;
    let mut snapshot = Snapshot::default();
    {
        let mut states = tx.prepare("SELECT check_name, state FROM check_states")?;
        let mut rows = states.query([])?;
        while let Some(row) = rows.next()? {
            let check: String = row.get(0)?;
            let state = decode(
                &format!("the state of check {check:?}"),
                &row.get::<_, String>(1)?,
            )?;
            snapshot.states.insert(check, state);
        }
        let mut pending = tx.prepare(
            "SELECT id, item FROM outbox WHERE state = 'pending' ORDER BY created_at, id",
        )?;
        let mut rows = pending.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            snapshot.outbox.push(decode(
                &format!("outbox item {id}"),
                &row.get::<_, String>(1)?,
            )?);
        }
    }
    tx.commit()?;
    Ok(snapshot)
}
