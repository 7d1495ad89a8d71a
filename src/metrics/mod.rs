//! The daemon's Prometheus metrics: one value that owns its registry and every
//! handle, passed to whoever records or renders. No globals.
//!
//! A check has few series by default, each costing the Prometheus that
//! scrapes it; `[metrics]` in `config.toml` opts into more (a duration
//! histogram, per-phase and per-step gauges). Every series of a check exists
//! from the moment the check is loaded (at zero), so `increase()` sees its
//! first failed run, except the failure counters by reason, which show from
//! each reason's first failure; all disappear when the check is removed, so
//! a deleted check leaves nothing stale behind.
//!
//! The per-check series are written by hand rather than through the
//! registry: with 10,000 checks (340,000 samples) `Registry::gather` and
//! `TextEncoder` take about half a second, allocating and sorting a message
//! per sample, while writing straight from the handles of the checks, kept in
//! name order, takes a fraction of that. The process-wide metrics go through
//! the registry and `TextEncoder`.

mod browser;
mod certs;
mod durations;
mod out;
mod series;
mod steps;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use prometheus::core::{Atomic, AtomicF64, Collector};
use prometheus::{Histogram, HistogramOpts, IntGauge, Opts, Registry, TextEncoder};

use crate::check::{Check, FastHash, Outcome, Phases, Reason, Redacted, RunResult, StepResult};
use crate::config::MetricsSettings;
use series::{CheckSeries, Loaded, Shape};

/// The `Content-Type` of [`Metrics::render`]'s output (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of the scheduler's lateness: 100 µs to 5 s, fine around the
/// 5 ms that matters for a p99.
const LATENESS_BUCKETS: [f64; 11] = [
    0.0001, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
];
/// The size of the pieces `/metrics` is sent in.
pub const CHUNK: usize = 64 * 1024;
/// The daemon's metrics. Cheap to clone; clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// The process-wide metrics.
    registry: Registry,
    lateness: Histogram,
    loaded: IntGauge,
    incidents: IncidentMetrics,
    daemon: DaemonMetrics,
    /// Every loaded check, by name: a hash map because every finished run
    /// looks its check up; rendering sorts them by name.
    checks: RwLock<HashMap<String, Loaded, FastHash>>,
    /// What incidents tell of each check, kept apart from its series: the
    /// store tells at start-up, before the checks' series exist, and a
    /// check's series are made anew when it is added again.
    incident_facts: Mutex<HashMap<String, IncidentFacts, FastHash>>,
    /// The per-check series beyond the default.
    shape: Shape,
}

impl Metrics {
    /// A fresh registry with the process-wide metrics, no checks loaded,
    /// and the default series per check.
    pub fn new() -> Metrics {
        Metrics::with_settings(&MetricsSettings::default())
    }

