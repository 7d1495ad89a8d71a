//! The writer's statements: SQLite's (`store/sqlite/sql.rs`) in
//! PostgreSQL's dialect, with runs inserted a batch per statement. Each
//! function is one transaction: it either commits whole or leaves the
//! database as it was.

use std::collections::{BTreeSet, HashMap};

use postgres::types::ToSql;
use postgres::{Client, Transaction};

use super::error::DbError;
use crate::check::FastHash;
use crate::incident::store::{OutboxItem, Snapshot};
use crate::store::rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow, decode};
use crate::store::writer::Op;

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

const UPSERT_STATE: &str = "INSERT INTO check_states (check_name, state) VALUES ($1, $2)
    ON CONFLICT (check_name) DO UPDATE SET state = excluded.state";

const UPSERT_INCIDENT: &str = "INSERT INTO incidents (id, key, check_name, severity, title,
        first_failure_at, declared_at, resolved_at, resolution, note, evidence, run_ids, json, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (id) DO UPDATE SET key = excluded.key, check_name = excluded.check_name,
        severity = excluded.severity, title = excluded.title,
        first_failure_at = excluded.first_failure_at, declared_at = excluded.declared_at,
        resolved_at = excluded.resolved_at, resolution = excluded.resolution, note = excluded.note,
        evidence = excluded.evidence, run_ids = excluded.run_ids, json = excluded.json,
        updated_at = excluded.updated_at
    WHERE excluded.updated_at >= incidents.updated_at";

const INSERT_EVENT: &str = "INSERT INTO events (id, incident_id, kind, at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO NOTHING";

const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (id, event_id, sink, kind, incident_id, item, state,
        attempts, next_attempt_at, created_at, delivered_at, last_error)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (id) DO NOTHING";

/// As SQLite's: an update from a worker that no longer holds the item's
/// claim changes nothing.
const UPSERT_OUTBOX: &str = "INSERT INTO outbox (id, event_id, sink, kind, incident_id, item, state,
        attempts, next_attempt_at, created_at, delivered_at, last_error, claimed_by, claimed_until)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (id) DO UPDATE SET item = excluded.item, state = excluded.state,
        attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
        delivered_at = excluded.delivered_at, last_error = excluded.last_error,
        claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
    WHERE outbox.claimed_by IS NOT DISTINCT FROM excluded.claimed_by
       OR (outbox.state = 'pending' AND (outbox.claimed_by IS NULL OR outbox.claimed_until <= $15))";

/// Whether another worker than $1 holds a live claim (at $2) on a pending
/// item of the pair of the `outbox` row in the statement.
const PAIR_HELD: &str = "EXISTS (SELECT 1 FROM outbox AS o
        WHERE o.incident_id = outbox.incident_id AND o.sink = outbox.sink
          AND o.state = 'pending' AND o.claimed_by <> $1 AND o.claimed_until > $2)";

/// Claims for $1 until $3 the pending items of the pair of item $4,
/// unless another worker holds it at $2.
fn claim_pair_sql() -> String {
    format!(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $3
        WHERE state = 'pending'
          AND (incident_id, sink) = (SELECT incident_id, sink FROM outbox WHERE id = $4)
          AND NOT {PAIR_HELD}"
    )
}

/// Claims for $1 until $3 the pairs no other worker holds at $2 whose
/// oldest pending item is due, and renews its claims on the others.
fn claim_due_sql() -> String {
    format!(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $3
        WHERE state = 'pending'
          AND NOT {PAIR_HELD}
          AND (claimed_by IS NOT DISTINCT FROM $1
               OR (SELECT o.next_attempt_at FROM outbox AS o
                   WHERE o.incident_id = outbox.incident_id AND o.sink = outbox.sink
                     AND o.state = 'pending'
                   ORDER BY o.created_at, o.id LIMIT 1) <= $2)"
    )
}

const CLAIMED: &str = "SELECT id, item FROM outbox WHERE state = 'pending' AND claimed_by = $1
    ORDER BY created_at, id";

/// A batch of runs in one statement: one array per column, unnested in
/// order, so `seq` follows the batch's order.
/// A run already there is one whose commit went through while its
/// acknowledgement was lost: written again, it is skipped.
const INSERT_RUNS: &str = "INSERT INTO runs (run_id, check_name, started_at, duration_ms, result,
        reason, step, message, json, location)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[],
        $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
    ON CONFLICT (run_id, started_at) DO NOTHING";

/// Who writes as the leader: this member, under the lease's epoch it
/// took. `None`: this member does not lead.
pub(super) type Leader<'a> = Option<(&'a str, i64)>;

