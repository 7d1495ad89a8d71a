//! The scheduler: one task and one timer queue for all checks, however many.
//! Runs never overlap per check, share one concurrency bound, and report
//! their lateness (started minus due) instead of drifting silently.

pub mod plan;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::check::{Check, RunResult, Schedule};
use crate::probe::Probe;

/// What the scheduler reports; the app turns it into logs and metrics.
pub trait Observer: Send + Sync + 'static {
    /// A run got its concurrency permit `lateness` after it was due.
    fn started(&self, check: &Check, lateness: Duration);
    /// A run was due while the previous one was still going.
    fn skipped(&self, check: &Check);
    /// A run ended. `counted` is false for a failure that a re-check will
    /// confirm or overturn: it is recorded, but does not count toward incidents.
    fn finished(&self, check: &Arc<Check>, result: RunResult, counted: bool);
}

/// The longest the scheduler sleeps, so it notices a wall-clock jump
/// (a suspended machine, a clock set by hand) within this.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// A wall-clock jump larger than this re-plans cron schedules.
const JUMP: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

pub struct Scheduler {
    probe: Probe,
    observer: Arc<dyn Observer>,
    permits: Arc<Semaphore>,
    /// How long in-flight runs may finish after shutdown was asked for.
    grace: Duration,
}

struct Slot {
    check: Arc<Check>,
    running: Arc<AtomicBool>,
    due: Option<Duration>,
}

impl Scheduler {
    pub fn new(
        probe: Probe,
        observer: Arc<dyn Observer>,
        concurrency: usize,
        grace: Duration,
    ) -> Self {
        Scheduler {
            probe,
            observer,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            grace,
        }
    }

    /// Runs `checks` on their schedules until `shutdown` is cancelled, then
    /// lets in-flight runs finish within the grace period and cancels the rest.
    pub async fn run(self, checks: Vec<Arc<Check>>, shutdown: CancellationToken) {
        let origin = Instant::now();
        let wall = Utc::now();
        let mut slots: Vec<Slot> = checks
            .into_iter()
            .map(|check| Slot {
                due: plan::first_due(&check.name, &check.schedule, Duration::ZERO, wall),
                check,
                running: Arc::new(AtomicBool::new(false)),
            })
            .collect();
        let mut queue = queue(&slots);
        let mut tasks = JoinSet::new();
        let (mut last_mono, mut last_wall) = (origin.elapsed(), wall);
        loop {
            let wake = queue
                .peek()
                .map_or(MAX_SLEEP, |Reverse((due, _))| {
                    due.saturating_sub(origin.elapsed())
                })
                .min(MAX_SLEEP);
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                () = tokio::time::sleep(wake) => {}
            }
            let (mono, wall) = (origin.elapsed(), Utc::now());
            let drift = (wall - last_wall)
                - chrono::TimeDelta::from_std(mono - last_mono).unwrap_or_default();
            if drift.abs() > JUMP {
                tracing::info!(
                    jump_seconds = drift.num_seconds(),
                    "wall clock jumped; re-planning cron schedules"
                );
                for slot in slots
                    .iter_mut()
                    .filter(|s| matches!(s.check.schedule, Schedule::Cron(_)))
                {
                    slot.due = plan::first_due(&slot.check.name, &slot.check.schedule, mono, wall);
                }
                queue = self::queue(&slots);
            }
            (last_mono, last_wall) = (mono, wall);
            while let Some(&Reverse((due, i))) = queue.peek() {
                if due > mono {
                    break;
                }
                queue.pop();
                let slot = &mut slots[i];
                if slot.running.swap(true, Ordering::AcqRel) {
                    self.observer.skipped(&slot.check);
                } else {
                    tasks.spawn(self.run_one(slot, origin, due));
                }
                slot.due = plan::next_due(&slot.check.schedule, due, mono, wall);
                if let Some(next) = slot.due {
                    queue.push(Reverse((next, i)));
                }
            }
        }
        self.drain(tasks).await;
    }

    fn run_one(
        &self,
        slot: &Slot,
        origin: Instant,
        due: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (probe, observer, permits) = (
            self.probe.clone(),
            self.observer.clone(),
            self.permits.clone(),
        );
        let (check, running) = (slot.check.clone(), slot.running.clone());
        async move {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            observer.started(&check, origin.elapsed().saturating_sub(due));
            let mut result = probe.run(&check).await;
            drop(permit);
            if let (false, Some(wait)) = (result.outcome.is_success(), check.incidents.recheck) {
                observer.finished(&check, result, false);
                tokio::time::sleep(wait).await;
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                result = probe.run(&check).await;
            }
            running.store(false, Ordering::Release);
            observer.finished(&check, result, true);
        }
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        // Runs still waiting for a permit never start.
        self.permits.close();
        if tasks.is_empty() {
            return;
        }
        tracing::info!(in_flight = tasks.len(), grace = ?self.grace, "waiting for in-flight runs");
        let deadline = Instant::now() + self.grace;
        while !tasks.is_empty() {
            if tokio::time::timeout_at(deadline, tasks.join_next())
                .await
                .is_err()
            {
                tracing::warn!(
                    cancelled = tasks.len(),
                    "grace period over; cancelling runs"
                );
                tasks.shutdown().await;
                break;
            }
        }
    }
}

fn queue(slots: &[Slot]) -> BinaryHeap<Reverse<(Duration, usize)>> {
    slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.due.map(|d| Reverse((d, i))))
        .collect()
}
