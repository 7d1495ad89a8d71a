//! The scheduler: one task and one timer queue for all checks, however many.
//! Runs never overlap per check, share one concurrency bound, and report
//! their lateness (started minus due) instead of drifting silently. Checks
//! can be added, changed and removed while it runs (a reload), and run on
//! request. A run that panics is a failed run with reason `internal`; the
//! check's slot is freed however a run ends.

#[cfg(test)]
mod panic_tests;
pub mod plan;
pub mod share;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::check::{Check, FastHash, Outcome, Reason, Redacted, RunResult};
use crate::probe::Probe;

/// What runs a check: the probe, in the daemon.
pub trait Runner: Send + Sync + 'static {
    fn run(&self, check: &Check) -> impl Future<Output = Redacted<RunResult>> + Send;
}

impl Runner for Probe {
    fn run(&self, check: &Check) -> impl Future<Output = Redacted<RunResult>> + Send {
        Probe::run(self, check)
    }
}

/// What the scheduler reports; the app turns it into logs, metrics and state.
pub trait Observer: Send + Sync + 'static {
    /// A run got its concurrency permit `lateness` after it was due.
    fn started(&self, check: &Check, lateness: Duration);
    /// A run was due while the previous one was still going; `streak`
    /// counts the skips in a row, 1 for the first.
    fn skipped(&self, check: &Check, streak: u32);
    /// A run ended. `counted` is false for a failure that a re-check will
    /// confirm or overturn: it is recorded, but does not count toward incidents.
    fn finished(&self, check: &Arc<Check>, result: Redacted<RunResult>, counted: bool);
    /// The next runs of these checks are planned for these times (in one
    /// call per scheduler tick, however many runs it started).
    fn planned(&self, plans: &[(Arc<str>, Option<DateTime<Utc>>)]);
    /// The scheduler loop went round: proof of progress, not of a timer.
    fn ticked(&self);
}

/// Where a run-now request gets its run's result, or why there is none.
pub type Reply = oneshot::Sender<Result<Redacted<RunResult>, String>>;

/// Changes and requests while the scheduler runs.
pub enum Request {
    /// A new check, or a changed definition of a loaded one: it keeps its
    /// place in the schedule unless its schedule changed.
    Upsert(Arc<Check>),
    Remove(String),
    /// Run now, or wait for the run in progress; answers that run's result.
    RunNow {
        name: String,
        reply: Reply,
    },
}

/// The longest the scheduler sleeps, so it notices a wall-clock jump
/// (a suspended machine, a clock set by hand) within this.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How far ahead runs are handed to tasks that wait for their due time.
/// Waking the scheduler at every due time would make its timer the
/// runtime's earliest, and each new earliest timer wakes a parked worker (an
/// eventfd write and an `epoll_wait` round trip, thousands a second under
/// load). Runs planned ahead wait on timers of their own, staggered like
/// the checks, and the scheduler wakes about once per `AHEAD`.
const AHEAD: Duration = Duration::from_millis(10);
/// A wall-clock jump larger than this re-plans every schedule.
const JUMP: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

pub struct Scheduler<R = Probe> {
    shared: Arc<Shared<R>>,
    /// Which checks this replica runs when replicas share them; `None`:
    /// every check. Looked at when a run is due, so a check moves between
    /// replicas at its next due time and keeps its phase.
    share: Option<tokio::sync::watch::Receiver<share::Share>>,
    /// How long in-flight runs may finish after shutdown was asked for.
    grace: Duration,
}

/// What every run uses, behind one `Arc`: a run takes one reference, not
/// one per part. (At thousands of runs a second, each reference count is a
/// cache line the worker threads pass back and forth.)
struct Shared<R> {
    runner: R,
    observer: Arc<dyn Observer>,
    permits: Semaphore,
}

/// What a slot shares with its runs, planned and in progress: one
/// allocation per check.
struct Runs {
    /// The definition a run starting now uses: a reload can change it
    /// between a run's planning and its start.
    check: Mutex<Arc<Check>>,
    /// The slot's version. A planned run whose version is gone when it is
    /// due (its check was removed or rescheduled) does not start.
    version: AtomicU64,
    running: AtomicBool,
    /// Due runs skipped in a row because the previous one was still going.
    skips: AtomicU32,
    /// Requests waiting for the run in progress.
    waiters: Mutex<Vec<Reply>>,
}

