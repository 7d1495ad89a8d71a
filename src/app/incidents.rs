//! Wiring of the incident machinery: the store, the engine, the sinks and
//! the delivery worker, and the telemetry each of them reports.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::actions::Answer;
use super::alone::Alone;
use super::telemetry::Policies;
use crate::check::Check;
use crate::config::{Config, StoreDown};
use crate::incident::Streak;
use crate::incident::engine::{Command, Engine, EngineObserver, Policy};
use crate::incident::outbox::{DeliveryObserver, Worker};
use crate::incident::store::{Claimer, OutboxItem, Store as _};
use crate::incident::{Event, EventKind};
use crate::live::View;
use crate::metrics::Metrics;
use crate::secret::Secrets;
use crate::sink::Sink;
use crate::store::cluster::Feed;
use crate::store::postgres::{Connect, SslMode};
use crate::store::{Backend, Retention, Store};

/// How long the delivery worker's claim on a notification lasts unrenewed
/// (it renews every third of it): after a crash, the next daemon takes the
/// notifications over within this long.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(15);

/// The running incident machinery.
pub struct Incidents {
    pub commands: mpsc::UnboundedSender<Command>,
    /// The engine and the delivery worker, once they run, until they stop.
    engine: JoinHandle<()>,
    /// Stops a replica waiting to lead.
    resign: CancellationToken,
    store: Arc<Store>,
    /// With replicas and `store_down = "alone"`: the engine of this
    /// replica's own runs while the store is out of reach.
    alone: Option<Arc<Alone>>,
}

/// What the engine starts from, on the leader.
struct Lead {
    config: Config,
    store: Arc<Store>,
    sinks: Vec<Arc<Sink>>,
    /// Whether every check file loaded at start, so a check with no
    /// policy was really removed rather than broken.
    complete: bool,
    /// A policy per loaded check, kept current by reloads: the checks a
    /// state in the store may belong to.
    policies: Policies,
    metrics: Metrics,
    view: View,
    scheduler: mpsc::UnboundedSender<crate::schedule::Request>,
}

