//! What every member reads each second: the checks whose counters changed
//! since its last read, with the run that changed them, and the incidents
//! open now. Counters, not runs by insertion order: a run committed late
//! (a replica's batch, a store that was down) has an older `seq` than runs
//! read already, and would be missed.

use std::collections::HashMap;
use std::sync::Arc;

use postgres::Client;

use super::error::DbError;
use super::read::run;
use crate::check::{FastHash, RunRecord};
use crate::store::cluster::{Ask, Feed, Latest};
use crate::store::rows::{RUN_COLUMNS, decode};

/// Each check's counter version per location, as last read.
pub(super) type Seen = HashMap<(String, String), i64, FastHash>;

/// Calls asked longer ago than their replica waits for an answer
/// (`app::actions`) are not taken: it has answered 503 already.
const ASK_FOR: &str = "9 seconds";

/// The changes since `seen`, and the counters' versions now; the leader
/// takes the calls handed to it.
pub(super) fn read(
    client: &mut Client,
    seen: &Seen,
    leading: bool,
) -> Result<(Feed, Seen), DbError> {
    let mut changed: Vec<(u32, u32, String, String)> = Vec::new();
    let counters = client.query(
        "SELECT check_name, location, version, failures, passes, last_run, last_started
         FROM check_counters WHERE version > 0",
        &[],
    )?;
    let mut now = Seen::with_capacity_and_hasher(counters.len(), FastHash::default());
    for row in &counters {
        let key = (row.get(0), row.get(1));
        let version: i64 = row.get(2);
        if seen.get(&key) != Some(&version) {
            let count = |i: usize| u32::try_from(row.get::<_, i64>(i)).unwrap_or(u32::MAX);
            changed.push((count(3), count(4), row.get(5), row.get(6)));
        }
        now.insert(key, version);
    }
    let mut latest = Vec::with_capacity(changed.len());
    if !changed.is_empty() {
        let ids: Vec<&str> = changed.iter().map(|c| c.2.as_str()).collect();
        let started: Vec<&str> = changed.iter().map(|c| c.3.as_str()).collect();
        let mut runs: HashMap<String, RunRecord, FastHash> = client
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs
                     WHERE (run_id, started_at) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
                ),
                &[&ids, &started],
            )?
            .iter()
            .map(|row| run(row).map(|run| (run.run_id.clone(), run)))
            .collect::<Result<_, _>>()?;
        for (failures, passes, run_id, _) in changed {
            // Gone already (count retention) is no news.
            if let Some(run) = runs.remove(&run_id) {
                latest.push(Latest {
                    run: Arc::new(run),
                    failures,
                    passes,
                });
            }
        }
    }
    // One that does not decode (written by a newer replica, say) is left
    // out, not the round.
    let open = client
        .query(
            "SELECT id, json FROM incidents WHERE resolved_at IS NULL ORDER BY declared_at, id",
            &[],
        )?
        .iter()
        .filter_map(|row| {
            let id: &str = row.get(0);
            decode(&format!("incident {id}"), row.get(1))
                .map_err(|e| tracing::debug!("{e}"))
                .ok()
        })
        .collect();
    let asks = match leading {
        // Taken (an empty answer) as they are read: each is done once.
        true => client
            .query(
                &format!(
                    "UPDATE asks SET answer = '' WHERE answer IS NULL
                     AND asked_at > clock_timestamp() - interval '{ASK_FOR}'
                     RETURNING id, incident, note"
                ),
                &[],
            )?
            .iter()
            .map(|row| Ask {
                id: row.get(0),
                incident: row.get(1),
                note: row.get(2),
            })
            .collect(),
        false => Vec::new(),
    };
    let feed = Feed {
        latest,
        open,
        asks,
        leading,
    };
    Ok((feed, now))
}

pub(super) fn ask(client: &mut Client, incident: &str, note: Option<&str>) -> Result<i64, DbError> {
    Ok(client
        .query_one(
            "INSERT INTO asks (incident, note) VALUES ($1, $2) RETURNING id",
            &[&incident, &note],
        )?
        .get(0))
}

pub(super) fn answer_of(client: &mut Client, id: i64) -> Result<Option<String>, DbError> {
    Ok(client
        .query_opt(
            "SELECT answer FROM asks WHERE id = $1 AND answered_at IS NOT NULL",
            &[&id],
        )?
        .map(|row| row.get(0)))
}

pub(super) fn answer(client: &mut Client, id: i64, answer: &str) -> Result<(), DbError> {
    client.execute(
        "UPDATE asks SET answer = $2, answered_at = clock_timestamp() WHERE id = $1",
        &[&id, &answer],
    )?;
    Ok(())
}

/// Deletes calls answered or given up on long ago.
pub(super) fn forget_asks(client: &mut Client) -> Result<(), DbError> {
    client.execute(
        "DELETE FROM asks WHERE asked_at < clock_timestamp() - interval '1 hour'",
        &[],
    )?;
    Ok(())
}
