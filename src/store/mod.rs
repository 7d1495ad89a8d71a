//! The store: run history, incidents and their timeline, check states and
//! the outbox. Callers see two interfaces, [`Store`] to write and [`Reader`]
//! to read; only a backend ([`sqlite`], [`postgres`]) knows its query
//! language.
//!
//! The writing side is one design for every backend: a thread of its own
//! owns the connection ([`writer`]), takes requests in the order they were
//! made, batches runs, states and transitions into one transaction, and
//! answers through a oneshot, so no async worker waits on a disk or a
//! network. A backend is a [`writer::Database`]: its statements, not the
//! queue. The reader is synchronous: its callers (the CLI, the API and the
//! status page, off the async workers) read a snapshot and return; it is an
//! enum over the backends, a `match` per call.
//!
//! The incident engine and the delivery worker write through
//! [`crate::incident::store::Store`], the interface that module defines
//! for what it needs; [`Store`] implements it. Runs have their own path:
//! the daemon queues each counted run here ([`Store::queue_run`]) as it
//! hands the same record to the engine, which writes states and incidents.
//!
//! On PostgreSQL several daemons share one store as replicas: the writer
//! keeps this process's member row and, on the leader, the lease, and
//! tells the daemon each second who is alive ([`Store::cluster`]) and
//! what the members wrote ([`Store::feed`]); see [`cluster`].
//!
//! A new backend: a module beside [`sqlite`] with a [`writer::Database`]
//! and a reader, a variant in [`Backend`] and [`Reader`], and a test that
//! passes it to the conformance suite (`tests/store_conformance/`).

pub mod cluster;
pub mod copy;
mod model;
pub mod postgres;
mod rows;
pub mod sqlite;
mod tables;
mod writer;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow};
use writer::{Reply, Request};

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
    /// A PostgreSQL database, shared by the daemons that name it.
    Postgres(postgres::Connect),
}

impl std::fmt::Display for Backend {
    /// For messages: the file, or the server and database (never the
    /// password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(path) => write!(f, "{}", path.display()),
            Backend::Postgres(connect) => write!(f, "{connect}"),
        }
    }
}

