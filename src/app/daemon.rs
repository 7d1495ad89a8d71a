//! `scarecrow run`: load, start the scheduler, the incident machinery and
//! the HTTP endpoints; reload on file changes and SIGHUP; stop cleanly on
//! SIGTERM or SIGINT.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Exit;
use super::actions::DaemonActions;
use super::incidents::{Incidents, policy};
use super::telemetry::{Policies, Telemetry};
use crate::check::Check;
use crate::config::catalog::{Catalog, Diff};
use crate::config::watch::{self, Trigger};
use crate::config::{self, Config, Diagnostic};
use crate::incident::engine::Command;
use crate::live::{ConfigView, FileView, View};
use crate::metrics::Metrics;
use crate::schedule::share::Share;
use crate::schedule::{Request, Scheduler};
use crate::secret::Secrets;
use crate::store::cluster::Cluster;

/// File events closer together than this make one reload.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Runs the daemon until a signal stops it.
pub async fn run(config_path: Option<&Path>, secrets: Secrets) -> Exit {
    let config = match config::load_config(config_path) {
        Ok(c) => c,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    super::init_tracing(&config.log_level.as_str().to_lowercase(), config.log_format);
    super::warn_ignored_proxy_variables();
    match serve(config, config_path.map(Path::to_owned), secrets).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!("{e:#}");
            Exit::Config
        }
    }
}

/// The loaded state a reload changes.
struct Live {
    config: Config,
    config_path: Option<PathBuf>,
    secrets: Secrets,
    catalog: Catalog,
    metrics: Metrics,
    view: View,
    policies: Policies,
    scheduler: mpsc::UnboundedSender<Request>,
    incidents: mpsc::UnboundedSender<Command>,
    /// The checks this replica runs, and exports series for.
    share: Share,
    /// Whether the incident engine runs here: on SQLite always, with
    /// replicas on the leader.
    leading: bool,
    /// Shares its clients with the scheduler's: a reload builds the client
    /// of a new connection option set here, before the check first runs.
    probe: crate::probe::Probe,
}