impl Incidents {
    /// Opens the store and starts the engine and the delivery worker:
    /// at once on SQLite; on PostgreSQL, once this replica leads (the
    /// engine then reads every member's runs from the store, see
    /// [`follow`]).
    pub async fn start(
        config: &Config,
        backend: &Backend,
        complete: bool,
        policies: &Policies,
        metrics: &Metrics,
        view: &View,
        scheduler: mpsc::UnboundedSender<crate::schedule::Request>,
    ) -> anyhow::Result<Incidents> {
        let store = Arc::new(open_store(backend, config)?);
        let lead = Lead {
            config: config.clone(),
            store: store.clone(),
            sinks: build_sinks(config)?,
            complete,
            policies: policies.clone(),
            metrics: metrics.clone(),
            view: view.clone(),
            scheduler,
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let resign = CancellationToken::new();
        let alone = match (store.cluster(), config.store_down) {
            (Some(_), StoreDown::Alone) => {
                let telemetry = Arc::new(IncidentTelemetry {
                    metrics: metrics.clone(),
                    view: view.clone(),
                });
                let sinks = build_sinks(config)?;
                let claimer = Claimer::new(CLAIM_LEASE);
                Some(Alone::start(
                    config,
                    store.clone(),
                    sinks,
                    telemetry,
                    claimer,
                ))
            }
            _ => None,
        };
        let engine = match (store.cluster(), store.feed()) {
            (Some(cluster), Some(feed)) => {
                tokio::spawn(follow(
                    feed,
                    commands.downgrade(),
                    (store.clone(), alone.clone()),
                    policies.clone(),
                    (view.clone(), metrics.clone()),
                ));
                let resigned = resign.clone();
                let weak = commands.downgrade();
                tokio::spawn(async move {
                    let mut cluster = cluster;
                    tokio::select! {
                        () = resigned.cancelled() => return,
                        led = cluster.wait_for(|c| c.leading) => if led.is_err() { return },
                    }
                    let snapshot = loop {
                        match lead.store.load().await {
                            Ok(s) => break s,
                            Err(e) => tracing::warn!("cannot read the store: {e}; trying again"),
                        }
                        tokio::select! {
                            () = resigned.cancelled() => return,
                            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                        }
                    };
                    lead.run(snapshot, weak, rx).await;
                })
            }
            _ => {
                let snapshot = store.load().await.context("cannot read the store")?;
                tokio::spawn(lead.run(snapshot, commands.downgrade(), rx))
            }
        };
        Ok(Incidents {
            commands,
            engine,
            resign,
            store,
            alone,
        })
    }

    /// The store, for the run history: runs go there by their own path.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where this replica's own runs go while the store is out of reach
    /// (`store_down = "alone"`).
    pub fn alone(&self) -> Option<Arc<Alone>> {
        self.alone.clone()
    }

    /// After the last run: the engine finishes what it was given, the worker
    /// finishes the delivery in flight, the store's writer flushes.
    pub async fn shutdown(self) {
        drop(self.alone);
        drop(self.commands);
        self.resign.cancel();
        let _ = self.engine.await;
        self.store.close().await;
    }
}

impl Lead {
    /// Resumes from `snapshot` and runs the engine until every sender of
    /// `rx` is gone, then lets the worker finish the delivery in flight.
    async fn run(
        self,
        snapshot: crate::incident::store::Snapshot,
        commands: mpsc::WeakUnboundedSender<Command>,
        rx: mpsc::UnboundedReceiver<Command>,
    ) {
        let Lead {
            config,
            store,
            sinks,
            complete,
            policies,
            metrics,
            view,
            scheduler,
        } = self;
        // Sinks that re-send open alerts (Alertmanager) pick up where they were.
        let open: Vec<crate::incident::Incident> = snapshot
            .states
            .values()
            .filter_map(|s| s.open.as_deref().cloned())
            .collect();
        for sink in &sinks {
            sink.resume(&open);
        }
        let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
        let telemetry = Arc::new(IncidentTelemetry {
            metrics: metrics.clone(),
            view: view.clone(),
        });
        for (check, state) in &snapshot.states {
            if let Some(open) = &state.open {
                metrics.incident_open(check, true);
                view.open_incident(check, open);
            }
        }
        // As the checks are when this replica came to lead: a check
        // removed while another led is gone too.
        let gone: Vec<String> = {
            let policies = policies.read().unwrap_or_else(PoisonError::into_inner);
            snapshot
                .states
                .keys()
                // The outage incident is no check's: it is never `check_removed`.
                .filter(|c| {
                    !policies.contains_key(*c) && c.as_str() != crate::incident::outage::OUTAGE
                })
                .cloned()
                .collect()
        };
        let claimer = Claimer::new(CLAIM_LEASE);
        let engine = Engine::new(
            store.clone(),
            snapshot.states,
            sinks.clone(),
            outbox_tx,
            claimer.clone(),
            telemetry.clone(),
            config.instance_group.clone(),
        )
        .linked(config.external_url.clone());
        // The engine asks for runs of parents by name; their results come
        // back as every run does.
        let (ask, mut asked) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(name) = asked.recv().await {
                let (reply, _) = tokio::sync::oneshot::channel();
                if scheduler
                    .send(crate::schedule::Request::RunNow { name, reply })
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut engine = engine.ask_runs(ask);
        if store.cluster().is_some() {
            engine = engine.only_committed().by_location();
        }
        if let Some(rule) = config.outage {
            engine = engine.outage(rule, config.roles.global.clone());
        }
        if let Some(commands) = commands.upgrade() {
            if complete {
                for check in gone {
                    let _ = commands.send(Command::Removed { check });
                }
            } else if !gone.is_empty() {
                tracing::warn!(checks = ?gone, "some check files did not load; their incidents stay as they are");
            }
        }
        let stop_worker = CancellationToken::new();
        let worker = Worker::new(
            store.clone(),
            sinks,
            telemetry,
            config.notify_retry_for,
            claimer,
        );
        metrics.incident_budget(config.budget_90d);
        let budget = tokio::spawn(count_incidents(commands, stop_worker.clone()));
        let worker = tokio::spawn(worker.run(outbox_rx, stop_worker.clone()));
        engine.run(rx).await;
        stop_worker.cancel();
        let _ = worker.await;
        let _ = budget.await;
    }
}

/// Every second, what the members wrote (PostgreSQL): each check's latest
/// run goes to the live state (so any replica's status page and API show
/// every check) and, on the leader, with the store's counters, to the
/// engine; a replica that does not lead takes the open incidents from the
/// store too. The leader carries out the resolves other replicas handed it.
async fn follow(
    mut feed: mpsc::UnboundedReceiver<Feed>,
    engine: mpsc::WeakUnboundedSender<Command>,
    (store, alone): (Arc<Store>, Option<Arc<Alone>>),
    policies: Policies,
    (view, metrics): (View, Metrics),
) {
    let mut shown: HashSet<String> = HashSet::new();
    while let Some(feed) = feed.recv().await {
        let leading = feed.leading;
        if let Some(alone) = &alone {
            alone.store_open(&feed.open);
        }
        if !leading {
            view.sync_open(&feed.open);
            // `scarecrow_incident_open` of the checks this replica exports.
            let open: HashSet<String> = feed.open.iter().map(|i| i.feature.check.clone()).collect();
            for check in shown.difference(&open) {
                metrics.incident_open(check, false);
            }
            for check in open.difference(&shown) {
                metrics.incident_open(check, true);
            }
            shown = open;
        }
        for ask in feed.asks {
            if let Some(engine) = engine.upgrade() {
                tokio::spawn(carry_out(ask, engine, store.clone()));
            }
        }
        // A check's runs at each location together, its newest last: the
        // engine judges the check once, on all of them.
        let mut latest = feed.latest;
        latest.sort_by(|a, b| {
            let (a, b) = (&a.run.result, &b.run.result);
            (&a.check, a.started_at).cmp(&(&b.check, b.started_at))
        });
        let mut runs = latest.into_iter().peekable();
        while let Some(latest) = runs.next() {
            let more = runs
                .peek()
                .is_some_and(|next| next.run.result.check == latest.run.result.check);
            let streak = Streak {
                failures: latest.failures,
                passes: latest.passes,
            };
            view.run_seen(&latest.run.result);
            view.location_seen(&latest.run, streak);
            if !leading {
                continue;
            }
            let policy = policies
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&latest.run.result.check)
                .cloned();
            let (Some(policy), Some(engine)) = (policy, engine.upgrade()) else {
                continue;
            };
            let _ = engine.send(match more {
                true => Command::Seen {
                    run: latest.run,
                    policy,
                    streak,
                },
                false => Command::Run {
                    run: latest.run,
                    policy,
                    streak: Some(streak),
                },
            });
        }
    }
}

/// The leader resolves what another replica handed it, and answers
/// through the store.
async fn carry_out(
    ask: crate::store::cluster::Ask,
    engine: mpsc::UnboundedSender<Command>,
    store: Arc<Store>,
) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let sent = engine.send(Command::Resolve {
        incident: ask.incident,
        note: ask.note,
        reply,
    });
    // Held no longer than the send: the engine stops once its senders go.
    drop(engine);
    let answer = match (sent, answer.await) {
        (Ok(()), Ok(Ok(event))) => Answer::Resolved(Box::new(event)),
        (Ok(()), Ok(Err(message))) => Answer::Refused(message),
        _ => return,
    };
    let Ok(text) = serde_json::to_string(&answer) else {
        return;
    };
    if let Err(e) = store.answer(ask.id, text).await {
        tracing::warn!("answering a resolve another replica handed over: {e}");
    }
}