    /// A fresh registry whose checks have the series `settings` ask for.
    pub fn with_settings(settings: &MetricsSettings) -> Metrics {
        let registry = Registry::new();
        let lateness = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "scarecrow_scheduler_lateness_seconds",
                    "How long after its due time the scheduler started a run.",
                )
                .buckets(LATENESS_BUCKETS.to_vec()),
            ),
        );
        let loaded = register(
            &registry,
            IntGauge::new(
                "scarecrow_checks_loaded",
                "Number of checks currently loaded.",
            ),
        );
        let build_info = register(
            &registry,
            IntGauge::with_opts(
                Opts::new(
                    "scarecrow_build_info",
                    "The running scarecrow version; always 1.",
                )
                .const_label("version", env!("CARGO_PKG_VERSION")),
            ),
        );
        build_info.set(1);
        let incidents = IncidentMetrics::register(&registry);
        let daemon = DaemonMetrics::register(&registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                lateness,
                loaded,
                incidents,
                daemon,
                checks: RwLock::default(),
                incident_facts: Mutex::default(),
                shape: Shape::new(settings),
            }),
        }
    }

    /// Creates every series of `check` at zero, and its info series. For a
    /// check already loaded (a reload that changed it), only the info series is
    /// replaced: its counters keep counting.
    pub fn add_check(&self, check: &Check) {
        let info: Arc<str> = text::info_labels(check).into();
        // Taken before the checks, as every incident update does.
        let facts = self.incident_facts();
        let mut checks = self.checks_mut();
        match checks.get_mut(&check.name) {
            Some(loaded) => {
                loaded.info = info;
                if self.inner.shape.per_step {
                    loaded.series.steps.set_steps(check);
                }
                if self.inner.shape.browser {
                    loaded.series.browser.set_steps(check);
                }
            }
            None => {
                let label = text::check_label(&check.name);
                let series = Arc::new(CheckSeries::new(label, &self.inner.shape));
                if self.inner.shape.per_step {
                    series.steps.set_steps(check);
                }
                if self.inner.shape.browser {
                    series.browser.set_steps(check);
                }
                if let Some(f) = facts.get(&check.name) {
                    f.show(&series);
                }
                checks.insert(check.name.clone(), Loaded { series, info });
            }
        }
        self.inner.loaded.set(gauge_len(checks.len()));
    }

    /// Removes every series of the check named `name`; a later run of it is
    /// not recorded.
    pub fn remove_check(&self, name: &str) {
        let mut checks = self.checks_mut();
        checks.remove(name);
        self.inner.loaded.set(gauge_len(checks.len()));
    }

    /// A check this replica took over from another: its up and last-run
    /// gauges start from its latest run as the store has it, not from
    /// zero, so an alert on `scarecrow_check_up == 0` does not fire for a
    /// check that merely moved.
    pub fn carry_over(
        &self,
        check: &str,
        (passed, started_at): (bool, chrono::DateTime<chrono::Utc>),
        last_success: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let Some(s) = self.series(check) else {
            return;
        };
        let seconds = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros() as f64 / 1e6;
        s.up.set(if passed { 1.0 } else { 0.0 });
        s.last_run.set(seconds(started_at));
        if let Some(at) = last_success {
            s.last_success.set(seconds(at));
        }
    }

    /// Records one finished run.
    pub fn observe_run(&self, run: &Redacted<RunResult>) {
        let Some(s) = self.series(&run.check) else {
            tracing::debug!(check = %run.check, "run of a check no longer loaded: not recorded");
            return;
        };
        let shape = &self.inner.shape;
        let started = run.started_at.timestamp_micros() as f64 / 1e6;
        s.last_run.set(started);
        s.duration
            .observe(&shape.bounds, run.duration.as_secs_f64());
        match &run.outcome {
            Outcome::Success => {
                s.up.set(1.0);
                s.runs[0].inc_by(1);
                s.last_success.set(started);
            }
            Outcome::Failure { reason, .. } => {
                s.up.set(0.0);
                s.runs[1].inc_by(1);
                if let Some(i) = Reason::ALL.iter().position(|r| r == reason) {
                    s.failures[i].inc_by(1);
                }
            }
        }
        if shape.phases {
            // A phase absent from the last run is set to 0 rather than left
            // at an older run's value: the gauges describe the last run only.
            let mut phases = Phases::default();
            for http in run.steps.iter().filter_map(StepResult::http) {
                phases.add(&http.phases);
            }
            let values = [phases.dns, phases.connect, phases.ttfb, phases.transfer];
            for (gauge, value) in s.phases.iter().zip(values) {
                gauge.set(value.map_or(0.0, |d| d.as_secs_f64()));
            }
        }
        s.cert_expiry.record(&run.steps);
        if shape.per_step {
            s.steps.record(&run.steps);
        }
        if shape.browser {
            s.browser.record(&run.steps);
        }
    }

    /// Records that a run of `check` was skipped: the previous one was still
    /// going when it was due.
    pub fn skipped_run(&self, check: &str) {
        if let Some(s) = self.series(check) {
            s.skipped.inc_by(1);
        }
    }

    /// Records how late the scheduler started a run.
    pub fn observe_lateness(&self, lateness: Duration) {
        self.inner.lateness.observe(lateness.as_secs_f64());
    }

    /// Marks whether `check` has an open incident (at start-up, from the
    /// store), whether or not its series exist yet.
    pub fn incident_open(&self, check: &str, open: bool) {
        self.update_incident(check, |f| f.open = open);
    }

    /// Incidents declared in the last 90 days, by check, as counted from
    /// the store; checks not named have none.
    pub fn incidents_90d(&self, counts: &BTreeMap<String, u64>) {
        let mut facts = self.incident_facts();
        for (check, f) in facts.iter_mut() {
            f.in_90d = counts.get(check).copied().unwrap_or(0);
        }
        for (check, n) in counts {
            facts.entry(check.clone()).or_default().in_90d = *n;
        }
        facts.retain(|_, f| f.open || f.in_90d > 0);
        let checks = self.checks();
        for (check, loaded) in checks.iter() {
            facts
                .get(check)
                .copied()
                .unwrap_or_default()
                .show(&loaded.series);
        }
    }

    /// The organisation's incident budget per 90 days.
    pub fn incident_budget(&self, n: u64) {
        self.inner
            .incidents
            .budget
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Whether a maintenance window covers `check` now.
    pub fn maintenance(&self, check: &str, active: bool) {
        if let Some(s) = self.series(check) {
            s.maintenance.set(if active { 1.0 } else { 0.0 });
        }
    }

    pub fn incident_declared(&self, check: &str) {
        self.update_incident(check, |f| {
            f.open = true;
            f.in_90d += 1;
        });
        if let Some(s) = self.series(check) {
            s.incidents_declared.inc_by(1);
        }
    }

    /// An incident ended after `seconds` (declared to resolved).
    pub fn incident_resolved(&self, check: &str, seconds: f64) {
        self.incident_open(check, false);
        self.inner.incidents.duration.observe(seconds);
    }

    /// One delivery attempt of one notification.
    pub fn notification(&self, sink: &str, event: &str, result: &str) {
        self.inner
            .incidents
            .notifications
            .with_label_values(&[sink, event, result])
            .inc();
    }

    /// A notification held back by its receiver's rate limit.
    /// A check joined another check's incident instead of declaring its own.
    pub fn incident_folded(&self, reason: &str) {
        self.inner
            .incidents
            .folded
            .with_label_values(&[reason])
            .inc();
    }

    pub fn notification_throttled(&self, sink: &str) {
        self.inner
            .incidents
            .throttled
            .with_label_values(&[sink])
            .inc();
    }

    /// Notifications not delivered yet, and when the oldest was queued: its
    /// age is taken at each scrape, not when the delivery worker last woke.
    pub fn outbox(&self, pending: usize, oldest: Option<chrono::DateTime<chrono::Utc>>) {
        let i = &self.inner.incidents;
        i.outbox_pending.set(gauge_len(pending));
        i.outbox_oldest_at
            .set(oldest.map_or(f64::NAN, |t| t.timestamp_micros() as f64 / 1e6));
    }

    /// Whether the last write to the store succeeded.
    pub fn store_up(&self, up: bool) {
        self.inner.incidents.store_up.set(i64::from(up));
    }

    /// Whether this replica leads, and the members alive per location.
    pub fn cluster(&self, leading: bool, members: &std::collections::BTreeMap<&str, usize>) {
        let i = &self.inner.incidents;
        i.leader.set(i64::from(leading));
        i.members.reset();
        for (location, n) in members {
            i.members
                .with_label_values(&[location])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The outcome of a reload of the check files (and config.toml).
    pub fn reloaded(&self, ok: bool) {
        let d = &self.inner.daemon;
        d.reload_ok.set(i64::from(ok));
        if ok {
            d.reload_success_at
                .set(chrono::Utc::now().timestamp_micros() as f64 / 1e6);
        } else {
            d.reload_errors.inc();
        }
    }

    /// The scheduler went round its loop.
    pub fn scheduler_ticked(&self) {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        self.inner.daemon.last_tick.set(now);
    }

    /// Every series in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.render_chunks(&mut |chunk| {
            text.push_str(&chunk);
            true
        });
        text
    }

    /// Renders in chunks of about [`CHUNK`] bytes, each handed to `emit`
    /// as it fills, which answers false to stop (the scraper hung up). Takes
    /// tens of milliseconds with thousands of checks: call it from a
    /// blocking thread.
    pub fn render_chunks(&self, emit: &mut dyn FnMut(String) -> bool) {
        let checks: Vec<Loaded> = {
            // A read lock: recording runs goes on meanwhile.
            let loaded = self.checks();
            let mut named: Vec<(&String, &Loaded)> = loaded.iter().collect();
            named.sort_unstable_by_key(|(name, _)| *name);
            named.into_iter().map(|(_, c)| c.clone()).collect()
        };
        let mut out = out::Out::new(CHUNK, emit);
        self.inner.incidents.age_outbox();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.inner.registry.gather(), &mut out) {
            // Only an empty family fails to encode, and gather() drops those.
            tracing::error!(error = %e, "cannot encode metrics");
        }
        if !checks.is_empty() {
            text::write_checks(&mut out, &checks, &self.inner.shape);
            let steps = checks
                .iter()
                .map(|c| (c.series.label.as_str(), &c.series.steps));
            steps::write(&mut out, steps);
            let timings = checks
                .iter()
                .map(|c| (c.series.label.as_str(), &c.series.browser));
            browser::write(&mut out, timings);
        }
        out.finish();
    }

    fn series(&self, check: &str) -> Option<Arc<CheckSeries>> {
        self.checks().get(check).map(|c| Arc::clone(&c.series))
    }

    /// The loaded checks. A panic while the lock was held leaves them whole
    /// (every update is a single insert or remove), so poisoning is ignored.
    fn checks(&self) -> RwLockReadGuard<'_, HashMap<String, Loaded, FastHash>> {
        self.inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes what incidents tell of `check`, and its series if loaded.
    fn update_incident(&self, check: &str, change: impl FnOnce(&mut IncidentFacts)) {
        let mut facts = self.incident_facts();
        // Incidents come and go rarely: the name is copied every time.
        let f = facts.entry(check.to_owned()).or_default();
        change(f);
        let f = *f;
        if !f.open && f.in_90d == 0 {
            facts.remove(check);
        }
        // Under the facts' lock, so a check being added meanwhile shows the
        // same.
        if let Some(s) = self.series(check) {
            f.show(&s);
        }
    }

    fn incident_facts(&self) -> MutexGuard<'_, HashMap<String, IncidentFacts, FastHash>> {
        self.inner
            .incident_facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn checks_mut(&self) -> RwLockWriteGuard<'_, HashMap<String, Loaded, FastHash>> {
        self.inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What incidents tell of one check.
