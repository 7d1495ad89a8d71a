//! The read side, for the CLI and the HTTP API: plain synchronous calls on
//! a connection of their own, usable while the daemon writes (WAL readers
//! never block the writer, and wait `busy_timeout` rather than fail).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DbError, db_error, decode, schema};
use crate::check::{Redacted, RunRecord, RunResult};
use crate::incident::Incident;
use crate::incident::store::StoreError;
use crate::store::IncidentDetail;
use crate::store::rows::{RUN_COLUMNS, RunColumns, event_row};

/// A read-only connection to the database; the methods are those of
/// [`crate::store::Reader`].
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl Reader {
    /// Opens the database at `path` for reading. It must exist and have
    /// this build's schema: a reader never creates or migrates.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: schema::open_reader(path)?,
            path: path.to_owned(),
        })
    }

    /// Incidents, newest declared first; only unresolved ones if `open_only`.
    pub fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let sql = if open_only {
            "SELECT id, json FROM incidents WHERE resolved_at IS NULL ORDER BY declared_at DESC, id DESC LIMIT ?1"
        } else {
            "SELECT id, json FROM incidents ORDER BY declared_at DESC, id DESC LIMIT ?1"
        };
        let read = || -> Result<_, DbError> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let mut rows = stmt.query([sql_limit(limit)])?;
            let mut incidents = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                incidents.push(decode(
                    &format!("incident {id}"),
                    &row.get::<_, String>(1)?,
                )?);
            }
            Ok(incidents)
        };
        read().map_err(|e| self.error("listing incidents", e))
    }

    /// One incident with its timeline and its notifications as they stand,
    /// read from one snapshot; `None` if there is no such incident.
    pub fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, StoreError> {
        let read = || -> Result<_, DbError> {
            let tx = self.conn.unchecked_transaction()?;
            let json: Option<String> = tx
                .prepare_cached("SELECT json FROM incidents WHERE id = ?1")?
                .query_row([id], |row| row.get(0))
                .optional()?;
            let Some(json) = json else {
                return Ok(None);
            };
            let incident: Incident = decode(&format!("incident {id}"), &json)?;
            let mut events = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT id, kind, at FROM events WHERE incident_id = ?1 ORDER BY at, id",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(row) = rows.next()? {
                let kind: String = row.get(1)?;
                let at: String = row.get(2)?;
                events.push(event_row(row.get(0)?, id, &kind, &at).map_err(DbError::Invalid)?);
            }
            drop(rows);
            drop(stmt);
            let mut outbox = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT id, item FROM outbox WHERE incident_id = ?1 ORDER BY created_at, id",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(row) = rows.next()? {
                let item_id: String = row.get(0)?;
                outbox.push(decode(
                    &format!("outbox item {item_id}"),
                    &row.get::<_, String>(1)?,
                )?);
            }
            Ok(Some((incident, events, outbox)))
        };
        read().map_err(|e| self.error(&format!("reading incident {id}"), e))
    }

    /// Runs of `check` that started between `from` and `to`, oldest first,
    /// with their ids: the timeline of an incident.
    pub fn runs_between(
        &self,
        check: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let read = || -> Result<_, DbError> {
            let mut stmt = self.conn.prepare_cached(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE check_name = ?1 AND started_at >= ?2 AND started_at <= ?3 ORDER BY seq LIMIT ?4"),
            )?;
            let mut rows = stmt.query(params![
                check,
                crate::store::rows::ts(&from),
                crate::store::rows::ts(&to),
                sql_limit(limit)
            ])?;
            let mut runs = Vec::new();
            while let Some(row) = rows.next()? {
                runs.push(run(row)?);
            }
            Ok(runs)
        };
        read().map_err(|e| self.error(&format!("reading the runs of {check:?}"), e))
    }

    /// How many incidents each check had declared since `since`.
    pub fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let read = || -> Result<_, DbError> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT check_name, COUNT(*) FROM incidents WHERE declared_at >= ?1 GROUP BY check_name")?;
            let mut rows = stmt.query([crate::store::rows::ts(&since)])?;
            let mut counts = std::collections::BTreeMap::new();
            while let Some(row) = rows.next()? {
                let n: i64 = row.get(1)?;
                counts.insert(row.get::<_, String>(0)?, u64::try_from(n).unwrap_or(0));
            }
            Ok(counts)
        };
        read().map_err(|e| self.error("counting incidents", e))
    }

    /// The last `limit` runs of `check`, newest first.
    pub fn recent_runs(
        &self,
        check: &str,
        limit: usize,
    ) -> Result<Vec<Redacted<RunResult>>, StoreError> {
        let read = || -> Result<_, DbError> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE check_name = ?1 ORDER BY seq DESC LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![check, sql_limit(limit)])?;
            let mut runs = Vec::new();
            while let Some(row) = rows.next()? {
                runs.push(run(row)?.result);
            }
            Ok(runs)
        };
        read().map_err(|e| self.error(&format!("reading the runs of {check:?}"), e))
    }

    fn error(&self, doing: &str, e: DbError) -> StoreError {
        db_error(doing, &self.path, e)
    }
}

/// A run and its id, from the columns and the steps' JSON.
fn run(row: &rusqlite::Row) -> Result<RunRecord, DbError> {
    let columns = RunColumns {
        run_id: row.get(0)?,
        check: row.get(1)?,
        started_at: row.get(2)?,
        duration_ms: row.get(3)?,
        result: row.get(4)?,
        reason: row.get(5)?,
        step: row.get(6)?,
        message: row.get(7)?,
        json: row.get(8)?,
        location: row.get(9)?,
    };
    columns.decode().map_err(DbError::Invalid)
}

/// SQLite counts in `i64`; anything larger means "no limit".
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