/// The writing side. Clones share one writer thread; dropping the last one
/// writes what is queued, blocking until it has; [`Store::close`] does the
/// same without blocking.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    tx: mpsc::Sender<Request>,
    thread: Option<JoinHandle<()>>,
    healthy: Arc<AtomicBool>,
    backend: Backend,
    lost: tokio::sync::watch::Receiver<Option<String>>,
    /// PostgreSQL's: the members alive, and whether this one leads.
    cluster: Option<tokio::sync::watch::Receiver<cluster::Cluster>>,
    /// PostgreSQL's: what the members wrote, each second; taken once.
    feed: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<cluster::Feed>>>,
    /// PostgreSQL's: when this member last renewed the lease it holds.
    renewed: Option<Renewed>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Close(None));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Opens the store (creating and migrating it if needed), keeping run
    /// history as `retention` says. Blocks while it connects. On
    /// PostgreSQL this process joins the store's members at
    /// `cluster::DEFAULT_LOCATION`, leading if no one does.
    pub fn open(backend: &Backend, retention: impl Into<Retention>) -> Result<Store, StoreError> {
        Store::open_at(backend, retention, cluster::DEFAULT_LOCATION)
    }

    /// [`Store::open`], as a member at `location`.
    pub fn open_at(
        backend: &Backend,
        retention: impl Into<Retention>,
        location: &str,
    ) -> Result<Store, StoreError> {
        Store::open_as(backend, retention.into(), Some(location))
    }

    /// Opens the store as its one writer, for a command that writes
    /// incidents without a daemon (`incidents resolve` with none running):
    /// on PostgreSQL it takes the leader's lease, waiting for one left
    /// behind to expire, and is refused while a daemon leads; it is no
    /// member, so no replica hands it checks.
    pub fn open_alone(
        backend: &Backend,
        retention: impl Into<Retention>,
    ) -> Result<Store, StoreError> {
        Store::open_as(backend, retention.into(), None)
    }

    /// `member`: on PostgreSQL, as one of the store's members, at this
    /// location.
    fn open_as(
        backend: &Backend,
        retention: Retention,
        member: Option<&str>,
    ) -> Result<Store, StoreError> {
        match backend {
            Backend::Sqlite(path) => {
                let path = path.clone();
                spawn(backend, move || sqlite::open(&path), retention, None)
            }
            Backend::Postgres(connect) if member.is_none() => {
                let connect = connect.clone();
                spawn(
                    backend,
                    move || postgres::open(&connect, retention, None),
                    retention,
                    None,
                )
            }
            Backend::Postgres(connect) => {
                let connect = connect.clone();
                let (cluster_tx, cluster) =
                    tokio::sync::watch::channel(cluster::Cluster::default());
                let (feed_tx, feed) = tokio::sync::mpsc::unbounded_channel();
                let renewed = Arc::new(std::sync::Mutex::new(None));
                let links = postgres::Links {
                    location: member.unwrap_or(cluster::DEFAULT_LOCATION).to_owned(),
                    cluster: cluster_tx,
                    feed: feed_tx,
                    renewed: renewed.clone(),
                };
                spawn(
                    backend,
                    move || postgres::open(&connect, retention, Some(links)),
                    retention,
                    Some((cluster, feed, renewed)),
                )
            }
        }
    }

    /// The members alive and whether this one leads, as the store last
    /// said; `None` on SQLite, where one daemon does everything.
    pub fn cluster(&self) -> Option<tokio::sync::watch::Receiver<cluster::Cluster>> {
        self.inner.cluster.clone()
    }

    /// What the members wrote, each second (see [`cluster::Feed`]): for
    /// the first caller, on PostgreSQL.
    pub fn feed(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<cluster::Feed>> {
        self.inner
            .feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Where the store is.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Queues a counted run to be recorded with the next batch and returns
    /// at once: nobody waits for a transaction per run. Failures show in
    /// [`Store::is_healthy`].
    pub fn queue_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        let row = RunRow::new(run)?;
        // No reply: the writer batches queued runs, and its outcome shows in
        // `healthy`.
        self.inner
            .tx
            .send(Request::Run(row, None))
            .map_err(|_| closed())
    }

    /// Records a run and returns once it is written (with everything queued
    /// before it).
    pub async fn record_run(&self, run: Arc<RunRecord>) -> Result<(), StoreError> {
        let row = RunRow::new(run)?;
        self.ask(|reply| Request::Run(row, Some(reply))).await
    }

    /// Whether the last write succeeded (`scarecrow_store_up`).
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Resolves once another process has taken the store over (on
    /// PostgreSQL, its lease), with why: from then on this one writes
    /// nothing, and a daemon should stop rather than notify from memory.
    /// Never resolves on SQLite.
    pub fn lost(&self) -> impl Future<Output = String> + Send + 'static {
        let mut lost = self.inner.lost.clone();
        async move {
            let why = lost
                .wait_for(Option::is_some)
                .await
                .map(|why| why.clone().unwrap_or_default());
            match why {
                Ok(why) => why,
                // The writer stopped without losing the store.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Hands a resolve to the leader through the store (on a replica that
    /// does not lead) and waits up to `wait` for its answer, which is
    /// whatever text the leader gave [`Store::answer`]; `None` if it gave
    /// none in time.
    pub async fn ask_leader(
        &self,
        incident: String,
        note: Option<String>,
        wait: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        let id = self
            .ask(|reply| Request::Ask(Box::new((incident, note)), reply))
            .await?;
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Some(answer) = self.ask(|reply| Request::AnswerOf(id, reply)).await? {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }

    /// The leader's answer to the call `id` of [`cluster::Ask`].
    pub async fn answer(&self, id: i64, answer: String) -> Result<(), StoreError> {
        self.ask(|reply| Request::Answer(id, answer, reply)).await
    }

    /// Writes everything queued and closes. Calls made afterwards, through
    /// any clone, fail with "store is closed".
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

/// Starts the writer thread, which opens the database with `open` (off
/// the async runtime: PostgreSQL's synchronous client runs one of its
/// own) and answers whether it could before it serves requests.
fn spawn<D: writer::Database>(
    backend: &Backend,
    open: impl FnOnce() -> Result<D, StoreError> + Send + 'static,
    retention: Retention,
    links: Option<Links>,
) -> Result<Store, StoreError> {
    let healthy = Arc::new(AtomicBool::new(true));
    let (lost_tx, lost) = tokio::sync::watch::channel(None);
    let (tx, rx) = mpsc::channel();
    let (opened, outcome) = mpsc::sync_channel(1);
    let writing = Arc::clone(&healthy);
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || match open() {
            Ok(db) => {
                let _ = opened.send(Ok(()));
                writer::Writer::new(db, retention, writing, lost_tx).run(rx);
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        })
        .map_err(|e| StoreError(format!("starting the writer thread: {e}")))?;
    outcome
        .recv()
        .map_err(|_| StoreError("the store's writer thread stopped while opening".to_owned()))??;
    Ok(Store {
        inner: Arc::new(Handle {
            tx,
            thread: Some(thread),
            healthy,
            backend: backend.clone(),
            lost,
            cluster: links.as_ref().map(|(cluster, ..)| cluster.clone()),
            renewed: links.as_ref().map(|(_, _, renewed)| renewed.clone()),
            feed: std::sync::Mutex::new(links.map(|(_, feed, _)| feed)),
        }),
    })
}

/// When a member last renewed the lease it holds.
type Renewed = Arc<std::sync::Mutex<Option<std::time::Instant>>>;

/// The daemon's ends of a member's channels.
type Links = (
    tokio::sync::watch::Receiver<cluster::Cluster>,
    tokio::sync::mpsc::UnboundedReceiver<cluster::Feed>,
    Renewed,
);

fn closed() -> StoreError {
    StoreError("store is closed".to_owned())
}

impl crate::incident::store::Store for Store {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.ask(Request::Load).await
    }

    fn commit(
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

    fn queue_state(&self, check: &str, state: &CheckState) -> Result<(), StoreError> {
        let row = Box::new(StateRow::new(check, state)?);
        self.inner
            .tx
            .send(Request::State(row))
            .map_err(|_| closed())
    }

    fn healthy(&self) -> bool {
        self.is_healthy()
    }

    fn may_deliver(&self) -> bool {
        // A second to spare: the lease may lapse while a send starts.
        let life = postgres::LEASE - std::time::Duration::from_secs(1);
        self.inner.renewed.as_ref().is_none_or(|renewed| {
            renewed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < life)
        })
    }

    async fn claim(
        &self,
        claimer: &Claimer,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let claim = ClaimRow::new(claimer, now);
        self.ask(|reply| Request::Claim(claim, reply)).await
    }

    fn update_delivery(
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

    async fn release(&self, claimer: &Claimer) -> Result<(), StoreError> {
        let id = claimer.id.clone();
        self.ask(|reply| Request::Release(id, reply)).await
    }

    async fn forget_check(&self, check: &str) -> Result<(), StoreError> {
        let check = check.to_owned();
        self.ask(|reply| Request::Forget(check, reply)).await
    }

    async fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        // A reader of its own: the writer's queue may be long, and every
        // commit awaited before this call is visible to a new read.
        let backend = self.inner.backend.clone();
        tokio::task::spawn_blocking(move || Reader::open(&backend)?.incident_counts(since))
            .await
            .map_err(|e| StoreError(format!("counting incidents: {e}")))?
    }
}

/// The reading side, for the CLI, the API and the status page: plain
/// synchronous calls, usable while a daemon writes. Run it off the async
/// workers.
#[derive(Debug)]
pub enum Reader {
    Sqlite(sqlite::Reader),
    Postgres(postgres::Reader),
}

impl Reader {
    /// Opens the store for reading. It must exist and have this build's
    /// schema: a reader never creates or migrates.
    pub fn open(backend: &Backend) -> Result<Reader, StoreError> {
        match backend {
            Backend::Sqlite(path) => Ok(Reader::Sqlite(sqlite::Reader::open(path)?)),
            Backend::Postgres(connect) => Ok(Reader::Postgres(postgres::Reader::open(connect)?)),
        }
    }

    /// Incidents, newest declared first; only unresolved ones if `open_only`.
    pub fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<Incident>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incidents(open_only, limit),
            Reader::Postgres(r) => r.incidents(open_only, limit),
        }
    }

    /// One incident with its timeline and its notifications as they stand,
    /// read from one snapshot; `None` if there is no such incident.
    pub fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incident(id),
            Reader::Postgres(r) => r.incident(id),
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
    ) -> Result<Vec<RunRecord>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.runs_between(check, from, to, limit),
            Reader::Postgres(r) => r.runs_between(check, from, to, limit),
        }
    }

    /// How many incidents each check had declared since `since`.
    pub fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.incident_counts(since),
            Reader::Postgres(r) => r.incident_counts(since),
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
            Reader::Postgres(r) => r.recent_runs(check, limit),
        }
    }
}
