//! `scarecrow_browser_timing_seconds{check,step,event}`: when, after the
//! navigation started, each browser step of a check's last run got its
//! document (`navigation`), `dom_content_loaded`, `load`, its first awaited
//! element or text (`first_match`) and the end of its actions (`actions`).
//! Opt-in (`[metrics] browser`): five series a browser step.

use std::sync::{PoisonError, RwLock};

use prometheus::core::{Atomic, AtomicF64};

use super::out::{Out, push_label, write_float};
use crate::check::{Check, StepDetail, StepKind, StepResult};

const NAME: &str = "scarecrow_browser_timing_seconds";
const HELP: &str = "Seconds from navigation start to each event of each browser step of the check's last run; 0 for an event that did not happen.";
/// The events, as the step's `timings_ms` names them.
pub(super) const EVENTS: [&str; 5] = [
    "navigation",
    "dom_content_loaded",
    "load",
    "first_match",
    "actions",
];

/// One check's browser steps, in step order.
#[derive(Default)]
pub(super) struct BrowserTimings(RwLock<Vec<Gauges>>);

struct Gauges {
    step: String,
    seconds: [AtomicF64; EVENTS.len()],
}

impl BrowserTimings {
    /// Takes the browser steps of `check` (at load or after a reload).
    pub(super) fn set_steps(&self, check: &Check) {
        let mut gauges = self.0.write().unwrap_or_else(PoisonError::into_inner);
        gauges.clear();
        for step in &check.steps {
            if matches!(step.kind, StepKind::Browser(_))
                && !gauges.iter().any(|g| g.step == step.name)
            {
                gauges.push(Gauges {
                    step: step.name.clone(),
                    seconds: [0.0; EVENTS.len()].map(AtomicF64::new),
                });
            }
        }
    }

    /// Records the browser steps of one run.
    pub(super) fn record(&self, steps: &[StepResult]) {
        let gauges = self.0.read().unwrap_or_else(PoisonError::into_inner);
        for g in gauges.iter() {
            let timings = steps
                .iter()
                .find(|s| s.name == g.step)
                .and_then(|s| match &s.detail {
                    StepDetail::Browser(b) => Some(&b.browser.timings),
                    StepDetail::Http(_) => None,
                });
            for (event, gauge) in EVENTS.iter().zip(&g.seconds) {
                let ms = timings.and_then(|t| t.get(*event)).copied().unwrap_or(0);
                gauge.set(ms as f64 / 1000.0);
            }
        }
    }
}

/// Writes the family from each loaded check's label and browser steps.
pub(super) fn write<'a>(
    out: &mut Out,
    checks: impl Iterator<Item = (&'a str, &'a BrowserTimings)>,
) {
    let mut started = false;
    for (label, timings) in checks {
        let gauges = timings.0.read().unwrap_or_else(PoisonError::into_inner);
        for g in gauges.iter() {
            if !started {
                out.push_str(&format!("# HELP {NAME} {HELP}\n# TYPE {NAME} gauge\n"));
                started = true;
            }
            for (event, seconds) in EVENTS.iter().zip(&g.seconds) {
                out.push_str(NAME);
                out.push('{');
                out.push_str(label);
                out.push(',');
                push_label(out, "step", &g.step);
                out.push(',');
                push_label(out, "event", event);
                out.push_str("} ");
                write_float(out, seconds.get());
            }
        }
        drop(gauges);
        out.boundary();
    }
}
