//! The one thread that writes, whatever the backend. Requests arrive on a
//! channel in the order they were made; each carries a oneshot for its
//! answer, sent only after its transaction is committed (or has failed).
//! Runs, check states and transitions queued together share one
//! transaction. A backend is a [`Database`]: the statements, not the queue.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Retention;
use super::rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow};
use crate::incident::store::{OutboxItem, Snapshot, StoreError};

/// Requests taken off the queue at once. Runs, states and transitions among
/// them share one transaction; anything else is written on its own, in
/// queue order. A queued run of a one-step check takes about 600 bytes (its
/// row and the row's strings, and the record it shares with the engine): a
/// full batch, and the next one queueing while it is written, hold about
/// 12 MiB at most. (At 10,000 runs a second the daemon's RSS went from 38 to
/// 43 MiB when batches grew from 4,096 runs.)
const MAX_BATCH: usize = 10_240;
/// How long the writer gathers runs nobody waits for before committing
/// them. A commit writes every page it dirtied to the WAL (and the
/// checkpoint writes it again), and each check's runs dirty their own
/// index page: the more runs of a check a batch holds, the fewer pages per
/// run. At 10,000 runs a second, batches of 0.4 s (4,096 runs) cost the
/// writer 7.5 µs of CPU per run and batches of a second 5.3–5.7 µs; the
/// store read and wrote about 2.7 KB of file per run at 0.4 s, against 4.8
/// and 4.3 KB with batches of 250 ms. Runs show in the history this much
/// later; the API's last run, the metrics and incidents do not wait.
const LINGER: Duration = Duration::from_millis(1000);
/// How often a lingering writer looks for more requests; also the longest
/// an awaited request (an incident transition) waits behind a linger.
const NAP: Duration = Duration::from_millis(10);

/// How often an idle writer does its housekeeping ([`Database::tick`]) and
/// retries the runs it holds while the database is unreachable.
const TICK: Duration = Duration::from_secs(1);
/// Runs held while the database is unreachable: the newest are kept, the
/// oldest dropped first (a queued one-step run takes about 600 bytes, so
/// about 60 MB at most). At 10,000 runs a second that is ten seconds of
/// history; at the shipped checks' rate, days.
const MAX_BACKLOG: usize = 100_000;

/// A backend's statements. Each call is one transaction: it commits whole
/// or leaves the database as it was.
pub(super) trait Database: Send + 'static {
    /// The database's name in messages: a file, or a server and database.
    fn location(&self) -> String;
    /// Runs, then states and transitions in queue order, then the history
    /// of the checks in `prune` trimmed to `keep`. Returns what each
    /// transition's commit claimed, in order.
    fn write_batch(
        &mut self,
        runs: &[&RunRow],
        ops: &[Op<'_>],
        keep: Retention,
        prune: &BTreeSet<&str>,
    ) -> Result<Vec<Vec<OutboxItem>>, Failure>;
    fn load(&mut self) -> Result<Snapshot, Failure>;
    /// Takes and renews claims for `k`'s claimer; returns what it holds.
    fn claim(&mut self, k: &ClaimRow) -> Result<Vec<OutboxItem>, Failure>;
    /// `false`: another worker holds the item, nothing written.
    fn update_delivery(&mut self, o: &OutboxRow, k: &ClaimRow) -> Result<bool, Failure>;
    fn release(&mut self, claimer: &str) -> Result<(), Failure>;
    fn forget_check(&mut self, check: &str) -> Result<(), Failure>;
    /// Hands a write call to the leader, from a replica that does not lead
    /// (see `cluster.rs`); returns its id.
    fn ask(&mut self, _incident: &str, _note: Option<&str>) -> Result<i64, Failure> {
        Err(Failure::refused("this store has one daemon, which leads"))
    }
    /// The leader's answer to the call `id`, once it has given one.
    fn answer_of(&mut self, _id: i64) -> Result<Option<String>, Failure> {
        Ok(None)
    }
    /// The leader's answer to the call `id`.
    fn answer(&mut self, _id: i64, _answer: &str) -> Result<(), Failure> {
        Ok(())
    }
    /// Called about every [`TICK`], between requests: leases, partitions.
    /// Returns whether it reached the database, if it tried: a replica
    /// with no checks of its own writes nothing, and its store is up or
    /// down by its reads.
    fn tick(&mut self) -> Option<bool> {
        None
    }
    /// Why this database must no longer be written by this process
    /// (another one took it over), once that is so.
    fn lost(&self) -> Option<&str> {
        None
    }
    fn close(self);
}