/// Where `config` keeps its store; a PostgreSQL store's password and CA
/// are read now, from `secrets` and the file `ca` names.
pub fn backend(config: &Config, secrets: &Secrets) -> anyhow::Result<Backend> {
    let Some(pg) = &config.postgres else {
        return Ok(Backend::Sqlite(config.store_path.clone()));
    };
    let password = pg
        .password
        .as_ref()
        .map(|t| t.render(secrets).map(|p| p.into_owned()))
        .transpose()
        .context("[store] password")?;
    let ca = pg
        .ca
        .as_ref()
        .map(|path| {
            crate::fsread::read(path, MAX_CA)
                .with_context(|| format!("[store] ca {}", path.display()))
        })
        .transpose()?;
    let ssl =
        SslMode::parse(&pg.sslmode).with_context(|| format!("[store] sslmode {:?}", pg.sslmode))?;
    let connect = Connect::new(&pg.url, password, ssl, ca)
        .map_err(anyhow::Error::msg)
        .context("[store] url")?;
    Ok(Backend::Postgres(connect))
}

/// A CA bundle larger than this is not one.
const MAX_CA: u64 = 1 << 20;

/// How much run history `config` keeps.
pub fn retention(config: &Config) -> Retention {
    Retention {
        runs_per_check: config.history,
        max_age: config.retention,
    }
}

