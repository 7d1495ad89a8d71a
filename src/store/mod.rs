//! The store: run history, incidents and their timeline, check states and
//! the outbox. Callers see two interfaces, [`Store`] to write and [`Reader`]
//! to read; only a backend (today [`sqlite`]) knows its query language.
//!
//! Both are enums over the backends, not traits. The writer is async: the
//! next backend, PostgreSQL through tokio-postgres, is, and SQLite's writer
//! thread answers through a oneshot. `async fn` in a trait is not
//! dyn-compatible, and boxed futures would cost an allocation per call; a
//! `match` costs none, which counts on the per-run path
//! ([`Store::queue_run`]), and a new variant is a backend the compiler
//! makes every method handle. The reader is synchronous: its callers (the
//! CLI, the API and the status page, off the async workers) read a
//! snapshot and return, and a PostgreSQL reader can use the blocking
//! `postgres` client the same way.
//!
//! The incident engine and the delivery worker write through
//! [`crate::incident::store::Store`], the interface that module defines
//! for what it needs; [`Store`] implements it. Runs have their own path:
//! the daemon queues each counted run here ([`Store::queue_run`]) as it
//! hands the same record to the engine, which writes states and incidents.
//!
//! A new backend: a module beside [`sqlite`], a variant in [`Backend`],
//! [`Store`] and [`Reader`], and a test that passes it to the conformance
//! suite (`tests/store_conformance/`).

mod model;
pub mod sqlite;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::check::{Redacted, RunRecord, RunResult};
use crate::incident::Incident;
use crate::incident::machine::CheckState;
use crate::incident::store::{Claimer, OutboxItem, Snapshot, Transition};

pub use crate::incident::store::StoreError;
pub use model::{DEFAULT_HISTORY, EventRow, IncidentDetail, Retention};

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite database file (created with its directory if missing).
    Sqlite(PathBuf),
}

/// The writing side. Clones share one connection (or pool); dropping the
/// last one writes what is queued, blocking until it has;
/// [`Store::close`] does the same without blocking.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
}

impl Store {
    /// Opens the store (creating and migrating it if needed), keeping run
    /// history as `retention` says.
    pub fn open(backend: &Backend, retention: impl Into<Retention>) -> Result<Store, StoreError> {
        match backend {
            Backend::Sqlite(path) => Ok(Store::Sqlite(sqlite::SqliteStore::open(
                path,
                retention.into(),
            )?)),
        }
    }

    /// Queues a counted run to be recorded with the next batch and returns
    /// at once: nobody waits for a transaction per run. Failures show in
    /// [`Store::is_healthy`].
    pub fn queue_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.queue_run(run),
        }
    }

    /// Records a run and returns once it is written (with everything queued
    /// before it).
    pub async fn record_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record_run(run).await,
        }
    }

    /// Whether the last write succeeded (`scarecrow_store_up`).
    pub fn is_healthy(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.is_healthy(),
        }
    }

    /// Writes everything queued and closes. Calls made afterwards, through
    /// any clone, fail with "store is closed".
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
        }
    }
}

impl crate::incident::store::Store for Store {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        match self {
            Store::Sqlite(s) => s.load().await,
        }
    }

    fn commit(
        &self,
        t: Transition,
        claimer: &Claimer,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send + 'static {
        match self {
            Store::Sqlite(s) => s.commit(t, claimer),
        }
    }

    fn queue_state(&self, check: &str, state: &CheckState) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.queue_state(check, state),
        }
    }

    fn healthy(&self) -> bool {
        self.is_healthy()
    }

    async fn claim(
        &self,
        claimer: &Claimer,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        match self {
            Store::Sqlite(s) => s.claim(claimer, now).await,
        }
    }

    fn update_delivery(
        &self,
        claimer: &Claimer,
        item: OutboxItem,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        match self {
            Store::Sqlite(s) => s.update_delivery(claimer, item),
        }
    }

    async fn release(&self, claimer: &Claimer) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.release(claimer).await,
        }
    }

    async fn forget_check(&self, check: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.forget_check(check).await,
        }
    }

    async fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.incident_counts(since).await,
        }
    }
}

/// The reading side, for the CLI, the API and the status page: plain
/// synchronous calls, usable while a daemon writes. Run it off the async
/// workers.
#[derive(Debug)]
pub enum Reader {
    Sqlite(sqlite::Reader),
}

impl Reader {
    /// Opens the store for reading. It must exist and have this build's
    /// schema: a reader never creates or migrates.
    pub fn open(backend: &Backend) -> Result<Reader, StoreError> {
        match backend {
            Backend::Sqlite(path) => Ok(Reader::Sqlite(sqlite::Reader::open(path)?)),
        }
    }

    /// Incidents, newest declared first; only unresolved ones if `open_only`.
    pub fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<Incident>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incidents(open_only, limit),
        }
    }

    /// One incident with its timeline and its notifications as they stand,
    /// read from one snapshot; `None` if there is no such incident.
    pub fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incident(id),
        }
    }

    /// Runs of `check` that started between `from` and `to`, oldest first,
    /// with their ids: the timeline of an incident.
    pub fn runs_between(
        &self,
        check: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, Redacted<RunResult>)>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.runs_between(check, from, to, limit),
        }
    }

    /// How many incidents each check had declared since `since`.
    pub fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incident_counts(since),
        }
    }

    /// The last `limit` runs of `check`, newest first.
    pub fn recent_runs(
        &self,
        check: &str,
        limit: usize,
    ) -> Result<Vec<Redacted<RunResult>>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.recent_runs(check, limit),
        }
    }
}