#[derive(Debug, Clone, Copy, Default)]
struct IncidentFacts {
    open: bool,
    /// Declared in the last 90 days.
    in_90d: u64,
}

impl IncidentFacts {
    fn show(self, s: &CheckSeries) {
        s.incident_open.set(if self.open { 1.0 } else { 0.0 });
        s.incidents_90d.set(self.in_90d as f64);
    }
}

/// The process-wide incident and delivery metrics.
struct IncidentMetrics {
    duration: Histogram,
    budget: IntGauge,
    notifications: prometheus::IntCounterVec,
    throttled: prometheus::IntCounterVec,
    folded: prometheus::IntCounterVec,
    outbox_pending: IntGauge,
    outbox_oldest: prometheus::Gauge,
    /// When the oldest pending notification was queued, in Unix seconds;
    /// NaN when none is.
    outbox_oldest_at: AtomicF64,
    store_up: IntGauge,
    leader: IntGauge,
    members: prometheus::IntGaugeVec,
}

/// Incident durations: 1 minute to 3 days.
const INCIDENT_BUCKETS: [f64; 9] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0, 259200.0,
];

impl IncidentMetrics {
    fn register(registry: &Registry) -> IncidentMetrics {
        let duration = register(
            registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "scarecrow_incident_duration_seconds",
                    "How long incidents stayed open, declared to resolved.",
                )
                .buckets(INCIDENT_BUCKETS.to_vec()),
            ),
        );
        let notifications = register(
            registry,
            prometheus::IntCounterVec::new(
                Opts::new(
                    "scarecrow_notifications_total",
                    "Delivery attempts of incident notifications, by sink, event and result.",
                ),
                &["sink", "event", "result"],
            ),
        );
        let throttled = register(
            registry,
            prometheus::IntCounterVec::new(
                Opts::new(
                    "scarecrow_incident_deliveries_throttled_total",
                    "Notifications held back by their receiver's rate limit (a 429, or a slot of the sink's known rate not yet come); not failures.",
                ),
                &["sink"],
            ),
        );
        let folded = register(
            registry,
            prometheus::IntCounterVec::new(
                Opts::new(
                    "scarecrow_incidents_folded_total",
                    "Critical checks that reached their failure threshold and joined another incident instead of declaring their own, by reason (dependency: a check they depend on was failing; outage: the outage incident was open).",
                ),
                &["reason"],
            ),
        );
        // At zero from the start, so that increase() sees the first one.
        for reason in ["dependency", "outage"] {
            folded.with_label_values(&[reason]);
        }
        let outbox_pending = register(
            registry,
            IntGauge::new(
                "scarecrow_outbox_pending",
                "Notifications not delivered yet.",
            ),
        );
        let outbox_oldest = register(
            registry,
            prometheus::Gauge::new(
                "scarecrow_outbox_oldest_age_seconds",
                "How long the oldest undelivered notification has waited; 0 when none waits.",
            ),
        );
        let store_up = register(
            registry,
            IntGauge::new(
                "scarecrow_store_up",
                "Whether the last write to the store succeeded (1) or not (0).",
            ),
        );
        store_up.set(1);
        let leader = register(
            registry,
            IntGauge::new(
                "scarecrow_leader",
                "Whether this replica runs the incident engine (1) or not (0); a daemon alone on its store leads.",
            ),
        );
        leader.set(1);
        let members = register(
            registry,
            prometheus::IntGaugeVec::new(
                Opts::new(
                    "scarecrow_members",
                    "Replicas alive on the shared PostgreSQL store, by location, as this one sees them.",
                ),
                &["location"],
            ),
        );
        let budget = register(
            registry,
            IntGauge::new(
                "scarecrow_incident_budget_90d",
                "The organisation's aim: at most this many incidents per 90 days across the instance group.",
            ),
        );
        IncidentMetrics {
            duration,
            budget,
            notifications,
            throttled,
            folded,
            outbox_pending,
            outbox_oldest,
            outbox_oldest_at: AtomicF64::new(f64::NAN),
            store_up,
            leader,
            members,
        }
    }

    /// Sets the oldest notification's age as of now (0 when none waits).
    fn age_outbox(&self) {
        let at = self.outbox_oldest_at.get();
        let age = match at.is_nan() {
            true => 0.0,
            false => (chrono::Utc::now().timestamp_micros() as f64 / 1e6 - at).max(0.0),
        };
        self.outbox_oldest.set(age);
    }
}

