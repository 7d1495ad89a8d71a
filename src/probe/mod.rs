//! Runs one check against the real site: its steps in order, each by its
//! kind (`kind.rs`; HTTP in `http/`), all sharing the run's context
//! (`context.rs`: one deadline, captures, cookie jar, redaction set).

mod attempt;
mod browser;
mod capture;
mod context;
mod http;
mod judge;
mod kind;
mod live;
mod redact;
mod retry;

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::check::{Check, Outcome, Reason, Redacted, RunResult, StepResult};
use context::{RunContext, RunVars};
use kind::Kinds;
use live::Live;

use crate::secret::Secrets;
pub use http::ClientError;

/// How the probe behaves towards every site.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub user_agent: String,
    /// A response whose decoded body exceeds this fails the run.
    pub max_body_bytes: u64,
    pub secrets: Secrets,
    /// `[browser]`: the Chromium browser steps run in.
    pub browser: crate::check::BrowserOptions,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            user_agent: concat!("scarecrow/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_body_bytes: 10 * 1024 * 1024,
            secrets: Secrets::default(),
            browser: crate::check::BrowserOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] ClientError),
    /// The client for some checks' `[tls]`, `resolve` or `proxy` options.
    #[error("cannot build the HTTP client for the connection options of {checks}: {}", crate::error_chain::joined(.source))]
    Connection {
        /// The checks that use the options, comma-separated.
        checks: String,
        #[source]
        source: ClientError,
    },
}

/// Runs checks. Cheap to clone: clones share the HTTP clients and the
/// browser.
#[derive(Debug, Clone)]
pub struct Probe {
    clients: http::Clients,
    /// Started at the first browser step; killed when the last clone goes.
    chromium: std::sync::Arc<browser::Chromium>,
    max_body_bytes: u64,
    secrets: Secrets,
}

impl Probe {
    pub fn new(settings: ProbeSettings) -> Result<Probe, ProbeError> {
        Ok(Probe {
            clients: http::Clients::new(&settings.user_agent).map_err(ProbeError::Client)?,
            chromium: std::sync::Arc::new(browser::Chromium::new(settings.browser)),
            max_body_bytes: settings.max_body_bytes,
            secrets: settings.secrets,
        })
    }