/// No statement of a write waits longer for a row (the lease, a check's
/// counters) that another member holds: one paused inside a transaction
/// keeps its locks until the server ends it (`connect.rs`), and the runs
/// of a batch that timed out are held and tried again.
const WAIT_BRIEFLY: &str = "SET LOCAL lock_timeout = '2s'";

/// Locks the lease row if `leader` still holds it under its epoch.
const FENCE: &str = "SELECT 1 FROM lease WHERE id = 1 AND holder = $1 AND epoch = $2 FOR SHARE";

/// Every write of the engine (a transition, a check's state, a claim, a
/// delivery's outcome) starts here, in its own transaction: the lease row
/// is locked `FOR SHARE` until the commit, so no one can take it over
/// meanwhile, and if another member took it over (a new epoch) nothing is
/// written. A leader paused or cut off past its lease thus writes nothing
/// once another leads.
pub(super) fn fence(tx: &mut Transaction, leader: Leader) -> Result<(), DbError> {
    let Some((holder, epoch)) = leader else {
        return Err(DbError::NotLeading);
    };
    tx.batch_execute(WAIT_BRIEFLY)?;
    match tx.query_opt(FENCE, &[&holder, &epoch])? {
        None => Err(DbError::Lost),
        Some(_) => Ok(()),
    }
}

/// The ids of the runs incidents of check $1 refer to.
const REFERRED: &str =
    "SELECT jsonb_array_elements_text(run_ids::jsonb) FROM incidents WHERE check_name = $1";

/// Deletes a check's runs beyond the newest $2, except those incidents
/// refer to. (Age is kept by dropping partitions, and in `runs_default`
/// by [`PRUNE_OLD`].)
fn prune_count_sql() -> String {
    format!(
        "DELETE FROM runs WHERE check_name = $1
        AND seq <= (SELECT seq FROM runs WHERE check_name = $1
                    ORDER BY seq DESC OFFSET $2 LIMIT 1)
        AND run_id NOT IN ({REFERRED})"
    )
}

/// Deletes a check's runs in `runs_default` started before $2, except those
/// incidents refer to.
fn prune_old_sql() -> String {
    format!(
        "DELETE FROM runs_default WHERE check_name = $1 AND started_at < $2
        AND run_id NOT IN ({REFERRED})"
    )
}

fn upsert_state(tx: &mut Transaction, s: &StateRow) -> Result<(), postgres::Error> {
    tx.execute(UPSERT_STATE, &[&s.check, &s.json])?;
    Ok(())
}

fn outbox_params<'a>(o: &'a OutboxRow, attempts: &'a i64) -> Params<'a> {
    vec![
        &o.id,
        &o.event_id,
        &o.sink,
        &o.kind,
        &o.incident_id,
        &o.item,
        &o.state,
        attempts,
        &o.next_attempt_at,
        &o.created_at,
        &o.delivered_at,
        &o.last_error,
    ]
}

/// As SQLite's `commit`: the incident, the state, the event, the outbox
/// rows and the claim on their pairs; returns the pending items of the
/// pairs claimed.
fn commit(tx: &mut Transaction, c: &CommitRows) -> Result<Vec<OutboxItem>, DbError> {
    let i = &c.incident;
    tx.execute(
        UPSERT_INCIDENT,
        &[
            &i.id,
            &i.key,
            &i.check,
            &i.severity,
            &i.title,
            &i.first_failure_at,
            &i.declared_at,
            &i.resolved_at,
            &i.resolution,
            &i.note,
            &i.evidence,
            &i.run_ids,
            &i.json,
            &i.updated_at,
        ],
    )?;
    upsert_state(tx, &c.state)?;
    let e = &c.event;
    tx.execute(INSERT_EVENT, &[&e.id, &e.incident_id, &e.kind, &e.at])?;
    for o in &c.outbox {
        let attempts = i64::from(o.attempts);
        tx.execute(INSERT_OUTBOX, &outbox_params(o, &attempts))?;
    }
    let mut pairs = BTreeSet::new();
    if !c.outbox.is_empty() {
        let k = &c.claim;
        let claim = tx.prepare(&claim_pair_sql())?;
        for o in &c.outbox {
            if tx.execute(&claim, &[&k.claimer, &k.now, &k.until, &o.id])? > 0 {
                pairs.insert((o.incident_id.as_str(), o.sink.as_str()));
            }
        }
    }
    Ok(claimed(tx, &c.claim.claimer)?
        .into_iter()
        .filter(|i| pairs.contains(&(i.event.incident.id.as_str(), i.sink.as_str())))
        .collect())
}

