//! `scarecrow_step_duration_seconds{check,step}`: how long each step of a
//! check's last run took. The steps are known at load, so every series exists
//! from then on; a reload that renames or removes steps replaces them.

use std::sync::{PoisonError, RwLock};

use prometheus::core::{Atomic, AtomicF64};

use super::out::{Out, push_label, write_float};
use crate::check::{Check, StepResult};

const NAME: &str = "scarecrow_step_duration_seconds";
const HELP: &str = "How long each step of the check's last run took, retries included; 0 for a step that did not run.";

/// One check's step gauges, in step order, one per distinct step name.
#[derive(Default)]
pub(super) struct StepDurations(RwLock<Vec<Gauge>>);

struct Gauge {
    name: String,
    seconds: AtomicF64,
}

impl StepDurations {
    /// Takes the steps of `check` (at load or after a reload). A step whose
    /// name stays keeps its last value.
    pub(super) fn set_steps(&self, check: &Check) {
        let mut gauges = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let mut next: Vec<Gauge> = Vec::with_capacity(check.steps.len());
        for step in &check.steps {
            // Two steps of one name would be one series: the first counts.
            if next.iter().any(|g| g.name == step.name) {
                continue;
            }
            let old = gauges.iter().find(|g| g.name == step.name);
            next.push(Gauge {
                name: step.name.clone(),
                seconds: AtomicF64::new(old.map_or(0.0, |g| g.seconds.get())),
            });
        }
        *gauges = next;
    }

    /// Records the steps of one run; steps that did not run read 0.
    pub(super) fn record(&self, steps: &[StepResult]) {
        let gauges = self.0.read().unwrap_or_else(PoisonError::into_inner);
        for g in gauges.iter() {
            let ran = steps.iter().find(|s| s.name == g.name);
            g.seconds.set(ran.map_or(0.0, |s| s.duration.as_secs_f64()));
        }
    }
}

/// Writes the family from each loaded check's label (`check="…"`) and step
/// gauges, in name order; nothing when no loaded check has a step.
pub(super) fn write<'a>(out: &mut Out, checks: impl Iterator<Item = (&'a str, &'a StepDurations)>) {
    let mut started = false;
    for (label, steps) in checks {
        let gauges = steps.0.read().unwrap_or_else(PoisonError::into_inner);
        for g in gauges.iter() {
            if !started {
                out.push_str(&format!("# HELP {NAME} {HELP}\n# TYPE {NAME} gauge\n"));
                started = true;
            }
            out.push_str(NAME);
            out.push('{');
            out.push_str(label);
            out.push(',');
            push_label(out, "step", &g.name);
            out.push_str("} ");
            write_float(out, g.seconds.get());
        }
        drop(gauges);
        out.boundary();
    }
}
