//! Locations and a quorum: each location judges a check on its own runs
//! (failing once its latest `failure_threshold` runs failed, until
//! `success_threshold` passes), a location without a recent run counts
//! neither way, and the check fails when enough fresh locations fail.
//! Pure: time comes in as a value. The engine feeds the verdict to the
//! machine in place of a run's outcome, and the live view shows each
//! location's state.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{LocationResult, LocationState, Streak, Thresholds};
use crate::check::{Check, Outcome, Quorum, RunRecord};

/// A location without a run of a check for this long no longer runs it
/// (it was taken down, or renamed): it is left out of the verdict.
const GONE: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// How late a location's run may reach the others beyond its schedule and
/// timeout: its batch lingers up to a second before it is written, each
/// replica reads the store each second, and a busy machine adds to both.
/// Without it a location running every second looked stale between reads.
const LAG: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// One location's view of one check.
#[derive(Debug, Clone)]
struct Site {
    failures: u32,
    passes: u32,
    /// Past its failure threshold, and not yet back past its success
    /// threshold.
    failing: bool,
    /// When its current streak of failures began.
    since: Option<DateTime<Utc>>,
    last: Arc<RunRecord>,
    /// Its latest failing run, while it fails.
    last_failure: Option<Arc<RunRecord>>,
}

/// Every location's view of one check, by location.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    sites: BTreeMap<Arc<str>, Site>,
}

/// What the locations say of a check now.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// At least the quorum of fresh locations fail.
    pub failing: bool,
    /// Failed runs in a row at the location of the evidence.
    pub failures: u32,
    /// When the earliest failing location's streak began.
    pub since: Option<DateTime<Utc>>,
    /// The latest failing run of a failing location: the evidence.
    pub evidence: Option<Arc<RunRecord>>,
    /// Each location's state, by location.
    pub locations: Vec<LocationResult>,
    /// How many failing locations the quorum needs of the fresh ones.
    pub needed: usize,
}

impl Verdict {
    /// The streak the machine takes from this verdict: at the threshold
    /// or past it while failing, settled otherwise.
    pub fn streak(&self, thresholds: Thresholds) -> Streak {
        match self.failing {
            true => Streak {
                failures: self.failures.max(thresholds.failure.max(1)),
                passes: 0,
            },
            false => Streak {
                failures: 0,
                passes: thresholds.success.max(1),
            },
        }
    }

    /// The locations failing now, by name.
    pub fn failing_locations(&self) -> Vec<&str> {
        self.locations
            .iter()
            .filter(|l| l.state == LocationState::Failing)
            .map(|l| l.location.as_str())
            .collect()
    }
}

impl Locations {
    /// Counts `run` at its location: with the store's count of the
    /// location's runs in a row when there is one (replicas), else its own.
    pub fn observe(&mut self, run: &Arc<RunRecord>, streak: Option<Streak>, t: Thresholds) {
        let failed = !run.result.outcome.is_success();
        let site = match self.sites.get_mut(&run.location) {
            Some(site) => {
                // A run older than the one counted (a feed read twice, a
                // late batch) is no news.
                if run.result.started_at < site.last.result.started_at {
                    return;
                }
                site
            }
            None => self
                .sites
                .entry(Arc::clone(&run.location))
                .or_insert_with(|| Site {
                    failures: 0,
                    passes: 0,
                    failing: false,
                    since: None,
                    last: Arc::clone(run),
                    last_failure: None,
                }),
        };
        let seen = site.last.run_id == run.run_id && site.failures + site.passes > 0;
        let counted = match streak {
            Some(s) => s,
            None if seen => return,
            None if failed => Streak {
                failures: site.failures.saturating_add(1),
                passes: 0,
            },
            None => Streak {
                failures: 0,
                passes: site.passes.saturating_add(1),
            },
        };
        site.failures = counted.failures;
        site.passes = counted.passes;
        site.last = Arc::clone(run);
        if failed {
            let started = run.result.started_at;
            match site.failures {
                0 | 1 => site.since = Some(started),
                _ => _ = site.since.get_or_insert(started),
            }
            site.last_failure = Some(Arc::clone(run));
            if site.failures >= t.failure.max(1) {
                site.failing = true;
            }
        } else {
            site.since = None;
            if site.passes >= t.success.max(1) {
                site.failing = false;
                site.last_failure = None;
            } else if !site.failing {
                site.last_failure = None;
            }
        }
    }

