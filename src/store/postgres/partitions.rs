//! Run history by day: `runs_pYYYYMMDD` holds the runs that started on that
//! day (UTC), made when its first run arrives; retention drops a day once
//! all of it is older than the store's retention, after moving the runs
//! incidents refer to into `runs_default`. Dropping a table costs the same
//! whatever its rows, where deleting them costs per row and leaves the
//! table to vacuum.

use std::collections::BTreeSet;

use chrono::{NaiveDate, TimeDelta};
use postgres::Client;
use postgres::error::SqlState;

use super::error::DbError;

/// Making and dropping a partition locks `runs` whole: they wait this long
/// for a lock, rather than stall the writer (and every run behind it)
/// behind a long query.
const WAIT_BRIEFLY: &str = "SET LOCAL lock_timeout = '2s';";
/// Replicas making or dropping the same day take turns: `IF NOT EXISTS`
/// alone still fails when two create one table at the same moment.
const ONE_AT_A_TIME: &str = "SELECT pg_advisory_xact_lock(1532488769);";

/// The days known to have a partition (or to go to `runs_default`).
#[derive(Debug, Default)]
pub(super) struct Days {
    known: BTreeSet<NaiveDate>,
}

/// The day of an RFC 3339 timestamp as the store writes them.
fn day(started_at: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(started_at.get(..10)?, "%Y-%m-%d").ok()
}

fn name(day: NaiveDate) -> String {
    format!("runs_p{}", day.format("%Y%m%d"))
}

impl Days {
    /// Makes the partitions of the days of `started` that have none, unless
    /// the whole day is older than `cutoff`: those runs go to
    /// `runs_default`, where retention deletes them by row.
    pub fn ensure<'a>(
        &mut self,
        client: &mut Client,
        started: impl Iterator<Item = &'a str>,
        cutoff: &str,
    ) -> Result<(), DbError> {
        let new: BTreeSet<NaiveDate> = started
            .filter_map(day)
            .filter(|d| !self.known.contains(d))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let oldest_kept = day(cutoff);
        for d in new {
            let next = d + TimeDelta::days(1);
            if oldest_kept.is_none_or(|kept| next > kept) {
                let sql = format!(
                    "{WAIT_BRIEFLY} {ONE_AT_A_TIME} CREATE TABLE IF NOT EXISTS {} PARTITION OF runs FOR VALUES FROM ('{d}') TO ('{next}')",
                    name(d)
                );
                let mut tx = client.transaction()?;
                match tx.batch_execute(&sql) {
                    Ok(()) => tx.commit()?,
                    // Someone holds `runs` (a dump, a long query): the
                    // batch goes on, the day's runs into `runs_default`
                    // meanwhile, and the next batch tries again.
                    Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                        tracing::warn!(day = %d, "the day's partition waits for a lock on runs; trying again with the next batch");
                        continue;
                    }
                    // `runs_default` already holds runs of that day (kept by
                    // an incident when the day was dropped): they stay
                    // there, and so do the day's new ones.
                    Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.known.insert(d);
        }
        Ok(())
    }

    /// Drops the partitions of days wholly before `cutoff`, keeping the
    /// runs incidents refer to in `runs_default`. Returns how many.
    pub fn drop_before(&mut self, client: &mut Client, cutoff: &str) -> Result<usize, DbError> {
        let Some(oldest_kept) = day(cutoff) else {
            return Ok(0);
        };
        let partitions: Vec<String> = client
            .query(
                "SELECT c.relname::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'runs'::regclass AND c.relname::text LIKE 'runs\\_p%'",
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut dropped = 0;
        for partition in partitions {
            let Some(d) = NaiveDate::parse_from_str(&partition["runs_p".len()..], "%Y%m%d").ok()
            else {
                continue;
            };
            if d + TimeDelta::days(1) > oldest_kept {
                continue;
            }
            let mut tx = client.transaction()?;
            tx.batch_execute(&format!(
                "{WAIT_BRIEFLY}
                 ALTER TABLE runs DETACH PARTITION {partition};
                 INSERT INTO runs (seq, run_id, check_name, started_at, duration_ms, result,
                                   reason, step, message, json, location)
                     SELECT seq, run_id, check_name, started_at, duration_ms, result, reason,
                            step, message, json, location
                     FROM {partition}
                     WHERE run_id IN (SELECT jsonb_array_elements_text(run_ids::jsonb)
                                      FROM incidents);
                 DROP TABLE {partition};"
            ))?;
            tx.commit()?;
            self.known.remove(&d);
            dropped += 1;
        }
        Ok(dropped)
    }
}