impl Runs {
    fn check(&self) -> Arc<Check> {
        Arc::clone(&self.check.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn set_check(&self, check: Arc<Check>) {
        *self.check.lock().unwrap_or_else(PoisonError::into_inner) = check;
    }
}

struct Slot {
    /// The check's name, shared with its queue entries.
    key: Arc<str>,
    runs: Arc<Runs>,
}

impl Slot {
    fn new(key: Arc<str>, check: Arc<Check>) -> Slot {
        Slot {
            key,
            runs: Arc::new(Runs {
                check: Mutex::new(check),
                version: AtomicU64::new(0),
                running: AtomicBool::new(false),
                skips: AtomicU32::new(0),
                waiters: Mutex::default(),
            }),
        }
    }

    /// Bumped on every change, so queue entries of an older version are
    /// ignored. Only the scheduler's task writes it.
    fn version(&self) -> u64 {
        self.runs.version.load(Ordering::Acquire)
    }

    /// Moves to a new version: queued and planned runs of the old one lapse.
    fn set_version(&self, version: u64) {
        self.runs.version.store(version, Ordering::Release);
    }
}

/// The queue holds (due, slot name, version); stale entries are skipped.
type Queue = BinaryHeap<Reverse<(Duration, Arc<str>, u64)>>;
type Slots = HashMap<Arc<str>, Slot, FastHash>;

impl<R: Runner> Scheduler<R> {
    pub fn new(
        runner: R,
        observer: Arc<dyn Observer>,
        concurrency: usize,
        grace: Duration,
    ) -> Self {
        Scheduler {
            shared: Arc::new(Shared {
                runner,
                observer,
                permits: Semaphore::new(concurrency.max(1)),
            }),
            share: None,
            grace,
        }
    }

    /// Runs only the checks `share` gives this replica (run-now requests
    /// run whatever they name).
    pub fn shared(mut self, share: tokio::sync::watch::Receiver<share::Share>) -> Self {
        self.share = Some(share);
        self
    }

    /// Runs `checks` on their schedules until `shutdown` is cancelled, then
    /// lets in-flight runs finish within the grace period and cancels the rest.
    pub async fn run(
        self,
        checks: Vec<Arc<Check>>,
        mut requests: mpsc::UnboundedReceiver<Request>,
        shutdown: CancellationToken,
    ) {
        let origin = Instant::now();
        let mut slots = Slots::with_capacity_and_hasher(checks.len(), FastHash::default());
        let mut queue = Queue::new();
        let wall = Utc::now();
        for check in checks {
            self.upsert(&mut slots, &mut queue, check, Duration::ZERO, wall);
        }
        let mut tasks = Tasks::default();
        let mut plans = Vec::new();
        let (mut last_mono, mut last_wall) = (origin.elapsed(), wall);
        loop {
            let wake = queue
                .peek()
                .map_or(MAX_SLEEP, |Reverse((due, _, _))| {
                    due.saturating_sub(AHEAD + origin.elapsed())
                })
                .min(MAX_SLEEP);
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(req) = requests.recv() => {
                    self.request(&mut slots, &mut queue, &mut tasks, req, origin);
                    continue;
                }
                () = tokio::time::sleep(wake) => {}
            }
            let (mono, wall) = (origin.elapsed(), Utc::now());
            self.shared.observer.ticked();
            tasks.reap();
            let drift = (wall - last_wall)
                - chrono::TimeDelta::from_std(mono - last_mono).unwrap_or_default();
            if drift.abs() > JUMP {
                // Intervals too: their phase is the wall clock's, which
                // replicas sharing the checks agree on.
                tracing::info!(
                    jump_seconds = drift.num_seconds(),
                    "wall clock jumped; re-planning schedules"
                );
                for slot in slots.values() {
                    let check = slot.runs.check();
                    self.plan(&mut queue, slot, &check, mono, wall);
                }
            }
            (last_mono, last_wall) = (mono, wall);
            // Everything due within two `AHEAD`s, so the next wake-up is at
            // least one `AHEAD` away.
            while let Some(Reverse((due, _, _))) = queue.peek() {
                if *due > mono + 2 * AHEAD {
                    break;
                }
                let Some(Reverse((due, name, version))) = queue.pop() else {
                    break;
                };
                let Some(slot) = slots.get(&*name).filter(|s| s.version() == version) else {
                    continue;
                };
                if self
                    .share
                    .as_ref()
                    .is_none_or(|s| s.borrow().runs(&slot.runs.check()))
                {
                    tasks.spawn(self.run_one(slot, origin, Some(due)));
                }
                let next = plan::next_due(&slot.runs.check().schedule, due, mono, wall);
                if let Some(next) = next {
                    queue.push(Reverse((next, slot.key.clone(), version)));
                }
                plans.push((name, wall_time(next, mono, wall)));
            }
            if !plans.is_empty() {
                self.shared.observer.planned(&plans);
                plans.clear();
            }
        }
        self.drain(tasks).await;
    }

    fn request(
        &self,
        slots: &mut Slots,
        queue: &mut Queue,
        tasks: &mut Tasks,
        req: Request,
        origin: Instant,
    ) {
        match req {
            Request::Upsert(check) => {
                self.upsert(slots, queue, check, origin.elapsed(), Utc::now())
            }
            Request::Remove(name) => {
                if let Some(slot) = slots.remove(name.as_str()) {
                    slot.set_version(u64::MAX);
                }
            }
            Request::RunNow { name, reply } => {
                let Some(slot) = slots.get(name.as_str()) else {
                    let _ = reply.send(Err(format!("no check named `{name}`")));
                    return;
                };
                slot.runs
                    .waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(reply);
                if !slot.runs.running.swap(true, Ordering::AcqRel) {
                    tasks.spawn(self.run_one(slot, origin, None));
                }
            }
        }
    }

    /// Adds a check, or swaps in its new definition. An unchanged schedule
    /// keeps its due time, so a reload does not shift or repeat runs.
    fn upsert(
        &self,
        slots: &mut Slots,
        queue: &mut Queue,
        check: Arc<Check>,
        now: Duration,
        wall: DateTime<Utc>,
    ) {
        let name: Arc<str> = check.name.as_str().into();
        let prior = slots.remove(&*name);
        let rescheduled = prior
            .as_ref()
            .is_none_or(|slot| slot.runs.check().schedule != check.schedule);
        let slot = prior.unwrap_or_else(|| Slot::new(name.clone(), Arc::clone(&check)));
        if rescheduled {
            self.plan(queue, &slot, &check, now, wall);
        }
        slot.runs.set_check(check);
        slots.insert(name, slot);
    }

    /// Moves `slot` to a new version, so its queued and planned runs lapse,
    /// queues the first run of `check` in it, and tells the observer when
    /// that is.
    fn plan(
        &self,
        queue: &mut Queue,
        slot: &Slot,
        check: &Check,
        now: Duration,
        wall: DateTime<Utc>,
    ) {
        let version = slot.version() + 1;
        slot.set_version(version);
        let due = plan::first_due(&check.name, &check.schedule, now, wall);
        if let Some(d) = due {
            queue.push(Reverse((d, slot.key.clone(), version)));
        }
        self.shared
            .observer
            .planned(&[(slot.key.clone(), wall_time(due, now, wall))]);
    }

    fn run_one(
        &self,
        slot: &Slot,
        origin: Instant,
        due: Option<Duration>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let (runs, version) = (Arc::clone(&slot.runs), slot.version());
        async move {
            let Shared {
                runner,
                observer,
                permits,
            } = &*shared;
            if let Some(due) = due {
                // A due time past the clock's range never comes.
                let Some(at) = origin.checked_add(due) else {
                    return;
                };
                tokio::time::sleep_until(at).await;
                if runs.version.load(Ordering::Acquire) != version {
                    return;
                }
                if runs.running.swap(true, Ordering::AcqRel) {
                    let streak = runs.skips.fetch_add(1, Ordering::Relaxed) + 1;
                    observer.skipped(&runs.check(), streak);
                    return;
                }
                runs.skips.store(0, Ordering::Relaxed);
            }
            // From here the slot is this run's (a run now set the flag
            // before spawning it): freed on every way out.
            let mut slot = Running {
                runs: &runs,
                result: None,
            };
            let check = runs.check();
            let Ok(permit) = permits.acquire().await else {
                return;
            };
            if let Some(due) = due {
                observer.started(&check, origin.elapsed().saturating_sub(due));
            }
            let mut result = caught(&check, runner.run(&check)).await;
            drop(permit);
            if let (false, Some(wait)) = (result.outcome.is_success(), check.incidents.recheck) {
                observer.finished(&check, result, false);
                tokio::time::sleep(wait).await;
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                result = caught(&check, runner.run(&check)).await;
            }
            slot.result = Some(result.clone());
            drop(slot);
            observer.finished(&check, result, true);
        }
    }

    async fn drain(&self, mut tasks: Tasks) {
        // Runs planned or waiting for a permit never start.
        self.shared.permits.close();
        tasks.reap();
        if tasks.set.is_empty() {
            return;
        }
        tracing::info!(in_flight = tasks.set.len(), grace = ?self.grace, "waiting for in-flight runs");
        let all = async { while tasks.set.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace, all).await.is_err() {
            tracing::warn!(
                cancelled = tasks.set.len(),
                "grace period over; cancelling runs"
            );
            tasks.set.shutdown().await;
        }
    }
}

/// A run's hold on its slot. Dropped when the run ends, panics or is
/// cancelled, it frees the slot and answers the requests waiting for the
/// run: with its result, or with an error when there is none.
struct Running<'r> {
    runs: &'r Runs,
    result: Option<Redacted<RunResult>>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.runs.running.store(false, Ordering::Release);
        let waiting = std::mem::take(
            &mut *self
                .runs
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for reply in waiting {
            let _ = reply.send(match &self.result {
                Some(result) => Ok(result.clone()),
                None => Err("the run ended without a result (the daemon is stopping)".to_owned()),
            });
        }
    }
}

