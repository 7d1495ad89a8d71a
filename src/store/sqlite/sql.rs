//! The writer's statements. Each function is one transaction: it either
//! commits whole or leaves the database as it was.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, ToSql, Transaction, TransactionBehavior, named_params, params};

use super::{DbError, decode};
use crate::check::FastHash;
use crate::incident::store::{OutboxItem, Snapshot};
use crate::store::Retention;
use crate::store::rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow};
use crate::store::writer::Op;

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

/// An update from a worker that no longer holds the item's claim changes
/// nothing: another worker claimed it since (?13 is not the claimer, and
/// the claim is live or the item settled), so the item is that worker's.
const UPSERT_OUTBOX: &str =
    "INSERT INTO outbox (id, event_id, sink, kind, incident_id, item, state,
        attempts, next_attempt_at, created_at, delivered_at, last_error, claimed_by, claimed_until)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
    ON CONFLICT (id) DO UPDATE SET item = excluded.item, state = excluded.state,
        attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
        delivered_at = excluded.delivered_at, last_error = excluded.last_error,
        claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
    WHERE outbox.claimed_by IS excluded.claimed_by
       OR (outbox.state = 'pending' AND (outbox.claimed_by IS NULL OR outbox.claimed_until <= ?15))";

/// Whether another worker than `:claimer` holds a live claim (at `:now`)
/// on a pending item of the pair of the `outbox` row in the statement.
const PAIR_HELD: &str = "EXISTS (SELECT 1 FROM outbox AS o
        WHERE o.incident_id = outbox.incident_id AND o.sink = outbox.sink
          AND o.state = 'pending' AND o.claimed_by <> :claimer AND o.claimed_until > :now)";

/// Claims for `:claimer` until `:until` the pending items of the pair of
/// item `:id`, unless another worker holds it.
fn claim_pair_sql() -> String {
    format!(
        "UPDATE outbox SET claimed_by = :claimer, claimed_until = :until
        WHERE state = 'pending'
          AND (incident_id, sink) = (SELECT incident_id, sink FROM outbox WHERE id = :id)
          AND NOT {PAIR_HELD}"
    )
}

/// Claims for `:claimer` until `:until` the pairs no other worker holds at
/// `:now` whose oldest pending item is due, and renews its claims on the
/// others.
fn claim_due_sql() -> String {
    format!(
        "UPDATE outbox SET claimed_by = :claimer, claimed_until = :until
        WHERE state = 'pending'
          AND NOT {PAIR_HELD}
          AND (claimed_by IS :claimer
               OR (SELECT o.next_attempt_at FROM outbox AS o
                   WHERE o.incident_id = outbox.incident_id AND o.sink = outbox.sink
                     AND o.state = 'pending'
                   ORDER BY o.created_at, o.id LIMIT 1) <= :now)"
    )
}

/// The pending items ?1 holds, oldest first.
const CLAIMED: &str = "SELECT id, item FROM outbox WHERE state = 'pending' AND claimed_by = ?1
    ORDER BY created_at, id";

const INSERT_RUN: &str = "INSERT INTO runs (run_id, check_name, started_at, duration_ms, result,
        reason, step, message, json, location)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

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

/// The incident, the check's state, the timeline event and the outbox rows,
/// and the claim on their pairs; returns the pending items of the pairs
/// claimed. An outbox row that already exists is kept as it is: committing
/// the same transition again must not undo a delivery that happened in
/// between.
fn commit(tx: &Transaction, c: &CommitRows) -> Result<Vec<OutboxItem>, DbError> {
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
    upsert_state(tx, &c.state)?;
    let e = &c.event;
    tx.prepare_cached(INSERT_EVENT)?
        .execute(params![e.id, e.incident_id, e.kind, e.at])?;
    {
        let mut insert = tx.prepare_cached(INSERT_OUTBOX)?;
        for o in &c.outbox {
            insert.execute(outbox_params(o))?;
        }
    }
    let mut pairs = BTreeSet::new();
    {
        let k = &c.claim;
        let mut claim = tx.prepare_cached(&claim_pair_sql())?;
        for o in &c.outbox {
            let claimed = claim.execute(named_params! {
                ":id": o.id,
                ":claimer": k.claimer,
                ":now": k.now,
                ":until": k.until,
            })?;
            if claimed > 0 {
                pairs.insert((o.incident_id.as_str(), o.sink.as_str()));
            }
        }
    }
    let items = claimed(tx, &c.claim.claimer)?
        .into_iter()
        .filter(|i| pairs.contains(&(i.event.incident.id.as_str(), i.sink.as_str())))
        .collect();
    Ok(items)
}