async fn serve(
    config: Config,
    config_path: Option<PathBuf>,
    secrets: Secrets,
) -> anyhow::Result<()> {
    let metrics = Metrics::with_settings(&config.metrics);
    let view = View::default();
    view.started();
    if config.defaults.grants.is_open() {
        tracing::warn!("{}", config::grant::NO_GRANTS);
    }
    let mut catalog = Catalog::default();
    let env_secrets = secrets.clone();
    let env = secret_env(&env_secrets);
    let diff = catalog
        .scan(&config.checks_dir, &config.defaults, &env, false)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the checks directory {}: {e}",
                config.checks_dir.display()
            )
        })?;
    let checks: Vec<Arc<Check>> = catalog.checks().cloned().collect();
    let probe = super::once::probe(&config, secrets.clone())?;
    for e in probe.prepare(checks.iter().map(|c| &**c)) {
        tracing::error!("{e}; its checks fail with reason `setup`");
    }
    let open_files = crate::server::raise_open_files();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let (scheduler_tx, scheduler_rx) = mpsc::unbounded_channel();
    let backend = super::incidents::backend(&config, &secrets)?;
    // Before the store opens: with replicas its first feed, with every
    // check's latest run, goes to the engine by each check's policy.
    let policies = Policies::default();
    policies
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(checks.iter().map(|c| (c.name.clone(), policy(c, &config))));
    let incidents = Incidents::start(
        &config,
        &backend,
        !catalog.has_errors(),
        &policies,
        &metrics,
        &view,
        scheduler_tx.clone(),
    )
    .await?;
    let cluster = incidents.store().cluster();
    let alone = Share::default().at(&config.location);
    let (share_tx, share_rx) = tokio::sync::watch::channel(alone.clone());
    let mut live = Live {
        config,
        config_path,
        secrets,
        catalog,
        metrics: metrics.clone(),
        view: view.clone(),
        policies,
        scheduler: scheduler_tx.clone(),
        incidents: incidents.commands.clone(),
        share: alone,
        leading: cluster.is_none(),
        probe: probe.clone(),
    };
    if let Some(cluster) = &cluster {
        let now = cluster.borrow().clone();
        live.reshare(&now, &share_tx);
    }
    live.apply(&diff, false);
    live.report();
    tracing::info!(checks = checks.len(), listen = %live.config.listen, store = %backend, "scarecrow running");

    let shutdown = CancellationToken::new();
    let actions = Arc::new(DaemonActions {
        incidents: incidents.commands.clone(),
        scheduler: scheduler_tx,
        cluster: cluster.clone().map(|c| (incidents.store().clone(), c)),
    });
    let state = crate::server::ServerState::from_config(
        &live.config,
        &live.secrets,
        Some(backend),
        metrics.clone(),
        view.clone(),
        actions,
    )?;
    if state.exposed && state.api_token.is_none() {
        tracing::warn!(listen = %live.config.listen, "the API is off: this server listens beyond loopback and config.toml sets no api_token (set api_token = \"${{secret:SCARECROW_API_TOKEN}}\" or a ${{file:…}})");
    }
    let limits = crate::server::Limits {
        idle_timeout: live.config.server.idle_timeout,
        max_connections: live
            .config
            .server
            .max_connections
            .unwrap_or_else(|| crate::server::connection_cap(open_files)),
        grace: live.config.shutdown_grace,
    };
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::router(state),
        limits,
        shutdown.clone(),
    ));
    let heartbeat = match &live.config.heartbeat {
        Some((url, every)) => Some(super::heartbeat::Heartbeat::new(url.clone(), *every)?),
        None => None,
    };
    let observer = Arc::new(Telemetry {
        metrics,
        view,
        policies: live.policies.clone(),
        incidents: cluster.is_none().then(|| incidents.commands.clone()),
        runs: incidents.store().clone(),
        heartbeat,
        location: live.config.location.as_str().into(),
        alone: incidents.alone(),
    });
    let scheduler = Scheduler::new(
        probe,
        observer,
        live.config.concurrency,
        live.config.shutdown_grace,
    )
    .shared(share_rx);
    let scheduling = tokio::spawn(scheduler.run(checks, scheduler_rx, shutdown.clone()));
    tokio::spawn(prune_screenshots(
        live.config.browser.screenshots.clone(),
        live.config.retention,
    ));

    let (reload_tx, mut reloads) = mpsc::unbounded_channel();
    let _watch = watch::watch(&live.config.checks_dir, DEBOUNCE, reload_tx.clone())
        .map_err(|e| {
            tracing::warn!(
                "not watching {} for changes (reload with SIGHUP): {e}",
                live.config.checks_dir.display()
            )
        })
        .ok();
    watch::on_sighup(reload_tx)?;
    let stop = wait_for_signal();
    tokio::pin!(stop);
    // Another daemon took the store over: this one stops rather than
    // declare from memory what the other one declares too.
    let lost = incidents.store().lost();
    tokio::pin!(lost);
    let mut taken_over = None;
    let mut members = cluster.clone();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(Ok(())) = async { Some(members.as_mut()?.changed().await) } => {
                if let Some(cluster) = &mut members {
                    let now = cluster.borrow_and_update().clone();
                    live.reshare(&now, &share_tx);
                }
            }
            _ = second.tick(), if cluster.is_some() => {
                // The leader's engine sets it as it writes; every replica
                // shows its own writer's health.
                live.metrics.store_up(incidents.store().is_healthy());
            }
            why = &mut lost => {
                tracing::error!("{why}; stopping");
                taken_over = Some(why);
                break;
            }
            Some(trigger) = reloads.recv() => live.reload(trigger),
        }
    }
    tracing::info!(grace = ?live.config.shutdown_grace, "shutting down");
    shutdown.cancel();
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal; exiting now");
        std::process::exit(130);
    });
    // The scheduler owns the last senders of run results: once it has
    // drained, the engine sees every result, then delivery and the store finish.
    let _ = scheduling.await;
    // The server holds a handle to the engine; it lets go within the grace
    // period, whatever its clients do.
    if let Ok(Err(e)) = server.await {
        tracing::warn!("server: {e}");
    }
    live.probe.close().await;
    drop(live);
    incidents.shutdown().await;
    tracing::info!("stopped");
    match taken_over {
        Some(why) => Err(anyhow::anyhow!("stopped: {why}")),
        None => Ok(()),
    }
}