/// The daemon's own health: reloads and scheduler progress.
struct DaemonMetrics {
    reload_ok: IntGauge,
    reload_success_at: prometheus::Gauge,
    reload_errors: prometheus::IntCounter,
    last_tick: prometheus::Gauge,
}

impl DaemonMetrics {
    fn register(registry: &Registry) -> DaemonMetrics {
        DaemonMetrics {
            reload_ok: register(
                registry,
                IntGauge::new(
                    "scarecrow_config_last_reload_successful",
                    "Whether the last reload of the check files loaded every file (1) or not (0).",
                ),
            ),
            reload_success_at: register(
                registry,
                prometheus::Gauge::new(
                    "scarecrow_config_last_reload_success_timestamp_seconds",
                    "When the check files last loaded without errors, in Unix seconds.",
                ),
            ),
            reload_errors: register(
                registry,
                prometheus::IntCounter::new(
                    "scarecrow_config_reload_errors_total",
                    "Reloads that found a broken file (the last good version keeps running).",
                ),
            ),
            last_tick: register(
                registry,
                prometheus::Gauge::new(
                    "scarecrow_scheduler_last_tick_timestamp_seconds",
                    "When the scheduler last went round its loop, in Unix seconds.",
                ),
            ),
        }
    }
}

/// Registers a collector whose name, help and labels are static and valid.
fn register<C: Collector + Clone + 'static>(registry: &Registry, c: prometheus::Result<C>) -> C {
    let c = c.expect("metric definitions are static and valid");
    registry
        .register(Box::new(c.clone()))
        .expect("each metric name is registered once, on a fresh registry");
    c
}

fn gauge_len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