/// Runs `run`, turning a panic inside it into a failed run with reason
/// `internal`, logged with the check's name, so one bad input costs one
/// run, not the check's slot or the scheduler.
pub async fn caught(
    check: &Check,
    run: impl Future<Output = Redacted<RunResult>>,
) -> Redacted<RunResult> {
    let start = Instant::now();
    let panic = match AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => return result,
        Err(panic) => panic,
    };
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    tracing::error!(
        check = %check.name,
        panic = what,
        "a run panicked; it fails with reason `internal`"
    );
    let duration = start.elapsed();
    // Its message is ours alone; nothing of the run is in it.
    Redacted::vouched(RunResult {
        check: check.name.clone(),
        started_at: Utc::now() - chrono::TimeDelta::from_std(duration).unwrap_or_default(),
        duration,
        outcome: Outcome::Failure {
            reason: Reason::Internal,
            step: None,
            message: "internal error: the run panicked (a bug in scarecrow; the daemon's log has the details)".to_owned(),
        },
        steps: Vec::new(),
    })
}

/// The runs planned and in flight, so shutdown can wait for them and abort
/// what is left when the grace period is over. The loop reaps finished runs
/// at each tick rather than awaiting them: a finished run wakes nothing.
/// (Not a `select!` of each run against one shared `CancellationToken`: the
/// token's future takes the token's lock at every poll, a lock every run on
/// every worker shares; that cost 2,100 instructions per run.)
#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
}

impl Tasks {
    fn spawn(&mut self, run: impl Future<Output = ()> + Send + 'static) {
        // Boxed: a run is a future of about 2 KB, which the task and its cell
        // in tokio would each move (tokio also overwrites the cell with a
        // placeholder of that size when the run ends). Boxed, they move a
        // pointer.
        self.set.spawn(Box::pin(run));
    }

    /// Forgets the runs that have ended.
    fn reap(&mut self) {
        while self.set.try_join_next().is_some() {}
    }
}

/// A monotonic due time as wall-clock time, for people.
fn wall_time(due: Option<Duration>, mono: Duration, wall: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let ahead = chrono::TimeDelta::from_std(due?.saturating_sub(mono)).ok()?;
    Some(wall + ahead)
}