impl Live {
    /// Takes the share `cluster` gives this replica: the scheduler runs
    /// only its checks from their next due time, and `/metrics` has
    /// series only for them (a check that moved away is the new owner's to
    /// export).
    fn reshare(&mut self, cluster: &Cluster, tx: &tokio::sync::watch::Sender<Share>) {
        self.metrics
            .cluster(cluster.leading, &cluster.per_location());
        let share = Share::new(cluster.me.clone(), cluster.peers()).at(&self.config.location);
        if share == self.share {
            return;
        }
        let (mut gained, mut lost) = (0, 0);
        for check in self.catalog.checks() {
            match (self.share.runs(check), share.runs(check)) {
                (false, true) => {
                    self.metrics.add_check(check);
                    let view = self.view.read();
                    if let Some(v) = view.checks.get(&check.name)
                        && let Some(last) = &v.last_run
                    {
                        let run = (last.outcome.is_success(), last.started_at);
                        self.metrics.carry_over(&check.name, run, v.last_success_at);
                    }
                    gained += 1;
                }
                (true, false) => {
                    self.metrics.remove_check(&check.name);
                    lost += 1;
                }
                _ => {}
            }
        }
        tracing::info!(
            replicas = share.peers(),
            gained,
            lost,
            "the replicas share the checks anew"
        );
        self.share = share.clone();
        let _ = tx.send(share);
    }

    /// Rescans the checks directory (after re-reading `config.toml` on
    /// SIGHUP) and applies the difference.
    fn reload(&mut self, trigger: Trigger) {
        let reread = match trigger {
            Trigger::Signal => self.reload_config(),
            Trigger::Files => None,
        };
        let force = reread == Some(true);
        let secrets = self.secrets.clone();
        let env = secret_env(&secrets);
        match self
            .catalog
            .scan(&self.config.checks_dir, &self.config.defaults, &env, force)
        {
            Ok(diff) => {
                if !diff.is_empty() {
                    tracing::info!(
                        added = diff.added.len(),
                        changed = diff.changed.len(),
                        removed = diff.removed.len(),
                        "checks reloaded"
                    );
                }
                if !diff.is_empty() {
                    for e in self.probe.prepare(self.catalog.checks().map(|c| &**c)) {
                        tracing::error!("{e}");
                    }
                }
                self.apply(&diff, true);
            }
            Err(e) => tracing::error!(
                "cannot read the checks directory: {e}; keeping the checks as they are"
            ),
        }
        // Roles and maintenance windows live in config.toml, not in the
        // checks: a check whose file did not change needs a new policy too.
        if reread.is_some() {
            self.rebuild_policies();
        }
        self.report();
    }

    /// Re-reads `config.toml`; applies what is safe to change while running.
    /// Returns whether check defaults changed (every file is then re-read),
    /// or `None` when the file has errors and nothing changed.
    fn reload_config(&mut self) -> Option<bool> {
        let new = match config::load_config(self.config_path.as_deref()) {
            Ok(c) => c,
            Err(diags) => {
                log_diagnostics(&diags);
                tracing::error!("config.toml has errors; keeping the running configuration");
                return None;
            }
        };
        let old = &self.config;
        for (what, changed) in [
            ("listen", old.listen != new.listen),
            ("store path", old.store_path != new.store_path),
            ("[store] url", old.postgres != new.postgres),
            ("checks_dir", old.checks_dir != new.checks_dir),
            ("concurrency", old.concurrency != new.concurrency),
            ("sinks", old.sinks != new.sinks),
            ("heartbeat", old.heartbeat != new.heartbeat),
            ("log_format", old.log_format != new.log_format),
            ("log_level", old.log_level != new.log_level),
            ("api_token", old.api_token != new.api_token),
            ("metrics_auth", old.metrics_auth != new.metrics_auth),
            ("[metrics]", old.metrics != new.metrics),
            ("[browser]", old.browser != new.browser),
        ] {
            if changed {
                tracing::warn!("config.toml: a change of {what} takes effect after a restart");
            }
        }
        let force = old.defaults != new.defaults
            || old.roles != new.roles
            || old.instance_group != new.instance_group;
        let keep = (
            old.listen,
            old.store_path.clone(),
            old.checks_dir.clone(),
            old.concurrency,
            old.sinks.clone(),
            old.postgres.clone(),
        );
        self.config = Config {
            listen: keep.0,
            store_path: keep.1,
            checks_dir: keep.2,
            concurrency: keep.3,
            sinks: keep.4,
            postgres: keep.5,
            ..new
        };
        Some(force)
    }