fn claimed(tx: &mut Transaction, claimer: &str) -> Result<Vec<OutboxItem>, DbError> {
    tx.query(CLAIMED, &[&claimer])?
        .iter()
        .map(|row| {
            let id: &str = row.get(0);
            decode(&format!("outbox item {id}"), row.get(1)).map_err(DbError::Invalid)
        })
        .collect()
}

pub(super) fn claim(
    client: &mut Client,
    leader: Leader,
    k: &ClaimRow,
) -> Result<Vec<OutboxItem>, DbError> {
    let mut tx = client.transaction()?;
    fence(&mut tx, leader)?;
    tx.execute(&claim_due_sql(), &[&k.claimer, &k.now, &k.until])?;
    let items = claimed(&mut tx, &k.claimer)?;
    tx.commit()?;
    Ok(items)
}

pub(super) fn release(client: &mut Client, leader: Leader, claimer: &str) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    fence(&mut tx, leader)?;
    tx.execute(
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
        WHERE claimed_by = $1 AND state = 'pending'",
        &[&claimer],
    )?;
    tx.commit()?;
    Ok(())
}

/// As SQLite's `write_batch`, with the runs in one statement and history
/// trimmed by count; `cutoff` is where age retention starts.
pub(super) fn write_batch(
    client: &mut Client,
    leader: Leader,
    runs: &[&RunRow],
    ops: &[Op<'_>],
    keep_runs: usize,
    cutoff: &str,
    prune: &BTreeSet<&str>,
) -> Result<Vec<Vec<OutboxItem>>, DbError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(WAIT_BRIEFLY)?;
    // Runs are every member's to write; states and transitions the leader's.
    if !ops.is_empty() {
        fence(&mut tx, leader)?;
    }
    if !runs.is_empty() {
        insert_runs(&mut tx, runs)?;
        count_runs(&mut tx, runs)?;
    }
    let mut claimed = Vec::new();
    // As in SQLite: of a run of states of one check, the last is written.
    let mut states = HashMap::with_hasher(FastHash::default());
    for op in ops {
        match op {
            Op::State(state) => {
                states.insert(state.check.as_str(), *state);
            }
            Op::Commit(c) => {
                for state in states.drain().map(|(_, s)| s) {
                    upsert_state(&mut tx, state)?;
                }
                claimed.push(commit(&mut tx, c)?);
            }
        }
    }
    for state in states.into_values() {
        upsert_state(&mut tx, state)?;
    }
    if !prune.is_empty() {
        let count = tx.prepare(&prune_count_sql())?;
        let old = tx.prepare(&prune_old_sql())?;
        let keep = i64::try_from(keep_runs).unwrap_or(i64::MAX);
        for check in prune {
            tx.execute(&count, &[check, &keep])?;
            tx.execute(&old, &[check, &cutoff])?;
        }
    }
    tx.commit()?;
    Ok(claimed)
}

fn insert_runs(tx: &mut Transaction, runs: &[&RunRow]) -> Result<(), postgres::Error> {
    let n = runs.len();
    let mut ids = Vec::with_capacity(n);
    let mut checks = Vec::with_capacity(n);
    let mut started = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut steps = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    let mut jsons = Vec::with_capacity(n);
    let mut locations = Vec::with_capacity(n);
    for r in runs {
        let (step, message) = r.failure();
        ids.push(r.run.run_id.as_str());
        checks.push(r.check());
        started.push(r.started_at.as_str());
        durations.push(r.duration_ms);
        results.push(r.result);
        reasons.push(r.reason);
        steps.push(step);
        messages.push(message);
        jsons.push(r.json.as_str());
        locations.push(&*r.run.location);
    }
    tx.execute(
        INSERT_RUNS,
        &[
            &ids, &checks, &started, &durations, &results, &reasons, &steps, &messages, &jsons,
            &locations,
        ],
    )?;
    Ok(())
}

/// Makes the counters of the batch's checks (at their locations) that
/// have none, in key order (two members' batches lock them in the same
/// order).
const NEW_COUNTERS: &str = "INSERT INTO check_counters
        (check_name, location, failures, passes, last_run, last_started, version)
    SELECT n, l, 0, 0, '', '', 0 FROM unnest($1::text[], $2::text[]) AS u(n, l)
    ORDER BY n COLLATE \"C\", l COLLATE \"C\"
    ON CONFLICT (check_name, location) DO NOTHING";
const LOCK_COUNTERS: &str = "SELECT 1 FROM check_counters AS c
    JOIN unnest($1::text[], $2::text[]) AS u(n, l) ON c.check_name = u.n AND c.location = u.l
    ORDER BY c.check_name, c.location FOR UPDATE OF c";
