//! Where run events go: the one place each becomes a log line, metrics,
//! state for the API and, for counted runs, a record in the run history
//! and input to the incident engine (one record, shared by both).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::check::{Check, FastHash, Outcome, Redacted, RunRecord, RunResult};
use crate::incident::engine::{Command, Policy};
use crate::live::View;
use crate::metrics::Metrics;
use crate::schedule::Observer;

pub type Policies = Arc<RwLock<HashMap<String, Arc<Policy>, FastHash>>>;

pub struct Telemetry {
    pub metrics: Metrics,
    pub view: View,
    pub policies: Policies,
    /// The engine, when this process hands it its runs (SQLite). With
    /// PostgreSQL the leader's engine reads every member's runs from the
    /// store instead (`incidents::follow`).
    pub incidents: Option<mpsc::UnboundedSender<Command>>,
    /// The run history.
    pub runs: crate::store::Store,
    pub heartbeat: Option<super::heartbeat::Heartbeat>,
    /// This daemon's location, which each of its runs carries.
    pub location: Arc<str>,
    /// With `store_down = "alone"`: the engine of this replica's own runs
    /// while the store is out of reach.
    pub alone: Option<Arc<super::alone::Alone>>,
}

impl Observer for Telemetry {
    fn started(&self, _check: &Check, lateness: Duration) {
        self.metrics.observe_lateness(lateness);
    }

    fn skipped(&self, check: &Check, streak: u32) {
        self.metrics.skipped_run(&check.name);
        // Once per streak: an overloaded daemon skips thousands a second.
        if streak == 1 {
            tracing::warn!(
                check = %check.name,
                "run skipped: the previous run is still going (further skips in a row are only counted, in scarecrow_check_skipped_runs_total)"
            );
        }
    }

    fn finished(&self, check: &Arc<Check>, result: Redacted<RunResult>, counted: bool) {
        self.metrics.observe_run(&result);
        let before = self.view.run_finished(&result);
        let ms = result.duration.as_millis() as u64;
        match &result.outcome {
            // A check's first pass and each recovery at info; the passes in
            // between at debug: thousands of passing runs a second would
            // drown the log (and cost more CPU than the check).
            Outcome::Success => match before {
                None => tracing::info!(check = %check.name, duration_ms = ms, "check passed"),
                Some(false) => {
                    tracing::info!(check = %check.name, duration_ms = ms, "check recovered")
                }
                Some(true) => {
                    tracing::debug!(check = %check.name, duration_ms = ms, "check passed")
                }
            },
            Outcome::Failure {
                reason,
                step,
                message,
            } => tracing::warn!(
                check = %check.name,
                duration_ms = ms,
                reason = %reason,
                step = step.as_deref().unwrap_or(""),
                recheck = !counted,
                "check failed: {message}"
            ),
        }
        if !counted {
            return;
        }
        let policy = self
            .policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&check.name)
            .cloned();
        if let Some(policy) = policy {
            self.metrics
                .maintenance(&check.name, policy.in_maintenance(Utc::now()));
            let run = Arc::new(RunRecord {
                run_id: crate::incident::new_id("run"),
                result,
                location: Arc::clone(&self.location),
            });
            // Queued, not awaited: the writer batches runs. It fails only
            // once the store is closed, at shutdown; a failed write shows in
            // `scarecrow_store_up`.
            if let Err(e) = self.runs.queue_run(Arc::clone(&run)) {
                tracing::debug!("run not recorded: {e}");
            }
            if let Some(alone) = &self.alone {
                alone.run(&run, &policy);
            }
            if let Some(engine) = &self.incidents {
                let _ = engine.send(Command::Run {
                    run,
                    policy,
                    streak: None,
                });
            }
        }
    }

    fn planned(&self, plans: &[(Arc<str>, Option<DateTime<Utc>>)]) {
        self.view.next_runs(plans);
    }

    fn ticked(&self) {
        self.metrics.scheduler_ticked();
        self.view.scheduler_ticked();
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }
}