    /// Every check's incident policy from the current `config.toml`.
    fn rebuild_policies(&self) {
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for check in self.catalog.checks() {
            policies.insert(check.name.clone(), policy(check, &self.config));
        }
    }

    /// Starts added checks, swaps changed ones, stops removed ones; checks
    /// the diff does not name are not touched.
    fn apply(&mut self, diff: &Diff, running: bool) {
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for check in diff.added.iter().chain(&diff.changed) {
            let quorum = check.incidents.quorum;
            if self.config.postgres.is_none() && check.critical && quorum.needed(1) > 1 {
                tracing::warn!(check = %check.name, %quorum, "this check declares only when {quorum} see it failing, and a daemon on a SQLite store is one location: it never declares (replicas in several locations share a PostgreSQL store)");
            }
            // A changed check may name other locations now.
            match self.share.runs(check) {
                true => self.metrics.add_check(check),
                false => self.metrics.remove_check(&check.name),
            }
            self.view.upsert_check(check);
            policies.insert(check.name.clone(), policy(check, &self.config));
            if running {
                let _ = self.scheduler.send(Request::Upsert(check.clone()));
            }
        }
        for name in &diff.removed {
            let _ = self.scheduler.send(Request::Remove(name.clone()));
            self.metrics.remove_check(name);
            self.view.remove_check(name);
            policies.remove(name);
            // A replica that does not lead leaves it to the leader, which
            // reads the same files (and, should this one lead later, finds
            // the check gone from the store's states then).
            if self.leading {
                let _ = self.incidents.send(Command::Removed {
                    check: name.clone(),
                });
            }
        }
    }

    /// Logs the files' problems and records how the load went.
    fn report(&self) {
        let diags: Vec<Diagnostic> = self.catalog.diagnostics().cloned().collect();
        let check_of = |file: &Path| {
            self.catalog
                .checks()
                .find(|c| c.source == file)
                .map(|c| c.name.as_str())
        };
        log_diagnostics(&config::fold_unset_secrets(diags, check_of, |_| true));
        let ok = !self.catalog.has_errors();
        self.metrics.reloaded(ok);
        let files = self
            .catalog
            .files()
            .into_iter()
            .map(|f| FileView {
                path: f.path.display().to_string(),
                check: f.check,
                errors: f
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| d.to_string())
                    .collect(),
            })
            .collect();
        let now = chrono::Utc::now();
        let prior = self.view.read().config.last_success_at;
        self.view.config_loaded(ConfigView {
            loaded_at: Some(now),
            last_success_at: if ok { Some(now) } else { prior },
            successful: ok,
            files,
        });
    }
}

/// `${env:…}` lookups at load, where secrets with a fallback count as set
/// (so the demo loads without warnings).
fn secret_env(secrets: &Secrets) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| config::process_env(name).or_else(|| secrets.get(name).ok())
}

/// SIGTERM (container stop) or SIGINT (Ctrl-C). The SIGTERM handler is
/// installed by the call, not at the first poll: a SIGTERM sent from then on
/// ends the process cleanly instead of killing it (exit 143).
pub(super) fn wait_for_signal() -> impl Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let term = async {
            match term {
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
}

fn log_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        let (file, line, col) = (d.file.display(), d.line, d.col);
        let shown = d.to_string();
        if d.is_error() {
            tracing::error!(%file, line, col, "{}", shown.trim_end());
        } else {
            tracing::warn!(%file, line, col, "{}", shown.trim_end());
        }
    }
}

/// Removes screenshots older than the store's retention, hourly: the runs
/// and incidents that name them are gone by then too.
async fn prune_screenshots(folder: PathBuf, max_age: std::time::Duration) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        let folder = folder.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                return;
            };
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > max_age));
                let png = entry.path().extension().is_some_and(|e| e == "png");
                if old && png {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        });
        let _ = pruned.await;
    }
}
