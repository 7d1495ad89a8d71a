//! `scarecrow run`: load, start the scheduler and the HTTP endpoints, stop
//! cleanly on SIGTERM or SIGINT.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Exit;
use super::incidents::Incidents;
use crate::check::{Check, Outcome, RunResult};
use crate::config::{self, Config, Diagnostic};
use crate::incident::engine::{Command, Policy};
use crate::metrics::Metrics;
use crate::probe::Secrets;
use crate::schedule::{Observer, Scheduler};
use crate::server::{ActionError, ActionFuture, Actions};

/// Runs the daemon until a signal stops it.
pub async fn run(config_path: Option<&Path>, secrets: Secrets) -> Exit {
    let config = match config::load_config(config_path) {
        Ok(c) => c,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    super::init_tracing("info", config.log_format);
    // Secrets with a fallback count as set, so the demo loads without warnings.
    let env = |name: &str| config::process_env(name).or_else(|| secrets.get(name).ok());
    let loaded = config::load_checks(
        std::slice::from_ref(&config.checks_dir),
        &config.defaults,
        &env,
    );
    log_diagnostics(&loaded.diagnostics);
    let complete = !loaded.has_errors();
    match serve(config, loaded.checks, complete, secrets).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!("{e:#}");
            Exit::Config
        }
    }
}

async fn serve(
    config: Config,
    checks: Vec<Check>,
    complete: bool,
    secrets: Secrets,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    for check in &checks {
        metrics.add_check(check);
    }
    if checks.is_empty() {
        tracing::warn!(dir = %config.checks_dir.display(), "no checks loaded");
    }
    let probe = super::once::probe(&config, secrets)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let incidents = Incidents::start(&config, &checks, complete, &metrics).await?;
    tracing::info!(checks = checks.len(), listen = %config.listen, store = %config.store_path.display(), "scarecrow running");

    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::router(
            metrics.clone(),
            Arc::new(EngineActions(incidents.commands.clone())),
        ),
        shutdown.clone().cancelled_owned(),
    ));
    let policies = checks
        .iter()
        .map(|c| (c.name.clone(), super::incidents::policy(c, &config)))
        .collect();
    let observer = Arc::new(Telemetry {
        metrics,
        policies,
        incidents: incidents.commands.clone(),
    });
    let scheduler = Scheduler::new(probe, observer, config.concurrency, config.shutdown_grace);
    let checks = checks.into_iter().map(Arc::new).collect();
    let scheduling = tokio::spawn(scheduler.run(checks, shutdown.clone()));

    wait_for_signal().await;
    tracing::info!(grace = ?config.shutdown_grace, "shutting down");
    shutdown.cancel();
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal; exiting now");
        std::process::exit(130);
    });
    // The scheduler owns the last senders of run results: once it has
    // drained, the engine sees every result, then delivery and the store finish.
    let _ = scheduling.await;
    incidents.shutdown().await;
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("server: {e}"),
        Err(_) => tracing::warn!("server did not stop in time"),
        _ => {}
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (container stop) or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn log_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        let (file, line, col) = (d.file.display(), d.line, d.col);
        let shown = d.to_string();
        if d.is_error() {
            tracing::error!(%file, line, col, "this check does not run: {}", shown.trim_end());
        } else {
            tracing::warn!(%file, line, col, "{}", shown.trim_end());
        }
    }
}

/// Requests from the HTTP API, passed on to the incident engine.
struct EngineActions(mpsc::UnboundedSender<Command>);

impl Actions for EngineActions {
    fn resolve_incident(&self, incident: String, note: Option<String>) -> ActionFuture {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.0.send(Command::Resolve {
            incident,
            note,
            reply,
        });
        Box::pin(async move {
            if sent.is_err() {
                return Err(ActionError::Unavailable("shutting down".into()));
            }
            match answer.await {
                Ok(Ok(event)) => serde_json::to_value(&event)
                    .map_err(|e| ActionError::Unavailable(e.to_string())),
                Ok(Err(message)) => Err(ActionError::NotFound(message)),
                Err(_) => Err(ActionError::Unavailable("shutting down".into())),
            }
        })
    }
}

/// The one place each run event becomes a log line, metrics and, for
/// counted runs, input to the incident engine.
struct Telemetry {
    metrics: Metrics,
    policies: HashMap<String, Arc<Policy>>,
    incidents: mpsc::UnboundedSender<Command>,
}

impl Observer for Telemetry {
    fn started(&self, _check: &Check, lateness: Duration) {
        self.metrics.observe_lateness(lateness);
    }

    fn skipped(&self, check: &Check) {
        self.metrics.skipped_run(&check.name);
        tracing::warn!(check = %check.name, "run skipped: the previous run is still going");
    }

    fn finished(&self, check: &Arc<Check>, result: RunResult, counted: bool) {
        self.metrics.observe_run(&result);
        let ms = result.duration.as_millis() as u64;
        match &result.outcome {
            Outcome::Success => {
                tracing::info!(check = %check.name, duration_ms = ms, "check passed")
            }
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
        if let (true, Some(policy)) = (counted, self.policies.get(&check.name)) {
            let _ = self.incidents.send(Command::Run {
                result,
                policy: policy.clone(),
            });
        }
    }
}