/// The pending items `claimer` holds, oldest first.
fn claimed(tx: &Transaction, claimer: &str) -> Result<Vec<OutboxItem>, DbError> {
    let mut stmt = tx.prepare_cached(CLAIMED)?;
    let mut rows = stmt.query([claimer])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        items.push(decode(
            &format!("outbox item {id}"),
            &row.get::<_, String>(1)?,
        )?);
    }
    Ok(items)
}

/// Takes and renews claims (see [`claim_due_sql`]); returns what the
/// claimer holds.
pub(super) fn claim(conn: &mut Connection, k: &ClaimRow) -> Result<Vec<OutboxItem>, DbError> {
    let tx = immediate(conn)?;
    tx.prepare_cached(&claim_due_sql())?
        .execute(named_params! {
            ":claimer": k.claimer,
            ":now": k.now,
            ":until": k.until,
        })?;
    let items = claimed(&tx, &k.claimer)?;
    tx.commit()?;
    Ok(items)
}

/// Lets go of the claimer's claims on pending items.
pub(super) fn release(conn: &mut Connection, claimer: &str) -> rusqlite::Result<()> {
    let tx = immediate(conn)?;
    tx.prepare_cached(
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
        WHERE claimed_by = ?1 AND state = 'pending'",
    )?
    .execute([claimer])?;
    tx.commit()
}

/// A batch in one transaction: runs, then the states and transitions in
/// queue order, then the history trimmed to `keep` for the checks in
/// `prune`. Returns what each transition's commit claimed, in order.
/// Transitions share the transaction: a burst of declarations costs one
/// commit, not one each.
pub(super) fn write_batch(
    conn: &mut Connection,
    runs: &[&RunRow],
    ops: &[Op<'_>],
    keep: Retention,
    prune: &BTreeSet<&str>,
) -> Result<Vec<Vec<OutboxItem>>, DbError> {
    let cutoff = crate::store::rows::ts(&keep.cutoff(chrono::Utc::now()));
    let tx = immediate(conn)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RUN)?;
        for r in runs {
            let (step, message) = r.failure();
            insert.execute(params![
                r.run.run_id,
                r.check(),
                r.started_at,
                r.duration_ms,
                r.result,
                r.reason,
                step,
                message,
                r.json,
                &*r.run.location,
            ])?;
        }
    }
    let mut claimed = Vec::new();
    // A state followed by another of its check before any transition would
    // only be overwritten: the last of each run of states is written.
    let mut states = HashMap::with_hasher(FastHash::default());
    for op in ops {
        match op {
            Op::State(state) => {
                states.insert(state.check.as_str(), state);
            }
            Op::Commit(c) => {
                for state in states.drain().map(|(_, s)| s) {
                    upsert_state(&tx, state)?;
                }
                claimed.push(commit(&tx, c)?);
            }
        }
    }
    for state in states.into_values() {
        upsert_state(&tx, state)?;
    }
    {
        let mut statement = tx.prepare_cached(PRUNE_RUNS)?;
        for check in prune {
            let count = i64::try_from(keep.runs_per_check).unwrap_or(i64::MAX);
            statement.execute(params![check, count, cutoff])?;
        }
    }
    tx.commit()?;
    Ok(claimed)
}

/// The item as it now is, claimed by `k`'s claimer; inserted if the commit
/// that made it was lost. `false`: another worker holds it, nothing written.
pub(super) fn update_delivery(
    conn: &mut Connection,
    o: &OutboxRow,
    k: &ClaimRow,
) -> rusqlite::Result<bool> {
    let tx = immediate(conn)?;
    let [p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12] = outbox_params(o);
    let claim: [&dyn ToSql; 3] = [&k.claimer, &k.until, &k.now];
    let written = tx.prepare_cached(UPSERT_OUTBOX)?.execute(
        &[
            p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, claim[0], claim[1], claim[2],
        ][..],
    )?;
    tx.commit()?;
    Ok(written > 0)
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
    }
    tx.commit()?;
    Ok(snapshot)
}
