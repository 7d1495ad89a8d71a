//! One loaded check's series and the label orders they are kept in: shared by
//! the recording side (`metrics/mod.rs`) and the writers (`text.rs`), which
//! import it and not each other.

use std::sync::Arc;

use prometheus::core::{Atomic, AtomicF64, AtomicU64};

use super::{certs, durations, steps};
use crate::check::Reason;

pub(super) const RESULTS: [&str; 2] = ["success", "failure"];
pub(super) const PHASES: [&str; 4] = ["dns", "connect", "ttfb", "transfer"];

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
    /// In the order of [`Reason::ALL`].
    pub(super) failures: [AtomicU64; Reason::ALL.len()],
    pub(super) duration: durations::Durations,
    /// In the order of [`PHASES`].
    pub(super) phases: [AtomicF64; 4],
    pub(super) last_run: AtomicF64,
    pub(super) last_success: AtomicF64,
    pub(super) skipped: AtomicU64,
    pub(super) incident_open: AtomicF64,
    pub(super) incidents_declared: AtomicU64,
    pub(super) maintenance: AtomicF64,
    pub(super) incidents_90d: AtomicF64,
    pub(super) cert_expiry: certs::CertExpiry,
    /// The last run's duration of each step.
    pub(super) steps: steps::StepDurations,
}

impl CheckSeries {
    /// Every series at zero; `label` is the check's, escaped (`check="…"`).
    pub(super) fn new(label: String) -> CheckSeries {
        CheckSeries {
            label,
            up: AtomicF64::new(0.0),
            runs: [0; 2].map(AtomicU64::new),
            failures: [0; Reason::ALL.len()].map(AtomicU64::new),
            duration: durations::Durations::default(),
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
        }
    }
}