    /// Builds the clients `checks` need, once per distinct set of connection
    /// options, and drops those no check uses any more. Call it at load and
    /// after each reload with every loaded check; a check it did not see gets
    /// its client at its first run. Warns about every `insecure` check.
    pub fn prepare<'c>(&self, checks: impl IntoIterator<Item = &'c Check>) -> Vec<ProbeError> {
        let checks: Vec<&Check> = checks.into_iter().collect();
        for check in checks.iter().filter(|c| c.connection.tls.insecure) {
            warn_insecure(check);
        }
        if let Some(why) = self.browser_missing() {
            for check in checks.iter().filter(|c| c.uses_browser()) {
                tracing::warn!(
                    check = %check.name,
                    "{why}: this check's browser steps fail with reason `setup` until it is"
                );
            }
        }
        self.clients
            .prepare(checks)
            .into_iter()
            .map(|(users, source)| ProbeError::Connection {
                checks: users
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            })
            .collect()
    }

    /// Why browser steps cannot run here (no Chromium), if they cannot.
    pub fn browser_missing(&self) -> Option<String> {
        browser_missing(self.chromium.options())
    }

    /// Closes the browser browser steps ran in, if one was started: call it
    /// before the process exits, which would leave it running.
    pub async fn close(&self) {
        self.chromium.close().await;
    }

    /// Runs every step of `check` in order within `check.timeout` (one
    /// absolute deadline for the whole run). Never panics, never hangs.
    pub async fn run(&self, check: &Check) -> Redacted<RunResult> {
        // Debug, like the lines inside a run that need it: an enabled span
        // costs every run an allocation and every poll an enter and exit.
        let span = tracing::debug_span!("check", check = %check.name);
        self.run_in_span(check).instrument(span).await
    }

    async fn run_in_span(&self, check: &Check) -> Redacted<RunResult> {
        let started_at = chrono::Utc::now();
        let start = Instant::now();
        let mut progress = Progress::default();
        if check.connection.tls.insecure {
            warn_insecure(check);
        }
        // Bounded at load; a model built otherwise still must not panic here.
        let deadline = start
            .checked_add(check.timeout)
            .unwrap_or_else(|| start + crate::check::bounds::MAX_DURATION);
        let steps = self.run_steps(check, deadline, &mut progress);
        let outcome = match tokio::time::timeout_at(deadline, steps).await {
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
        // Nothing leaves the probe with a secret in it, logs included.
        progress.redactor.seal(result)
    }

    /// The steps, in order, until one fails. Everything a timeout must still
    /// report is kept in `progress`, outside this future.
    async fn run_steps<'s>(
        &self,
        check: &'s Check,
        deadline: Instant,
        progress: &mut Progress<'s>,
    ) -> Outcome {
        let kinds =
            match Kinds::for_check(&self.clients, &self.chromium, check, self.max_body_bytes) {
                Ok(kinds) => kinds,
                Err(message) => return failure(Reason::Setup, None, message),
            };
        let mut ctx = RunContext::new(
            self.secrets.clone(),
            progress.redactor.clone(),
            deadline,
            check.public_cookies.clone(),
        );
        for step in &check.steps {
            let live = progress.live.insert(Live::new(step));
            let ran = retry::run(&kinds, &mut ctx, step, live).await;
            progress.finish_step();
            if let Some(done) = progress.steps.last() {
                let http = done.http();
                tracing::debug!(
                    step = %done.name,
                    status = ?http.and_then(|h| h.status),
                    duration_ms = done.duration.as_millis(),
                    redirects = http.map_or(0, |h| h.redirects.len()),
                    attempts = done.attempts,
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

/// Why browser steps cannot run with `options` here (no Chromium), if
/// they cannot.
pub fn browser_missing(options: &crate::check::BrowserOptions) -> Option<String> {
    browser::executable(options).err()
}

/// Reads `bytes` as the browser's side of the DevTools pipe (its first
/// byte the size of the chunks the rest comes in), as the daemon does;
/// the number of events it routed to a page. The fuzz target `devtools`
/// drives the pipe's reader through this.
pub fn devtools(bytes: &[u8]) -> usize {
    browser::replay(bytes)
}

/// Judges `response` as a run judges a step's last response, after a request
/// to `url`: the step's captures, then its assertions, parsing the page
/// only until `deadline`. Returns every failure, in order. No
/// network and no cookies; `${secret:…}` comes from the environment and
/// `${file:…}` reads the file, as in a run. The fuzz targets (fuzz/) drive
/// the evaluation through this.
pub fn judge(
    step: &crate::check::Step,
    response: crate::assert::Response<'_>,
    url: &url::Url,
    deadline: std::time::Instant,
) -> Vec<crate::check::Failure> {
    let seen = capture::Seen {
        url: url.to_string(),
        cookies: Vec::new(),
    };
    let mut vars = RunVars::new(Secrets::default(), redact::Redactor::default());
    capture::evaluate(response, &seen, step, &mut vars, deadline).failures
}

/// What a run has done so far.
#[derive(Debug, Default)]
struct Progress<'s> {
    steps: Vec<StepResult>,
    live: Option<Live<'s>>,
    /// The run's secret values, kept here so a timeout cannot lose them.
    redactor: redact::Redactor,
}

impl Progress<'_> {
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
                let name = live.name.clone();
                self.steps.push(live.into_result());
                failure(Reason::Timeout, Some(&name), message)
            }
            None => failure(Reason::Timeout, None, format!("timed out after {after}")),
        }
    }
}

/// `insecure = true` is loud: at load and at every run.
fn warn_insecure(check: &Check) {
    tracing::warn!(
        check = %check.name,
        "TLS certificate verification is OFF for this check (`insecure = true` in {}): any certificate passes",
        check.source.display()
    );
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
