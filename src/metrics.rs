//! The daemon's Prometheus metrics: one value that owns its registry and every
//! handle, passed to whoever records or renders. No globals.
//!
//! Every series of a check exists from the moment the check is loaded (at
//! zero), so `increase()` sees its first failure, and disappears when the check
//! is removed, so a deleted check leaves nothing stale behind.
//!
//! The per-check series are written by hand rather than through the
//! registry: with 10,000 checks (340,000 samples) `Registry::gather` and
//! `TextEncoder` take about half a second, allocating and sorting a message
//! per sample, while writing straight from the handles of the checks, kept in
//! name order, takes a fraction of that. The process-wide metrics go through
//! the registry and `TextEncoder`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus::core::{Atomic, AtomicF64, AtomicU64, Collector, Metric as _};
use prometheus::{Histogram, HistogramOpts, IntGauge, Opts, Registry, TextEncoder};

use crate::check::{Check, Outcome, Phases, Reason, RunResult};

/// The `Content-Type` of [`Metrics::render`]'s output (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of a run's duration: 10 ms to 30 s.
const DURATION_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Buckets of the scheduler's lateness: 100 µs to 5 s.
const LATENESS_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
const RESULTS: [&str; 2] = ["success", "failure"];
const PHASES: [&str; 4] = ["dns", "connect", "ttfb", "transfer"];

/// The name, type and help of one per-check family.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const DURATION: Family = Family {
    name: "scarecrow_check_duration_seconds",
    kind: "histogram",
    help: "How long runs of the check took.",
};
const FAILURES: Family = Family {
    name: "scarecrow_check_failures_total",
    kind: "counter",
    help: "Failed runs of the check, by the class of failure.",
};
const INFO: Family = Family {
    name: "scarecrow_check_info",
    kind: "gauge",
    help: "A loaded check's metadata; always 1. Labels from the check file carry the prefix label_.",
};
const LAST_RUN: Family = Family {
    name: "scarecrow_check_last_run_timestamp_seconds",
    kind: "gauge",
    help: "When the check's last run started, in Unix seconds; 0 before its first run.",
};
const LAST_SUCCESS: Family = Family {
    name: "scarecrow_check_last_success_timestamp_seconds",
    kind: "gauge",
    help: "When the check's last successful run started, in Unix seconds; 0 before its first success.",
};
const PHASE: Family = Family {
    name: "scarecrow_check_phase_seconds",
    kind: "gauge",
    help: "Time the check's last run spent in each request phase, summed over its steps; 0 for a phase that did not happen.",
};
const RUNS: Family = Family {
    name: "scarecrow_check_runs_total",
    kind: "counter",
    help: "Runs of the check, by result (success or failure).",
};
const SKIPPED: Family = Family {
    name: "scarecrow_check_skipped_runs_total",
    kind: "counter",
    help: "Runs of the check skipped because the previous run was still going when the next was due.",
};
const UP: Family = Family {
    name: "scarecrow_check_up",
    kind: "gauge",
    help: "Whether the check's last run succeeded (1) or failed (0); 0 until its first successful run.",
};

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
    /// Every loaded check, in name order (the order they are rendered in).
    checks: RwLock<BTreeMap<String, Loaded>>,
    /// The `le` label value of each duration bucket, formatted once.
    duration_le: Vec<String>,
    /// Size of the last rendering, to allocate the next one at once.
    last_render_len: AtomicUsize,
}

#[derive(Clone)]
struct Loaded {
    series: Arc<CheckSeries>,
    /// The info series' label set, escaped: `check="…",critical="…",…`.
    info: Arc<str>,
}

/// One check's series. Recording a run touches only these atomics.
struct CheckSeries {
    /// `check="<name>"`, escaped once.
    label: String,
    up: AtomicF64,
    /// In the order of [`RESULTS`].
    runs: [AtomicU64; 2],
    /// In the order of [`Reason::ALL`].
    failures: [AtomicU64; Reason::ALL.len()],
    duration: Histogram,
    /// In the order of [`PHASES`].
    phases: [AtomicF64; 4],
    last_run: AtomicF64,
    last_success: AtomicF64,
    skipped: AtomicU64,
}

impl Metrics {
    /// A fresh registry with the process-wide metrics and no checks loaded.
    pub fn new() -> Metrics {
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
        let duration_le = DURATION_BUCKETS
            .iter()
            .map(|b| {
                let mut s = String::new();
                push_float(&mut s, *b);
                s
            })
            .collect();
        Metrics {
            inner: Arc::new(Inner {
                registry,
                lateness,
                loaded,
                checks: RwLock::new(BTreeMap::new()),
                duration_le,
                last_render_len: AtomicUsize::new(0),
            }),
        }
    }

