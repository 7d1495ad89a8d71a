//! Runs one check against the real site: its steps in order, one shared HTTP
//! client, a cookie jar per run, one deadline for the whole run.

mod body;
mod capture;
mod classify;
mod client;
mod hop;
mod render;
mod secrets;
mod step;

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::check::{Check, Outcome, Reason, RunResult, StepResult};

use render::RunVars;
pub use secrets::Secrets;
use step::{Live, RunCtx};

/// How the probe behaves towards every site.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub user_agent: String,
    /// A response whose decoded body exceeds this fails the run.
    pub max_body_bytes: u64,
    pub secrets: Secrets,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            user_agent: concat!("scarecrow/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_body_bytes: 10 * 1024 * 1024,
            secrets: Secrets::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Runs checks. Cheap to clone: clones share one HTTP client.
#[derive(Debug, Clone)]
pub struct Probe {
    client: reqwest::Client,
    max_body_bytes: u64,
    secrets: Secrets,
}

impl Probe {
    pub fn new(settings: ProbeSettings) -> Result<Probe, ProbeError> {
        Ok(Probe {
            client: client::build(&settings).map_err(ProbeError::Client)?,
            max_body_bytes: settings.max_body_bytes,
            secrets: settings.secrets,
        })
    }

    /// Runs every step of `check` in order within `check.timeout` (one
    /// absolute deadline for the whole run). Never panics, never hangs.
    pub async fn run(&self, check: &Check) -> RunResult {
        let span = tracing::info_span!("check", check = %check.name);
        self.run_in_span(check).instrument(span).await
    }

    async fn run_in_span(&self, check: &Check) -> RunResult {
        let started_at = chrono::Utc::now();
        let start = Instant::now();
        let mut progress = Progress::default();
        let steps = self.run_steps(check, &mut progress);
        let outcome = match tokio::time::timeout_at(start + check.timeout, steps).await {
            Ok(outcome) => outcome,
            Err(_) => progress.timed_out(check.timeout),
        };
        let result = RunResult {
            check: check.name.clone(),
            started_at,
            duration: start.elapsed(),
            outcome,
            steps: progress.steps,
        };
        match &result.outcome {
            Outcome::Success => {
                tracing::debug!(duration_ms = result.duration.as_millis(), "check passed")
            }
            Outcome::Failure {
                reason, message, ..
            } => {
                tracing::debug!(%reason, %message, duration_ms = result.duration.as_millis(), "check failed");
            }
        }
        result
    }

    /// The steps, in order, until one fails. Everything a timeout must still
    /// report is kept in `progress`, outside this future.
    async fn run_steps(&self, check: &Check, progress: &mut Progress) -> Outcome {
        let mut ctx = RunCtx {
            client: &self.client,
            max_body: self.max_body_bytes,
            vars: RunVars::new(self.secrets.clone()),
            jar: Default::default(),
        };
        for step in &check.steps {
            let live = progress.live.insert(Live::new(step));
            let ran = step::run(&mut ctx, step, live).await;
            progress.finish_step();
            if let Some(done) = progress.steps.last() {
                tracing::debug!(
                    step = %done.name,
                    status = ?done.status,
                    duration_ms = done.duration.as_millis(),
                    redirects = done.redirects,
                    failures = done.failures.len(),
                    "step ran"
                );
            }
            if let Err(f) = ran {
                return failure(f.reason, Some(&step.name), f.message);
            }
        }
        Outcome::Success
    }
}

/// What a run has done so far.
#[derive(Debug, Default)]
struct Progress {
    steps: Vec<StepResult>,
    live: Option<Live>,
}

impl Progress {
    /// Moves the step in flight to the finished ones.
    fn finish_step(&mut self) {
        if let Some(live) = self.live.take() {
            self.steps.push(live.into_result());
        }
    }

    fn timed_out(&mut self, timeout: Duration) -> Outcome {
        let after = humantime::format_duration(timeout);
        match self.live.take() {
            Some(live) => {
                let message = format!("timed out after {after} {}", live.stuck());
                let name = live.result.name.clone();
                self.steps.push(live.into_result());
                failure(Reason::Timeout, Some(&name), message)
            }
            None => failure(Reason::Timeout, None, format!("timed out after {after}")),
        }
    }
}

/// A failed outcome whose message names the step it happened in.
fn failure(reason: Reason, step: Option<&str>, message: String) -> Outcome {
    Outcome::Failure {
        reason,
        step: step.map(str::to_owned),
        message: match step {
            Some(name) => format!("step {name:?}: {message}"),
            None => message,
        },
    }
}
