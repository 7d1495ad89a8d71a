//! One loaded check's series and the label orders they are kept in: shared by
//! the recording side (`metrics/mod.rs`) and the writers (`text.rs`), which
//! import it and not each other.

use std::sync::Arc;

use prometheus::core::{Atomic, AtomicF64, AtomicU64};

use super::out::le_values;
use super::{browser, certs, durations, steps};
use crate::check::Reason;
use crate::config::MetricsSettings;

pub(super) const RESULTS: [&str; 2] = ["success", "failure"];
pub(super) const PHASES: [&str; 4] = ["dns", "connect", "ttfb", "transfer"];

/// Which per-check series exist beyond the default (`[metrics]`): fixed for
/// the process's life, so every check has the same ones.
pub(super) struct Shape {
    /// The duration histogram's bounds in seconds; empty: the gauge of the
    /// last run's duration instead.
    pub(super) bounds: Box<[f64]>,
    /// The `le` label value of each bound, formatted once.
    pub(super) le: Vec<String>,
    pub(super) phases: bool,
    pub(super) per_step: bool,
    pub(super) browser: bool,
}

impl Shape {
    pub(super) fn new(settings: &MetricsSettings) -> Shape {
        let bounds: Box<[f64]> = settings
            .duration_buckets
            .iter()
            .flatten()
            .map(std::time::Duration::as_secs_f64)
            .collect();
        Shape {
            le: le_values(&bounds),
            bounds,
            phases: settings.phases,
            per_step: settings.per_step,
            browser: settings.browser,
        }
    }
}

#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) series: Arc<CheckSeries>,
    /// The info series' label set, escaped: `check="…",critical="…",…`.
    pub(super) info: Arc<str>,
}

/// One check's series. Recording a run touches only these atomics.
pub(super) struct CheckSeries {
    /// `check="<name>"`, escaped once.
    pub(super) label: String,
    pub(super) up: AtomicF64,
    /// In the order of [`RESULTS`].
    pub(super) runs: [AtomicU64; 2],
    /// In the order of [`Reason::ALL`]; a reason's series shows from its
    /// first failure on.
    pub(super) failures: [AtomicU64; Reason::ALL.len()],
    pub(super) duration: durations::RunDurations,
    /// In the order of [`PHASES`]; recorded and shown with `[metrics] phases`.
    pub(super) phases: [AtomicF64; 4],
    pub(super) last_run: AtomicF64,
    pub(super) last_success: AtomicF64,
    pub(super) skipped: AtomicU64,
    pub(super) incident_open: AtomicF64,
    pub(super) incidents_declared: AtomicU64,
    pub(super) maintenance: AtomicF64,
    pub(super) incidents_90d: AtomicF64,
    pub(super) cert_expiry: certs::CertExpiry,
    /// The last run's duration of each step; none without `[metrics] per_step`.
    pub(super) steps: steps::StepDurations,
    /// Each browser step's timings; none without `[metrics] browser`.
    pub(super) browser: browser::BrowserTimings,
}

impl CheckSeries {
    /// Every series at zero; `label` is the check's, escaped (`check="…"`).
    pub(super) fn new(label: String, shape: &Shape) -> CheckSeries {
        CheckSeries {
            label,
            up: AtomicF64::new(0.0),
            runs: [0; 2].map(AtomicU64::new),
            failures: [0; Reason::ALL.len()].map(AtomicU64::new),
            duration: durations::RunDurations::new(shape.bounds.len()),
            phases: [0.0; 4].map(AtomicF64::new),
            last_run: AtomicF64::new(0.0),
            last_success: AtomicF64::new(0.0),
            skipped: AtomicU64::new(0),
            incident_open: AtomicF64::new(0.0),
            incidents_declared: AtomicU64::new(0),
            maintenance: AtomicF64::new(0.0),
            incidents_90d: AtomicF64::new(0.0),
            cert_expiry: certs::CertExpiry::default(),
            steps: steps::StepDurations::default(),
            browser: browser::BrowserTimings::default(),
        }
    }
}