    /// Creates every series of `check` at zero, and its info series. For a
    /// check already loaded (a reload that changed it), only the info series is
    /// replaced: its counters keep counting.
    pub fn add_check(&self, check: &Check) {
        let info: Arc<str> = info_labels(check).into();
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match checks.get_mut(&check.name) {
            Some(loaded) => loaded.info = info,
            None => {
                let series = Arc::new(CheckSeries::new(&check.name));
                checks.insert(check.name.clone(), Loaded { series, info });
            }
        }
        self.inner.loaded.set(gauge_len(checks.len()));
    }

    /// Removes every series of the check named `name`; a later run of it is
    /// not recorded.
    pub fn remove_check(&self, name: &str) {
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        checks.remove(name);
        self.inner.loaded.set(gauge_len(checks.len()));
    }

    /// Records one finished run.
    pub fn observe_run(&self, run: &RunResult) {
        let Some(s) = self.series(&run.check) else {
            tracing::debug!(check = %run.check, "run of a check no longer loaded: not recorded");
            return;
        };
        let started = run.started_at.timestamp_micros() as f64 / 1e6;
        s.last_run.set(started);
        s.duration.observe(run.duration.as_secs_f64());
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
        // A phase absent from the last run is set to 0 rather than left at an
        // older run's value: the gauges describe the last run only.
        let mut phases = Phases::default();
        for step in &run.steps {
            phases.add(&step.phases);
        }
        let values = [phases.dns, phases.connect, phases.ttfb, phases.transfer];
        for (gauge, value) in s.phases.iter().zip(values) {
            gauge.set(value.map_or(0.0, |d| d.as_secs_f64()));
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

    /// Every series in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    /// Takes tens of milliseconds with thousands of checks: call it from a
    /// blocking thread. It holds the lock that recording a run needs only
    /// while it copies the list of checks.
    pub fn render(&self) -> String {
        let checks: Vec<Loaded> = {
            let checks = self
                .inner
                .checks
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            checks.values().cloned().collect()
        };
        let hint = self.inner.last_render_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8);
        if let Err(e) = TextEncoder::new().encode_utf8(&self.inner.registry.gather(), &mut out) {
            // Only an empty family fails to encode, and gather() drops those.
            tracing::error!(error = %e, "cannot encode metrics");
        }
        if !checks.is_empty() {
            self.write_checks(&mut out, &checks);
        }
        self.inner
            .last_render_len
            .store(out.len(), Ordering::Relaxed);
        out
    }

    /// Writes the per-check families, each check's samples in name order.
    fn write_checks(&self, out: &mut String, checks: &[Loaded]) {
        let each = |out: &mut String, family: &Family, f: &dyn Fn(&mut String, &CheckSeries)| {
            header(out, family);
            for c in checks {
                f(out, &c.series);
            }
        };
        each(out, &DURATION, &|out, s| {
            const BUCKET: &str = "scarecrow_check_duration_seconds_bucket";
            let m = s.duration.metric();
            let h = m.get_histogram();
            for (le, b) in self.inner.duration_le.iter().zip(h.get_bucket()) {
                sample(out, BUCKET, &s.label, Some(("le", le)));
                write_int(out, b.cumulative_count());
            }
            sample(out, BUCKET, &s.label, Some(("le", "+Inf")));
            write_int(out, h.get_sample_count());
            sample(out, "scarecrow_check_duration_seconds_sum", &s.label, None);
            write_float(out, h.get_sample_sum());
            sample(
                out,
                "scarecrow_check_duration_seconds_count",
                &s.label,
                None,
            );
            write_int(out, h.get_sample_count());
        });
        each(out, &FAILURES, &|out, s| {
            for (reason, n) in Reason::ALL.iter().zip(&s.failures) {
                sample(
                    out,
                    FAILURES.name,
                    &s.label,
                    Some(("reason", reason.as_str())),
                );
                write_int(out, n.get());
            }
        });
        header(out, &INFO);
        for c in checks {
            out.push_str(INFO.name);
            out.push('{');
            out.push_str(&c.info);
            out.push_str("} 1\n");
        }
        each(out, &LAST_RUN, &|out, s| {
            sample(out, LAST_RUN.name, &s.label, None);
            write_float(out, s.last_run.get());
        });
        each(out, &LAST_SUCCESS, &|out, s| {
            sample(out, LAST_SUCCESS.name, &s.label, None);
            write_float(out, s.last_success.get());
        });
        each(out, &PHASE, &|out, s| {
            for (phase, v) in PHASES.iter().zip(&s.phases) {
                sample(out, PHASE.name, &s.label, Some(("phase", phase)));
                write_float(out, v.get());
            }
        });
        each(out, &RUNS, &|out, s| {
            for (result, n) in RESULTS.iter().zip(&s.runs) {
                sample(out, RUNS.name, &s.label, Some(("result", result)));
                write_int(out, n.get());
            }
        });
        each(out, &SKIPPED, &|out, s| {
            sample(out, SKIPPED.name, &s.label, None);
            write_int(out, s.skipped.get());
        });
        each(out, &UP, &|out, s| {
            sample(out, UP.name, &s.label, None);
            write_float(out, s.up.get());
        });
    }

    fn series(&self, check: &str) -> Option<Arc<CheckSeries>> {
        let checks = self
            .inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        checks.get(check).map(|c| Arc::clone(&c.series))
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

impl CheckSeries {
    fn new(name: &str) -> CheckSeries {
        let mut label = String::from("check=\"");
        escape_into(&mut label, name);
        label.push('"');
        let duration = Histogram::with_opts(
            HistogramOpts::new(DURATION.name, DURATION.help).buckets(DURATION_BUCKETS.to_vec()),
        )
        .expect("the duration histogram's name, help and buckets are static and valid");
        CheckSeries {
            label,
            up: AtomicF64::new(0.0),
            runs: [0; 2].map(AtomicU64::new),
            failures: [0; Reason::ALL.len()].map(AtomicU64::new),
            duration,
            phases: [0.0; 4].map(AtomicF64::new),
            last_run: AtomicF64::new(0.0),
            last_success: AtomicF64::new(0.0),
            skipped: AtomicU64::new(0),
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

/// The label set of a check's info series: `check`, `critical`, `owner` (when
/// set) and each free label as `label_<key>`.
fn info_labels(check: &Check) -> String {
    let mut out = String::new();
    let mut names = vec!["check".to_owned(), "critical".to_owned()];
    let _ = write!(out, "check=\"");
    escape_into(&mut out, &check.name);
    let _ = write!(out, "\",critical=\"{}\"", check.critical);
    if let Some(owner) = &check.owner {
        out.push_str(",owner=\"");
        escape_into(&mut out, owner);
        out.push('"');
    }
    for (key, value) in &check.labels {
        let name = label_name(key);
        // Two keys that sanitise alike would make an invalid series: the
        // first (in key order) wins.
        if names.contains(&name) {
            continue;
        }
        let _ = write!(out, ",{name}=\"");
        escape_into(&mut out, value);
        out.push('"');
        names.push(name);
    }
    out
}

/// `label_` and `key` with every character outside `[a-zA-Z0-9_]` made `_`:
/// always a valid Prometheus label name, never a reserved one.
fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(6 + key.len());
    name.push_str("label_");
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    name
}

/// Escapes a label value as the text format wants: `\`, `"` and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, family: &Family) {
    let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
}

/// Writes a sample's name and labels and the space before its value.
fn sample(out: &mut String, name: &str, check: &str, extra: Option<(&str, &str)>) {
    out.push_str(name);
    out.push('{');
    out.push_str(check);
    if let Some((label, value)) = extra {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    out.push_str("} ");
}

fn write_int(out: &mut String, v: u64) {
    let _ = writeln!(out, "{v}");
}

fn write_float(out: &mut String, v: f64) {
    push_float(out, v);
    out.push('\n');
}

/// A float as Prometheus parses it: Rust's shortest round-trip form, and Go's
/// spelling of the special values.
fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::TimeZone as _;

    use super::*;
    use crate::check::{Schedule, StepResult};

    fn check(name: &str) -> Check {
        Check {
            name: name.to_owned(),
            description: None,
            critical: true,
            owner: Some("web".to_owned()),
            runbook: None,
            labels: BTreeMap::from([("site".to_owned(), "members".to_owned())]),
            schedule: Schedule::Every(Duration::from_secs(60)),
            timeout: Duration::from_secs(10),
            steps: Vec::new(),
            source: PathBuf::from(format!("checks/{name}.toml")),
        }
    }

    fn step(phases: Phases) -> StepResult {
        StepResult {
            name: "home".to_owned(),
            method: "GET".to_owned(),
            url: "http://127.0.0.1/".to_owned(),
            status: Some(200),
            duration: Duration::from_millis(100),
            phases,
            redirects: 0,
            failures: Vec::new(),
        }
    }

    fn run(check: &str, outcome: Outcome, steps: Vec<StepResult>) -> RunResult {
        RunResult {
            check: check.to_owned(),
            started_at: chrono::Utc
                .timestamp_opt(1_700_000_000, 250_000_000)
                .unwrap(),
            duration: Duration::from_millis(300),
            outcome,
            steps,
        }
    }

    fn timeout() -> Outcome {
        Outcome::Failure {
            reason: Reason::Timeout,
            step: Some("home".to_owned()),
            message: "deadline of 10s passed".to_owned(),
        }
    }

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    fn assert_lines(text: &str, expected: &[&str]) {
        for line in expected {
            assert!(
                text.lines().any(|l| l == *line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    fn series_of<'a>(text: &'a str, check: &str) -> Vec<&'a str> {
        let needle = format!("check=\"{check}\"");
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(&needle))
            .collect()
    }

    #[test]
    fn a_new_registry_has_build_info_and_no_checks() {
        let text = Metrics::new().render();
        assert_lines(
            &text,
            &[
                &format!(
                    "scarecrow_build_info{{version=\"{}\"}} 1",
                    env!("CARGO_PKG_VERSION")
                ),
                "scarecrow_checks_loaded 0",
                "scarecrow_scheduler_lateness_seconds_count 0",
            ],
        );
        assert!(!text.contains("check=\""), "{text}");
    }

    #[test]
    fn a_loaded_check_has_every_series_at_zero() {
        let m = Metrics::new();
        m.add_check(&check("weather"));
        let text = m.render();
        assert_lines(
            &text,
            &[
                "scarecrow_check_up{check=\"weather\"} 0",
                "scarecrow_check_runs_total{check=\"weather\",result=\"success\"} 0",
                "scarecrow_check_runs_total{check=\"weather\",result=\"failure\"} 0",
                "scarecrow_check_failures_total{check=\"weather\",reason=\"body_too_large\"} 0",
                "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"+Inf\"} 0",
                "scarecrow_check_phase_seconds{check=\"weather\",phase=\"ttfb\"} 0",
                "scarecrow_check_last_run_timestamp_seconds{check=\"weather\"} 0",
                "scarecrow_check_last_success_timestamp_seconds{check=\"weather\"} 0",
                "scarecrow_check_skipped_runs_total{check=\"weather\"} 0",
                "scarecrow_check_info{check=\"weather\",critical=\"true\",owner=\"web\",label_site=\"members\"} 1",
                "scarecrow_checks_loaded 1",
            ],
        );
        // up 1, runs 2, failures 10, phases 4, timestamps 2, skipped 1, info 1,
        // and the histogram's 10 buckets + `+Inf` + sum + count.
        assert_eq!(series_of(&text, "weather").len(), 21 + 13, "{text}");
        for reason in Reason::ALL {
            let line = format!(
                "scarecrow_check_failures_total{{check=\"weather\",reason=\"{reason}\"}} 0"
            );
            assert_lines(&text, &[&line]);
        }
    }

    #[test]
    fn a_failing_run_is_counted_by_reason() {
        let m = Metrics::new();
        m.add_check(&check("weather"));
        let phases = Phases {
            dns: ms(2),
            connect: ms(5),
            ttfb: None,
            transfer: None,
        };
        m.observe_run(&run("weather", timeout(), vec![step(phases)]));
        let text = m.render();
        assert_lines(
            &text,
            &[
                "scarecrow_check_failures_total{check=\"weather\",reason=\"timeout\"} 1",
                "scarecrow_check_failures_total{check=\"weather\",reason=\"dns\"} 0",
                "scarecrow_check_runs_total{check=\"weather\",result=\"failure\"} 1",
                "scarecrow_check_runs_total{check=\"weather\",result=\"success\"} 0",
                "scarecrow_check_up{check=\"weather\"} 0",
                "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"0.25\"} 0",
                "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"0.5\"} 1",
                "scarecrow_check_duration_seconds_sum{check=\"weather\"} 0.3",
                "scarecrow_check_duration_seconds_count{check=\"weather\"} 1",
                "scarecrow_check_phase_seconds{check=\"weather\",phase=\"dns\"} 0.002",
                "scarecrow_check_phase_seconds{check=\"weather\",phase=\"connect\"} 0.005",
                "scarecrow_check_phase_seconds{check=\"weather\",phase=\"ttfb\"} 0",
                "scarecrow_check_last_run_timestamp_seconds{check=\"weather\"} 1700000000.25",
                "scarecrow_check_last_success_timestamp_seconds{check=\"weather\"} 0",
            ],
        );
    }

    #[test]
    fn a_success_sets_up_and_its_phases_are_summed_over_steps() {
        let m = Metrics::new();
        m.add_check(&check("login"));
        let first = Phases {
            dns: ms(3),
            connect: ms(7),
            ttfb: ms(40),
            transfer: ms(1),
        };
        m.observe_run(&run("login", Outcome::Success, vec![step(first)]));
        // The second run reuses the connection: no DNS, no connect.
        let reused = Phases {
            dns: None,
            connect: None,
            ttfb: ms(20),
            transfer: ms(2),
        };
        m.observe_run(&run(
            "login",
            Outcome::Success,
            vec![step(reused), step(reused)],
        ));
        let text = m.render();
        assert_lines(
            &text,
            &[
                "scarecrow_check_up{check=\"login\"} 1",
                "scarecrow_check_runs_total{check=\"login\",result=\"success\"} 2",
                "scarecrow_check_last_success_timestamp_seconds{check=\"login\"} 1700000000.25",
                "scarecrow_check_phase_seconds{check=\"login\",phase=\"dns\"} 0",
                "scarecrow_check_phase_seconds{check=\"login\",phase=\"connect\"} 0",
                "scarecrow_check_phase_seconds{check=\"login\",phase=\"ttfb\"} 0.04",
                "scarecrow_check_phase_seconds{check=\"login\",phase=\"transfer\"} 0.004",
            ],
        );
        m.observe_run(&run("login", timeout(), Vec::new()));
        assert_lines(&m.render(), &["scarecrow_check_up{check=\"login\"} 0"]);
    }

    #[test]
    fn a_removed_check_leaves_no_series_and_later_runs_are_not_recorded() {
        let m = Metrics::new();
        m.add_check(&check("weather"));
        m.add_check(&check("diesel"));
        m.observe_run(&run("weather", timeout(), Vec::new()));
        m.remove_check("weather");
        // A run that was in flight during the reload ends afterwards.
        m.observe_run(&run("weather", timeout(), Vec::new()));
        m.skipped_run("weather");
        let text = m.render();
        assert_eq!(series_of(&text, "weather"), Vec::<&str>::new());
        assert_eq!(series_of(&text, "diesel").len(), 34);
        assert_lines(&text, &["scarecrow_checks_loaded 1"]);

        // Loaded again, it starts from zero.
        m.add_check(&check("weather"));
        assert_lines(
            &m.render(),
            &["scarecrow_check_failures_total{check=\"weather\",reason=\"timeout\"} 0"],
        );
    }

    #[test]
    fn a_changed_check_keeps_its_counters_and_gets_new_info() {
        let m = Metrics::new();
        m.add_check(&check("weather"));
        m.observe_run(&run("weather", timeout(), Vec::new()));
        let mut changed = check("weather");
        changed.critical = false;
        changed.owner = None;
        changed.labels = BTreeMap::from([("team-name".to_owned(), "a \"b\"".to_owned())]);
        m.add_check(&changed);
        let text = m.render();
        assert_lines(
            &text,
            &[
                "scarecrow_check_failures_total{check=\"weather\",reason=\"timeout\"} 1",
                r#"scarecrow_check_info{check="weather",critical="false",label_team_name="a \"b\""} 1"#,
                "scarecrow_checks_loaded 1",
            ],
        );
        assert_eq!(text.matches("scarecrow_check_info{").count(), 1);
    }

    #[test]
    fn skipped_runs_and_lateness_are_counted() {
        let m = Metrics::new();
        m.add_check(&check("weather"));
        m.skipped_run("weather");
        m.skipped_run("unknown");
        m.observe_lateness(Duration::from_micros(300));
        let text = m.render();
        assert_lines(
            &text,
            &[
                "scarecrow_check_skipped_runs_total{check=\"weather\"} 1",
                "scarecrow_scheduler_lateness_seconds_bucket{le=\"0.0001\"} 0",
                "scarecrow_scheduler_lateness_seconds_bucket{le=\"0.0005\"} 1",
                "scarecrow_scheduler_lateness_seconds_count 1",
            ],
        );
        assert!(!text.contains("unknown"), "{text}");
    }

    #[test]
    fn label_keys_become_valid_label_names() {
        assert_eq!(label_name("site"), "label_site");
        assert_eq!(label_name("2fa"), "label_2fa");
        assert_eq!(label_name("team-name.x"), "label_team_name_x");
        assert_eq!(label_name("é"), "label__");
    }
}
