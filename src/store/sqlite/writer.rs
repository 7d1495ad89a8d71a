//! The one thread that writes. Requests arrive on a channel in the order
//! they were made; each carries a oneshot for its answer, sent only after
//! its transaction is committed (or has failed). Runs, check states and
//! transitions queued together share one transaction.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::rows::{ClaimRow, CommitRows, OutboxRow, RunRow, StateRow};
use super::{db_error, sql};
use crate::incident::store::{OutboxItem, Snapshot, StoreError};

/// Requests taken off the queue at once. Runs, states and transitions among
/// them share one transaction; anything else is written on its own, in
/// queue order. A
/// queued run of a one-step check takes about 600 bytes (its row and the
/// row's strings, and the record it shares with the engine): a full batch,
/// and the next one queueing while it is written, hold about 12 MiB at most. (At 10,000 runs a second the
/// daemon's RSS went from 38 to 43 MiB when batches grew from 4,096 runs.)
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
    /// Write everything queued before this, close the database, then answer.
    Close(Closer),
}

/// Told when the writer has closed the database; `None` when the last
/// handle was dropped.
pub(super) type Closer = Option<oneshot::Sender<()>>;

pub(super) struct Writer {
    pub conn: Connection,
    pub path: PathBuf,
    pub retention: super::Retention,
    /// Runs added per check since it was last pruned.
    pub since_prune: std::collections::HashMap<String, usize, crate::check::FastHash>,
    /// Whether the last write succeeded, for `scarecrow_store_up`.
    pub healthy: Arc<AtomicBool>,
}

impl Writer {
    /// Serves requests until it is told to close or every sender is gone.
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut queue = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = rx.recv() {
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
            if let Some(closed) = self.serve(&mut queue) {
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
                    let result = sql::load(&mut self.conn)
                        .map_err(|e| db_error("loading state", &self.path, e));
                    let _ = reply.send(result);
                }
                Request::Claim(claim, reply) => {
                    let result = sql::claim(&mut self.conn, &claim);
                    let _ = reply.send(self.wrote(result, || {
                        format!("claiming outbox items for {}", claim.claimer)
                    }));
                }
                Request::Delivery(rows, reply) => {
                    let (row, claim) = &*rows;
                    let result = sql::update_delivery(&mut self.conn, row, claim);
                    let _ = reply
                        .send(self.wrote(result, || format!("updating outbox item {}", row.id)));
                }
                Request::Release(claimer, reply) => {
                    let result = sql::release(&mut self.conn, &claimer);
                    let _ = reply
                        .send(self.wrote(result, || format!("releasing the claims of {claimer}")));
                }
                Request::Forget(check, reply) => {
                    let result = sql::forget_check(&mut self.conn, &check);
                    let _ =
                        reply.send(self.wrote(result, || format!("forgetting check {check:?}")));
                }
                Request::Close(reply) => return Some(reply),
                Request::Run(..) | Request::State(..) | Request::Commit(..) => {} // taken above
            }
        }
        self.write_batch(&mut batch);
        None
    }

    fn write_batch(&mut self, batch: &mut Batch) {
        if batch.runs.is_empty() && batch.ops.is_empty() {
            return;
        }
        let runs = &mut batch.runs;
        // A check's runs in a row, in the order they came: consecutive
        // inserts then land on the same index page, which SQLite's cache
        // still holds, instead of one page per run read back from disk.
        // (The order of a check's own runs is kept: `seq` is its time order.)
        runs.sort_by(|(a, _), (b, _)| a.check().cmp(b.check()));
        // Pruning a check costs a query; doing it for every batch a check is
        // in made the writer the daemon's bottleneck. A check is pruned once
        // a tenth of its history has been added since the last time, so at
        // most 10 % more than the limit is kept. Checks start their count
        // at different points, so checks that started together do not all
        // prune in the same batch.
        let every = (self.retention.runs_per_check / 10).max(1);
        let mut prune = std::collections::BTreeSet::new();
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
        let ops = batch.ops.iter().map(|op| match op {
            Queued::State(row) => sql::Op::State(row),
            Queued::Commit(rows, _) => sql::Op::Commit(rows),
        });
        let result = sql::write_batch(
            &mut self.conn,
            runs.iter().map(|(row, _)| row),
            ops,
            self.retention,
            &prune,
        );
        let result = self.wrote(result, || describe(runs, &batch.ops));
        for (_, reply) in runs.drain(..) {
            if let Some(reply) = reply {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
            }
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

    /// Notes the outcome of a write and gives it a readable reason.
    fn wrote<T, E: std::fmt::Display>(
        &self,
        result: Result<T, E>,
        doing: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        result.map_err(|e| {
            let e = db_error(&doing(), &self.path, e);
            tracing::warn!(error = %e, "store write failed");
            e
        })
    }

    fn close(self) {
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(path = %self.path.display(), error = %e, "closing the store");
        }
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
