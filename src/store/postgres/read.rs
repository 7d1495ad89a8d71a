//! The read side, for the CLI, the API and the status page: a connection
//! of its own per reader. Every call runs on a thread of its own, since
//! the synchronous client cannot run inside an async worker and the CLI
//! reads from one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use postgres::Client;

use super::connect::Connect;
use super::error::DbError;
use super::schema;
use crate::check::{Redacted, RunRecord, RunResult};
use crate::incident::Incident;
use crate::incident::store::StoreError;
use crate::store::IncidentDetail;
use crate::store::rows::{RUN_COLUMNS, RunColumns, decode, event_row, ts};

/// A connection to the store for reading; the methods are those of
/// [`crate::store::Reader`].
pub struct Reader {
    /// `None` only while it is dropped.
    client: Mutex<Option<Client>>,
    shown: String,
}

/// Closing a connection blocks on the client's runtime too.
impl Drop for Reader {
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        off_runtime(move || drop(client));
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("store", &self.shown)
            .finish()
    }
}

/// `f` on a plain thread, out of any async runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

impl Reader {
    /// Connects to the store. It must have a schema this build can read: a
    /// reader never creates or migrates.
    pub fn open(connect: &Connect) -> Result<Reader, StoreError> {
        off_runtime(|| {
            let failed = |e: String| StoreError(format!("reading the store at {connect}: {e}"));
            let mut client = connect.connect().map_err(failed)?;
            schema::compatible(&mut client, schema::current_version()).map_err(failed)?;
            Ok(Reader {
                client: Mutex::new(Some(client)),
                shown: connect.to_string(),
            })
        })
    }

    fn read<T: Send>(
        &self,
        doing: impl FnOnce() -> String,
        f: impl FnOnce(&mut Client) -> Result<T, DbError> + Send,
    ) -> Result<T, StoreError> {
        let result = off_runtime(|| {
            let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
            f(client
                .as_mut()
                .expect("a reader's connection lives as long as it does"))
        });
        result.map_err(|e| StoreError(format!("{} in {}: {e}", doing(), self.shown)))
    }

    pub fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let sql = if open_only {
            "SELECT id, json FROM incidents WHERE resolved_at IS NULL ORDER BY declared_at DESC, id DESC LIMIT $1"
        } else {
            "SELECT id, json FROM incidents ORDER BY declared_at DESC, id DESC LIMIT $1"
        };
        self.read(
            || "listing incidents".to_owned(),
            |c| {
                c.query(sql, &[&sql_limit(limit)])?
                    .iter()
                    .map(|row| {
                        let id: &str = row.get(0);
                        decode(&format!("incident {id}"), row.get(1)).map_err(DbError::Invalid)
                    })
                    .collect()
            },
        )
    }

    pub fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, StoreError> {
        self.read(
            || format!("reading incident {id}"),
            |c| {
                // One snapshot: the incident, its timeline and its outbox
                // as of the same moment.
                let mut tx = c
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?;
                let Some(row) = tx.query_opt("SELECT json FROM incidents WHERE id = $1", &[&id])?
                else {
                    return Ok(None);
                };
                let incident: Incident =
                    decode(&format!("incident {id}"), row.get(0)).map_err(DbError::Invalid)?;
                let events = tx
                    .query(
                        "SELECT id, kind, at FROM events WHERE incident_id = $1 ORDER BY at, id",
                        &[&id],
                    )?
                    .iter()
                    .map(|row| event_row(row.get(0), id, row.get(1), row.get(2)))
                    .collect::<Result<_, _>>()
                    .map_err(DbError::Invalid)?;
                let outbox = tx
                    .query(
                        "SELECT id, item FROM outbox WHERE incident_id = $1 ORDER BY created_at, id",
                        &[&id],
                    )?
                    .iter()
                    .map(|row| {
                        let item: &str = row.get(0);
                        decode(&format!("outbox item {item}"), row.get(1))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(DbError::Invalid)?;
                tx.commit()?;
                Ok(Some((incident, events, outbox)))
            },
        )
    }

    pub fn runs_between(
        &self,
        check: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE check_name = $1 AND started_at >= $2 AND started_at <= $3 ORDER BY seq LIMIT $4"
        );
        self.read(
            || format!("reading the runs of {check:?}"),
            |c| {
                c.query(&sql, &[&check, &ts(&from), &ts(&to), &sql_limit(limit)])?
                    .iter()
                    .map(run)
                    .collect()
            },
        )
    }

    pub fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        self.read(
            || "counting incidents".to_owned(),
            |c| {
                let rows = c.query(
                    "SELECT check_name::text, COUNT(*) FROM incidents WHERE declared_at >= $1 GROUP BY check_name",
                    &[&ts(&since)],
                )?;
                Ok(rows
                    .iter()
                    .map(|row| {
                        let n: i64 = row.get(1);
                        (row.get(0), u64::try_from(n).unwrap_or(0))
                    })
                    .collect())
            },
        )
    }

    pub fn recent_runs(
        &self,
        check: &str,
        limit: usize,
    ) -> Result<Vec<Redacted<RunResult>>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE check_name = $1 ORDER BY seq DESC LIMIT $2"
        );
        self.read(
            || format!("reading the runs of {check:?}"),
            |c| {
                c.query(&sql, &[&check, &sql_limit(limit)])?
                    .iter()
                    .map(|row| run(row).map(|run| run.result))
                    .collect()
            },
        )
    }
}

pub(super) fn run(row: &postgres::Row) -> Result<RunRecord, DbError> {
    let columns = RunColumns {
        run_id: row.get(0),
        check: row.get(1),
        started_at: row.get(2),
        duration_ms: row.get(3),
        result: row.get(4),
        reason: row.get(5),
        step: row.get(6),
        message: row.get(7),
        json: row.get(8),
        location: row.get(9),
    };
    columns.decode().map_err(DbError::Invalid)
}

/// PostgreSQL counts in `i64`; anything larger means "no limit".
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