/// Opens the store at `backend` for writing, keeping history as `config`
/// says.
pub fn open_store(backend: &Backend, config: &Config) -> anyhow::Result<Store> {
    Store::open_at(backend, retention(config), &config.location)
        .with_context(|| format!("cannot open the store at {backend}"))
}

/// Has the engine count `scarecrow_incidents_90d` from the store at start,
/// then every few minutes, as incidents age out of the window (each
/// declaration counts at once). Holds no sender: the engine stops when the
/// daemon's are gone.
async fn count_incidents(engine: mpsc::WeakUnboundedSender<Command>, stop: CancellationToken) {
    loop {
        match engine.upgrade() {
            Some(engine) if engine.send(Command::Count).is_ok() => {}
            _ => return,
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(300)) => {}
        }
    }
}

/// Every sink of `config`, its secrets read now.
pub fn build_sinks(config: &Config) -> anyhow::Result<Vec<Arc<Sink>>> {
    config
        .sinks
        .iter()
        .map(|spec| {
            crate::sink::build(spec)
                .map(Arc::new)
                .map_err(|e| anyhow::anyhow!("sink `{}`: {e}", spec.name))
        })
        .collect()
}

/// How incidents treat a check, with the roles of its owner.
pub fn policy(check: &Arc<Check>, config: &Config) -> Arc<Policy> {
    let roles = config.roles.for_owner(check.owner.as_deref());
    let maintenance = config
        .maintenance
        .iter()
        .filter(|w| w.covers(&check.name, &check.labels))
        .chain(&check.incidents.maintenance)
        .cloned()
        .collect();
    Arc::new(Policy {
        check: Arc::clone(check),
        maintenance,
        roles,
    })
}

struct IncidentTelemetry {
    metrics: Metrics,
    view: View,
}

impl EngineObserver for IncidentTelemetry {
    fn event(&self, event: &Event) {
        self.view.incident_event(event);
        let i = &event.incident;
        let check = &i.feature.check;
        match event.kind {
            EventKind::Declared => {
                self.metrics.incident_declared(check);
                tracing::debug!(incident = %i.id, check = %check, key = %i.key, "incident declared: {}", i.title);
            }
            EventKind::Resolved => {
                let secs = i
                    .duration()
                    .map_or(0.0, |d| d.num_milliseconds() as f64 / 1000.0);
                self.metrics.incident_resolved(check, secs);
                tracing::debug!(incident = %i.id, check = %check, resolution = i.resolution.as_deref().unwrap_or(""), duration_seconds = secs, "incident resolved");
            }
            EventKind::Updated | EventKind::Reminder => {
                tracing::debug!(incident = %i.id, check = %check, kind = event.kind.as_str(), "incident still open: {}", i.title);
            }
        }
    }

    fn store_up(&self, up: bool) {
        self.metrics.store_up(up);
        self.view.store_up(up);
    }

    fn incident_counts(&self, counts: &std::collections::BTreeMap<String, u64>) {
        self.metrics.incidents_90d(counts);
    }

    fn folded(&self, reason: &'static str) {
        self.metrics.incident_folded(reason);
    }
}

impl DeliveryObserver for IncidentTelemetry {
    fn attempted(&self, item: &OutboxItem, result: &'static str) {
        self.metrics
            .notification(&item.sink, item.event.kind.as_str(), result);
    }

    fn throttled(&self, item: &OutboxItem) {
        self.metrics.notification_throttled(&item.sink);
    }

    fn backlog(&self, pending: usize, oldest: Option<DateTime<Utc>>) {
        self.metrics.outbox(pending, oldest);
    }
}
