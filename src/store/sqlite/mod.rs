//! The SQLite backend of [`crate::store::Store`] and
//! [`crate::store::Reader`]: run history, incidents and their timeline,
//! check states and the outbox. Nothing outside this module speaks SQL.
//!
//! One thread owns the writing connection; the async methods queue a request
//! and await its answer, so no async worker ever waits on the disk. Runs and
//! check states are written in batches; a transition is committed on its own
//! and answered only once it is durable. Readers use a separate connection
//! that never writes.

mod error;
mod read;
mod rows;
mod schema;
mod sql;
mod writer;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

pub use read::Reader;

use super::Retention;
use crate::check::RunRecord;
use crate::incident::machine::CheckState;
use crate::incident::store::{Claimer, OutboxItem, Snapshot, StoreError, Transition};
use error::{DbError, db_error, decode};
use rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow};
use writer::{Reply, Request, Writer};

/// A handle on the store; clones share the writer thread. Dropping the last
/// one writes what is queued and stops the thread (blocking until it has);
/// [`SqliteStore::close`] does the same without blocking.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    tx: mpsc::Sender<Request>,
    thread: Option<JoinHandle<()>>,
    healthy: Arc<AtomicBool>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the
    /// database at `path`.
    pub fn open(path: &Path, retention: Retention) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError(format!("creating the directory {}: {e}", dir.display()))
            })?;
        }
        let conn = schema::open_writer(path)?;
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            conn,
            path: path.to_owned(),
            retention,
            since_prune: Default::default(),
            healthy: Arc::clone(&healthy),
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Handle {
                tx,
                thread: Some(thread),
                healthy,
                path: path.to_owned(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the last write succeeded (`scarecrow_store_up`).
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Writes everything queued, closes the database and stops the writer.
    /// Calls made afterwards, through any clone, fail with "store is closed".
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.inner.tx.send(Request::Close(Some(reply))).is_ok() {
            let _ = done.await;
        }
    }

    async fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.tx.send(request(reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Close(None));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The operations of [`crate::store::Store`]; see there.
impl SqliteStore {
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        self.ask(Request::Load).await
    }

    pub fn commit(
        &self,
        t: Transition,
        claimer: &Claimer,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send + 'static {
        // Queued now: see `update_delivery`.
        let queued = CommitRows::new(&t, ClaimRow::new(claimer, Utc::now())).and_then(|rows| {
            let (reply, answer) = oneshot::channel();
            self.inner
                .tx
                .send(Request::Commit(Box::new(rows), reply))
                .map_err(|_| closed())?;
            Ok(answer)
        });
        async move { queued?.await.map_err(|_| closed())? }
    }

    pub async fn record_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        let row = RunRow::new(run)?;
        self.ask(|reply| Request::Run(row, Some(reply))).await
    }

    pub fn queue_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        let row = RunRow::new(run)?;
        // No reply: the writer batches queued runs, and its outcome shows in
        // `healthy`.
        self.inner
            .tx
            .send(Request::Run(row, None))
            .map_err(|_| closed())
    }

    pub fn queue_state(&self, check: &str, state: &CheckState) -> Result<(), StoreError> {
        let row = Box::new(StateRow::new(check, state)?);
        self.inner
            .tx
            .send(Request::State(row))
            .map_err(|_| closed())
    }

    pub async fn claim(
        &self,
        claimer: &Claimer,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let claim = ClaimRow::new(claimer, now);
        self.ask(|reply| Request::Claim(claim, reply)).await
    }

    pub fn update_delivery(
        &self,
        claimer: &Claimer,
        item: OutboxItem,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        // Queued now, not when the future is first polled: the writer takes
        // an item's updates in the order they were made.
        let claim = ClaimRow::new(claimer, Utc::now());
        let queued = OutboxRow::new(&item).and_then(|row| {
            let (reply, answer) = oneshot::channel();
            self.inner
                .tx
                .send(Request::Delivery(Box::new((row, claim)), reply))
                .map_err(|_| closed())?;
            Ok(answer)
        });
        async move { queued?.await.map_err(|_| closed())? }
    }

    pub async fn release(&self, claimer: &Claimer) -> Result<(), StoreError> {
        let id = claimer.id.clone();
        self.ask(|reply| Request::Release(id, reply)).await
    }

    pub async fn forget_check(&self, check: &str) -> Result<(), StoreError> {
        let check = check.to_owned();
        self.ask(|reply| Request::Forget(check, reply)).await
    }

    pub async fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        // A reader of its own: the writer's queue may be long, and every
        // commit awaited before this call is visible to a new read.
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || Reader::open(&path)?.incident_counts(since))
            .await
            .map_err(|e| StoreError(format!("counting incidents: {e}")))?
    }
}

fn closed() -> StoreError {
    StoreError("store is closed".to_owned())
}