/// Why a call failed, and whether the database could not be reached (the
/// runs of a failed batch are then kept and written when it is back)
/// rather than refused the write.
#[derive(Debug)]
pub(super) struct Failure {
    pub cause: String,
    pub unreachable: bool,
}

impl Failure {
    /// A failure the database answered with: retrying will not help.
    pub fn refused(cause: impl std::fmt::Display) -> Failure {
        Failure {
            cause: cause.to_string(),
            unreachable: false,
        }
    }
}

/// What a batch writes besides runs, in the order it was queued: states and
/// transitions both write check states, and the later one must win.
pub(super) enum Op<'a> {
    State(&'a StateRow),
    Commit(&'a CommitRows),
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Request {
    Load(Reply<Snapshot>),
    Commit(Box<CommitRows>, Reply<Vec<OutboxItem>>),
    /// `None`: queued, nobody waits for it. Not boxed: the record it shares
    /// is the run's one allocation.
    Run(RunRow, Option<Reply<()>>),
    /// A check's state after a run; queued, nobody waits for it.
    State(Box<StateRow>),
    Claim(ClaimRow, Reply<Vec<OutboxItem>>),
    Delivery(Box<(OutboxRow, ClaimRow)>, Reply<bool>),
    Release(String, Reply<()>),
    Forget(String, Reply<()>),
    /// A resolve for the leader: the incident and the note.
    Ask(Box<(String, Option<String>)>, Reply<i64>),
    AnswerOf(i64, Reply<Option<String>>),
    Answer(i64, String, Reply<()>),
    /// Write everything queued before this, close the database, then answer.
    Close(Closer),
}

/// Told when the writer has closed the database; `None` when the last
/// handle was dropped.
pub(super) type Closer = Option<oneshot::Sender<()>>;

pub(super) struct Writer<D> {
    db: D,
    retention: Retention,
    /// Runs added per check since it was last pruned.
    since_prune: std::collections::HashMap<String, usize, crate::check::FastHash>,
    /// Whether the last write succeeded, for `scarecrow_store_up`.
    healthy: Arc<AtomicBool>,
    /// Queued runs a batch could not write because the database was
    /// unreachable, oldest first, at most [`MAX_BACKLOG`].
    backlog: VecDeque<RunRow>,
    /// Runs dropped from a full backlog since the database was last reached.
    dropped: u64,
    last_tick: Instant,
    /// Told once the database is lost to another writer.
    lost: tokio::sync::watch::Sender<Option<String>>,
}

impl<D: Database> Writer<D> {
    pub fn new(
        db: D,
        retention: Retention,
        healthy: Arc<AtomicBool>,
        lost: tokio::sync::watch::Sender<Option<String>>,
    ) -> Writer<D> {
        Writer {
            lost,
            db,
            retention,
            since_prune: Default::default(),
            healthy,
            backlog: VecDeque::new(),
            dropped: 0,
            last_tick: Instant::now(),
        }
    }

    /// Serves requests until it is told to close or every sender is gone.
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut queue = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    self.housekeeping();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut linger = unawaited_run(&first);
            queue.push(first);
            let until = Instant::now() + LINGER;
            loop {
                let Ok(request) = rx.try_recv() else {
                    // Napping rather than blocking on the channel: a blocked
                    // receiver costs every sender a thread wake-up.
                    if linger && queue.len() < MAX_BATCH && Instant::now() < until {
                        std::thread::sleep(NAP);
                        continue;
                    }
                    break;
                };
                // Someone waits for this one: write what is queued now.
                linger &= unawaited_run(&request);
                queue.push(request);
                if queue.len() >= MAX_BATCH {
                    break;
                }
            }
            let closing = self.serve(&mut queue);
            self.note_lost();
            if closing.is_none() && self.last_tick.elapsed() >= TICK {
                self.housekeeping();
            }
            if let Some(closed) = closing {
                // Requests queued behind the close are dropped: their
                // callers see "store is closed".
                drop(rx);
                self.close();
                if let Some(reply) = closed {
                    let _ = reply.send(());
                }
                return;
            }
        }
        self.close();
    }

    /// Serves a batch in order; returns the close request if there was one.
    fn serve(&mut self, queue: &mut Vec<Request>) -> Option<Closer> {
        let mut batch = Batch::default();
        for request in queue.drain(..) {
            let request = match request {
                Request::Run(row, reply) => {
                    batch.runs.push((row, reply));
                    continue;
                }
                Request::State(row) => {
                    batch.ops.push(Queued::State(*row));
                    continue;
                }
                Request::Commit(rows, reply) => {
                    batch.ops.push(Queued::Commit(rows, reply));
                    continue;
                }
                other => other,
            };
            // Everything else sees the runs queued before it written first.
            self.write_batch(&mut batch);
            match request {
                Request::Load(reply) => {
                    let result = self.db.load();
                    let _ = reply.send(self.read(result, || "loading state".to_owned()));
                }
                Request::Claim(claim, reply) => {
                    let result = self.db.claim(&claim);
                    let _ = reply.send(self.wrote(result, || {
                        format!("claiming outbox items for {}", claim.claimer)
                    }));
                }
                Request::Delivery(rows, reply) => {
                    let (row, claim) = &*rows;
                    let result = self.db.update_delivery(row, claim);
                    let _ = reply
                        .send(self.wrote(result, || format!("updating outbox item {}", row.id)));
                }
                Request::Release(claimer, reply) => {
                    let result = self.db.release(&claimer);
                    let _ = reply
                        .send(self.wrote(result, || format!("releasing the claims of {claimer}")));
                }
                Request::Forget(check, reply) => {
                    let result = self.db.forget_check(&check);
                    let _ =
                        reply.send(self.wrote(result, || format!("forgetting check {check:?}")));
                }
                Request::Ask(call, reply) => {
                    let result = self.db.ask(&call.0, call.1.as_deref());
                    let _ = reply.send(self.wrote(result, || "asking the leader".to_owned()));
                }
                Request::AnswerOf(id, reply) => {
                    let result = self.db.answer_of(id);
                    let _ = reply.send(self.read(result, || format!("reading the answer to {id}")));
                }
                Request::Answer(id, answer, reply) => {
                    let result = self.db.answer(id, &answer);
                    let _ = reply.send(self.wrote(result, || format!("answering {id}")));
                }
                Request::Close(reply) => return Some(reply),
                Request::Run(..) | Request::State(..) | Request::Commit(..) => {} // taken above
            }
        }
        self.write_batch(&mut batch);
        None
    }

    fn write_batch(&mut self, batch: &mut Batch) {
        if !self.backlog.is_empty() {
            // Held runs first: they are older, and the sort below keeps a
            // check's runs in the order they are in here.
            let held = self.backlog.drain(..).map(|row| (row, None));
            batch.runs.splice(0..0, held);
        }
        if batch.runs.is_empty() && batch.ops.is_empty() {
            return;
        }
        let runs = &mut batch.runs;
        // Pruning a check costs a query; doing it for every batch a check is
        // in made the writer the daemon's bottleneck. A check is pruned once
        // a tenth of its history has been added since the last time, so at
        // most 10 % more than the limit is kept. Checks start their count
        // at different points, so checks that started together do not all
        // prune in the same batch.
        let every = (self.retention.runs_per_check / 10).max(1);
        let mut prune = BTreeSet::new();
        for (row, _) in runs.iter() {
            let seen = self.since_prune.len();
            let n = match self.since_prune.get_mut(row.check()) {
                Some(n) => n,
                None => self
                    .since_prune
                    .entry(row.check().to_owned())
                    .or_insert(seen % every),
            };
            *n += 1;
            if *n >= every {
                *n = 0;
                prune.insert(row.check());
            }
        }
        let ops: Vec<Op> = batch
            .ops
            .iter()
            .map(|op| match op {
                Queued::State(row) => Op::State(row),
                Queued::Commit(rows, _) => Op::Commit(rows),
            })
            .collect();
        // A check's runs in a row, in the order they came: consecutive
        // inserts then land on the same index page, which the database's
        // cache still holds, instead of one page per run read back from
        // disk. (The sort is stable: `seq` stays a check's time order.)
        // Sorted here, not in `runs`, which keeps the order they came in
        // for the backlog.
        let mut rows: Vec<&RunRow> = runs.iter().map(|(row, _)| row).collect();
        rows.sort_by(|a, b| a.check().cmp(b.check()));
        let result = self.db.write_batch(&rows, &ops, self.retention, &prune);
        drop((rows, ops));
        let unreachable = result.as_ref().is_err_and(|f| f.unreachable);
        let result = self.wrote(result, || describe(runs, &batch.ops));
        for (row, reply) in runs.drain(..) {
            match reply {
                Some(reply) if !reply.is_closed() => {
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                }
                // Nobody waits for it: kept until the database is back.
                _ if unreachable => self.hold(row),
                _ => {}
            }
        }
        if result.is_ok() && self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "the store is back; runs dropped while it was unreachable are missing from the history"
            );
            self.dropped = 0;
        }
        let mut claimed = result.map(Vec::into_iter);
        for op in batch.ops.drain(..) {
            if let Queued::Commit(_, reply) = op {
                let answer = match &mut claimed {
                    Ok(each) => Ok(each.next().unwrap_or_default()),
                    Err(e) => Err(e.clone()),
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// Keeps a run the database could not take, dropping the oldest held
    /// one when [`MAX_BACKLOG`] are.
    fn hold(&mut self, mut row: RunRow) {
        row.held = true;
        if self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
            if self.dropped == 0 {
                tracing::warn!(
                    held = MAX_BACKLOG,
                    "the store is unreachable and its backlog of runs is full: dropping the oldest"
                );
            }
            self.dropped += 1;
        }
        self.backlog.push_back(row);
    }

    /// Between requests: retries the held runs, then the backend's own
    /// housekeeping.
    fn housekeeping(&mut self) {
        self.last_tick = Instant::now();
        if !self.backlog.is_empty() {
            self.write_batch(&mut Batch::default());
        }
        match self.db.tick() {
            Some(false) => self.healthy.store(false, Ordering::Relaxed),
            Some(true) if self.backlog.is_empty() => self.healthy.store(true, Ordering::Relaxed),
            _ => {}
        }
        self.note_lost();
    }

    /// Tells the store's handles once the database is lost to another
    /// writer.
    fn note_lost(&self) {
        if let Some(why) = self.db.lost()
            && self.lost.borrow().is_none()
        {
            self.lost.send_replace(Some(why.to_owned()));
        }
    }

    /// Notes the outcome of a write and gives it a readable reason.
    fn wrote<T>(
        &self,
        result: Result<T, Failure>,
        doing: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        result.map_err(|f| {
            let e = self.error(&doing(), f);
            tracing::warn!(error = %e, "store write failed");
            e
        })
    }

    /// A read's outcome: a failure to reach the database counts against
    /// `scarecrow_store_up`, one the database answered does not.
    fn read<T>(
        &self,
        result: Result<T, Failure>,
        doing: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        match result {
            Ok(value) => Ok(value),
            Err(f) => {
                if f.unreachable {
                    self.healthy.store(false, Ordering::Relaxed);
                }
                Err(self.error(&doing(), f))
            }
        }
    }

    /// `{doing} in {location}: {cause}`, e.g. `committing incident.declared
    /// inc_… in /var/lib/scarecrow/state.db: database is locked`.
    fn error(&self, doing: &str, f: Failure) -> StoreError {
        StoreError(format!("{doing} in {}: {}", self.db.location(), f.cause))
    }

    /// Writes the held runs one last time (a daemon stopping while the
    /// database is unreachable loses them, and says so), then closes.
    fn close(mut self) {
        if !self.backlog.is_empty() {
            self.write_batch(&mut Batch::default());
            if !self.backlog.is_empty() {
                tracing::warn!(
                    runs = self.backlog.len(),
                    "stopping with runs the store could not take: they are missing from the history"
                );
            }
        }
        self.db.close();
    }
}

/// Runs, states and transitions written together, in one transaction.
#[derive(Default)]
struct Batch {
    runs: Vec<(RunRow, Option<Reply<()>>)>,
    /// States and transitions, in queue order.
    ops: Vec<Queued>,
}

enum Queued {
    State(StateRow),
    Commit(Box<CommitRows>, Reply<Vec<OutboxItem>>),
}

/// What a batch did, for its error: `recording 3 runs and committing
/// incident.declared inc_…`.
fn describe(runs: &[(RunRow, Option<Reply<()>>)], ops: &[Queued]) -> String {
    let commits: Vec<&CommitRows> = ops
        .iter()
        .filter_map(|op| match op {
            Queued::Commit(rows, _) => Some(&**rows),
            Queued::State(_) => None,
        })
        .collect();
    let mut parts = Vec::new();
    match runs.len() {
        0 => {}
        1 => parts.push("recording a run".to_owned()),
        n => parts.push(format!("recording {n} runs")),
    }
    match commits.as_slice() {
        [] => {}
        [one] => parts.push(format!("committing {}", one.describe())),
        many => parts.push(format!("committing {} transitions", many.len())),
    }
    if parts.is_empty() {
        parts.push("writing check states".to_owned());
    }
    parts.join(" and ")
}

/// A run or state queued to be batched, or a run whose caller stopped
/// waiting. (A transition is batched too, but someone waits for it: the
/// writer does not linger for more.)
fn unawaited_run(request: &Request) -> bool {
    match request {
        Request::Run(_, reply) => reply.as_ref().is_none_or(|r| r.is_closed()),
        Request::State(_) => true,
        _ => false,
    }
}