/// Per check: whether its last run in the batch passed, how many runs in a
/// row with that outcome end the batch, whether that is all its runs in
/// the batch (then they continue the stored streak), and its last run.
const COUNT_RUNS: &str = "UPDATE check_counters AS c SET
        failures = CASE WHEN u.ok THEN 0 WHEN u.whole THEN c.failures + u.tail ELSE u.tail END,
        passes = CASE WHEN NOT u.ok THEN 0 WHEN u.whole THEN c.passes + u.tail ELSE u.tail END,
        last_run = u.run, last_started = u.started, version = c.version + 1
    FROM unnest($1::text[], $2::bool[], $3::bigint[], $4::bool[], $5::text[], $6::text[],
            $7::text[])
        AS u(n, ok, tail, whole, run, started, l)
    WHERE c.check_name = u.n AND c.location = u.l AND u.started >= c.last_started";

/// Updates each check's counters of failures and passes in a row, per
/// location, in the runs' own transaction: the leader judges thresholds
/// on them, whichever member of the location ran the check, and a batch committed late still counts. A
/// batch whose last run of a check is older than the one counted (runs
/// held while the store was unreachable, written after a newer owner's)
/// is history, not news: it leaves the counters alone.
fn count_runs(tx: &mut Transaction, runs: &[&RunRow]) -> Result<(), postgres::Error> {
    struct Tail<'a> {
        ok: bool,
        tail: i64,
        whole: bool,
        run: &'a str,
        started: &'a str,
    }
    let mut tails: std::collections::BTreeMap<(&str, &str), Tail> =
        std::collections::BTreeMap::new();
    for r in runs.iter().filter(|r| !r.held) {
        let ok = r.result == "success";
        let (run, started) = (r.run.run_id.as_str(), r.started_at.as_str());
        tails
            .entry((r.check(), &*r.run.location))
            .and_modify(|t| {
                if t.ok == ok {
                    t.tail += 1;
                } else {
                    *t = Tail {
                        ok,
                        tail: 1,
                        whole: false,
                        run,
                        started,
                    };
                }
                (t.run, t.started) = (run, started);
            })
            .or_insert(Tail {
                ok,
                tail: 1,
                whole: true,
                run,
                started,
            });
    }
    if tails.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = tails.keys().map(|k| k.0).collect();
    let locations: Vec<&str> = tails.keys().map(|k| k.1).collect();
    let ok: Vec<bool> = tails.values().map(|t| t.ok).collect();
    let tail: Vec<i64> = tails.values().map(|t| t.tail).collect();
    let whole: Vec<bool> = tails.values().map(|t| t.whole).collect();
    let run: Vec<&str> = tails.values().map(|t| t.run).collect();
    let started: Vec<&str> = tails.values().map(|t| t.started).collect();
    tx.execute(NEW_COUNTERS, &[&names, &locations])?;
    tx.execute(LOCK_COUNTERS, &[&names, &locations])?;
    tx.execute(
        COUNT_RUNS,
        &[&names, &ok, &tail, &whole, &run, &started, &locations],
    )?;
    Ok(())
}

pub(super) fn update_delivery(
    client: &mut Client,
    leader: Leader,
    o: &OutboxRow,
    k: &ClaimRow,
) -> Result<bool, DbError> {
    let attempts = i64::from(o.attempts);
    let mut params = outbox_params(o, &attempts);
    params.extend_from_slice(&[&k.claimer, &k.until, &k.now]);
    let mut tx = client.transaction()?;
    fence(&mut tx, leader)?;
    let written = tx.execute(UPSERT_OUTBOX, &params)? > 0;
    tx.commit()?;
    Ok(written)
}

pub(super) fn forget_check(
    client: &mut Client,
    leader: Leader,
    check: &str,
) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    fence(&mut tx, leader)?;
    tx.execute("DELETE FROM check_states WHERE check_name = $1", &[&check])?;
    // Every member reads the counters each second: a removed check's go.
    tx.execute(
        "DELETE FROM check_counters WHERE check_name = $1",
        &[&check],
    )?;
    tx.commit()?;
    Ok(())
}

/// Rows whose JSON does not decode are reported by name, not skipped.
pub(super) fn load(client: &mut Client) -> Result<Snapshot, DbError> {
    let mut snapshot = Snapshot::default();
    for row in client.query("SELECT check_name, state FROM check_states", &[])? {
        let check: String = row.get(0);
        let state = decode(&format!("the state of check {check:?}"), row.get(1))
            .map_err(DbError::Invalid)?;
        snapshot.states.insert(check, state);
    }
    Ok(snapshot)
}