    /// Forgets a location no longer running the check (a check's
    /// `locations` changed).
    pub fn retain(&mut self, check: &Check) {
        self.sites.retain(|location, _| check.runs_at(location));
    }

    /// Whether more than one location has run the check.
    pub fn several(&self) -> bool {
        self.sites.len() > 1
    }

    /// What the locations say at `now`. A location whose last run is
    /// older than two of the check's intervals and its timeout (and the
    /// store's [`LAG`]) is stale and counts neither way: the quorum is
    /// judged on the fresh ones. When fewer are fresh than a count needs,
    /// it cannot be judged, and the check keeps its state (`open`): an
    /// open incident stays open while a fresh location fails, and none is
    /// declared. With no fresh location failing the check is not failing.
    /// The evidence is the latest failure of the location failing longest,
    /// so that it stays put while that location fails (a change of
    /// location with another reason would announce an update each run).
    /// A location silent for a day is gone (decommissioned) and left out.
    pub fn verdict(
        &self,
        check: &Check,
        quorum: Quorum,
        now: DateTime<Utc>,
        open: bool,
    ) -> Verdict {
        let mut v = Verdict {
            failing: false,
            failures: 0,
            since: None,
            evidence: None,
            locations: Vec::with_capacity(self.sites.len()),
            needed: 0,
        };
        let (mut fresh, mut failing) = (0, 0);
        // The evidence's location: failing since the earliest.
        let mut first: Option<(DateTime<Utc>, &Site)> = None;
        for (location, site) in &self.sites {
            let last = site.last.result.started_at;
            if now - last > GONE {
                continue;
            }
            let stale = check.stale_at(last) + LAG < now;
            let state = match (stale, site.failing) {
                (true, _) => LocationState::Stale,
                (false, true) => LocationState::Failing,
                (false, false) => LocationState::Passing,
            };
            let shown = match site.failing {
                true => site.last_failure.as_ref().unwrap_or(&site.last),
                false => &site.last,
            };
            if !stale {
                fresh += 1;
            }
            if state == LocationState::Failing {
                failing += 1;
                let since = site.since.unwrap_or(shown.result.started_at);
                if first.is_none_or(|(at, _)| since < at) {
                    first = Some((since, site));
                }
            }
            v.locations
                .push(LocationResult::of(location, state, shown, site.failures));
        }
        if let Some((since, site)) = first {
            v.since = Some(since);
            v.failures = site.failures;
            v.evidence = Some(Arc::clone(site.last_failure.as_ref().unwrap_or(&site.last)));
        }
        v.needed = quorum.needed(fresh);
        v.failing = match failing {
            0 => false,
            n if fresh >= v.needed => n >= v.needed,
            _ => open,
        };
        v
    }
}

impl LocationResult {
    fn of(location: &str, state: LocationState, run: &RunRecord, failures: u32) -> Self {
        let (reason, step, message) = match &run.result.outcome {
            Outcome::Success => (None, None, None),
            Outcome::Failure {
                reason,
                step,
                message,
            } => (
                Some(reason.to_string()),
                step.clone(),
                Some(message.clone()),
            ),
        };
        LocationResult {
            location: location.to_owned(),
            state,
            run_id: run.run_id.clone(),
            at: run.result.started_at,
            consecutive_failures: failures,
            reason,
            step,
            message,
        }
    }
}

#[cfg(test)]
mod tests;
