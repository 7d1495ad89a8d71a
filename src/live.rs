//! The daemon's live state: each check's latest runs, the loaded config,
//! the scheduler's last tick. The parts that own the state write to it; the
//! HTTP API and the status page only read it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::check::{Check, FastHash, Outcome, Redacted, RunRecord, RunResult};
use crate::incident::quorum::Locations;
use crate::incident::{Event, EventKind, LocationResult, Streak, Thresholds};

/// Runs kept per check for the sparkline and the API.
const RECENT: usize = 60;

#[derive(Clone, Default)]
pub struct View {
    inner: Arc<RwLock<State>>,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub started_at: Option<DateTime<Utc>>,
    /// Hashed, not ordered: every run finds its check here, and a tree of
    /// thousands of names costs a dozen cold string comparisons per run.
    /// Readers that list them use [`State::by_name`].
    pub checks: HashMap<String, CheckView, FastHash>,
    pub config: ConfigView,
    pub scheduler_last_tick: Option<DateTime<Utc>>,
    pub store_up: bool,
}

/// One check as people see it: its definition (shared with the scheduler,
/// not copied) and what its runs have shown.
#[derive(Debug, Clone)]
pub struct CheckView {
    pub check: Arc<Check>,
    pub last_run: Option<LastRun>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the current streak began: of failures if the last run failed,
    /// of passes if it passed.
    pub streak_since: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    /// Boxed: most checks have none.
    pub open_incident: Option<Box<IncidentRef>>,
    /// The check it depends on whose open incident it joined (`depends_on`).
    pub blocked_by: Option<String>,
    /// The latest runs, oldest first.
    pub recent: VecDeque<RunPoint>,
    /// Each location's view of the check, with replicas (boxed: one
    /// daemon has none).
    pub locations: Option<Box<Locations>>,
}

impl CheckView {
    /// When the current streak of failures began; `None` while passing.
    pub fn failing_since(&self) -> Option<DateTime<Utc>> {
        let failing = self
            .last_run
            .as_ref()
            .is_some_and(|r| !r.outcome.is_success());
        self.streak_since.filter(|_| failing)
    }

    /// Each location's state at `now`, when the check runs in several.
    pub fn location_states(&self, now: DateTime<Utc>) -> Vec<LocationResult> {
        match &self.locations {
            Some(l) if l.several() => {
                let open = self.open_incident.is_some();
                l.verdict(&self.check, self.check.incidents.quorum, now, open)
                    .locations
            }
            _ => Vec::new(),
        }
    }
}

/// The last run, as much as the status page and the check list show; the
/// whole run is in the store.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentRef {
    pub id: String,
    pub title: String,
    pub declared_at: DateTime<Utc>,
}

/// One run, as small as a sparkline needs: 60 of them per check, for every
/// check. The duration in microseconds (saturating at about 35 minutes,
/// far beyond any timeout), with the top bit set when the run failed.
#[derive(Debug, Clone, Copy)]
pub struct RunPoint(u32);

impl RunPoint {
    const FAILED: u32 = 1 << 31;

    pub fn new(duration: Duration, ok: bool) -> RunPoint {
        let micros = u32::try_from(duration.as_micros())
            .unwrap_or(u32::MAX)
            .min(Self::FAILED - 1);
        RunPoint(if ok { micros } else { micros | Self::FAILED })
    }

    pub fn ok(self) -> bool {
        self.0 & Self::FAILED == 0
    }

    pub fn duration_ms(self) -> f64 {
        f64::from(self.0 & !Self::FAILED) / 1e3
    }
}

/// The last reload: when, which files, which errors.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigView {
    pub loaded_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub successful: bool,
    pub files: Vec<FileView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    /// The check it defines, when it loaded (now or before).
    pub check: Option<String>,
    /// Problems of the file as it is now; the last good version keeps
    /// running when there are errors.
    pub errors: Vec<String>,
}

impl State {
    /// Every check, ordered by name.
    pub fn by_name(&self) -> Vec<&CheckView> {
        let mut checks: Vec<&CheckView> = self.checks.values().collect();
        checks.sort_unstable_by(|a, b| a.check.name.cmp(&b.check.name));
        checks
    }
}

impl View {
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn started(&self) {
        self.write().started_at = Some(Utc::now());
    }

    /// A check was loaded or changed; what it has shown so far is kept.
    pub fn upsert_check(&self, check: &Arc<Check>) {
        let mut s = self.write();
        match s.checks.get_mut(&check.name) {
            Some(v) => {
                if let Some(l) = &mut v.locations {
                    l.retain(check);
                }
                v.check = Arc::clone(check);
            }
            None => {
                let v = CheckView {
                    check: Arc::clone(check),
                    last_run: None,
                    last_success_at: None,
                    streak_since: None,
                    next_run_at: None,
                    open_incident: None,
                    blocked_by: None,
                    recent: VecDeque::new(),
                    locations: None,
                };
                s.checks.insert(check.name.clone(), v);
            }
        }
    }

    pub fn remove_check(&self, name: &str) {
        self.write().checks.remove(name);
    }

    /// Records a run; returns whether the run before it passed (`None`
    /// before the check's first run).
    pub fn run_finished(&self, result: &Redacted<RunResult>) -> Option<bool> {
        let mut s = self.write();
        let v = s.checks.get_mut(&result.check)?;
        let before = v.last_run.as_ref().map(|r| r.outcome.is_success());
        let ok = result.outcome.is_success();
        let ended =
            result.started_at + chrono::TimeDelta::from_std(result.duration).unwrap_or_default();
        if ok {
            v.last_success_at = Some(ended);
        }
        if v.last_run.as_ref().map(|r| r.outcome.is_success()) != Some(ok) {
            v.streak_since = Some(result.started_at);
        }
        if v.recent.len() >= RECENT {
            v.recent.pop_front();
        } else if v.recent.capacity() == 0 {
            // Exactly the window, rather than doubling past it.
            v.recent.reserve_exact(RECENT);
        }
        v.recent.push_back(RunPoint::new(result.duration, ok));
        v.last_run = Some(LastRun {
            started_at: result.started_at,
            duration: result.duration,
            outcome: result.outcome.clone(),
        });
        before
    }

    /// A run another replica may have made, as the store has it: recorded
    /// unless the check's last run here is as new (this replica's own).
    pub fn run_seen(&self, result: &Redacted<RunResult>) {
        let newer = self.read().checks.get(&result.check).is_some_and(|v| {
            v.last_run
                .as_ref()
                .is_none_or(|last| last.started_at < result.started_at)
        });
        if newer {
            self.run_finished(result);
        }
    }

    /// A run as the store has it, at its location, with the location's
    /// failures and passes in a row.
    pub fn location_seen(&self, run: &Arc<RunRecord>, streak: Streak) {
        let mut s = self.write();
        if let Some(v) = s.checks.get_mut(&run.result.check) {
            let thresholds = Thresholds::of(&v.check.incidents);
            v.locations
                .get_or_insert_default()
                .observe(run, Some(streak), thresholds);
        }
    }

    /// The incidents open in the store, on a replica that does not lead
    /// (the leader's engine tells its own live state as it goes).
    pub fn sync_open(&self, open: &[crate::incident::Incident]) {
        let mut s = self.write();
        for v in s.checks.values_mut() {
            v.open_incident = None;
            v.blocked_by = None;
        }
        for i in open {
            show_open(&mut s, &i.feature.check, i);
        }
    }

    /// When checks run next; one lock for a whole scheduler tick.
    pub fn next_runs(&self, plans: &[(Arc<str>, Option<DateTime<Utc>>)]) {
        let mut s = self.write();
        for (check, at) in plans {
            if let Some(v) = s.checks.get_mut(&**check) {
                v.next_run_at = *at;
            }
        }
    }

    pub fn incident_event(&self, event: &Event) {
        let i = &event.incident;
        let mut s = self.write();
        // Blocked by a check the page shows; the outage incident is none.
        let by_check = s.checks.contains_key(&i.feature.check);
        for a in i.affected.iter().filter(|_| by_check) {
            if let Some(v) = s.checks.get_mut(&a.check) {
                v.blocked_by = match event.kind {
                    EventKind::Resolved => None,
                    _ => Some(i.feature.check.clone()),
                };
            }
        }
        if let Some(v) = s.checks.get_mut(&i.feature.check) {
            v.open_incident = match event.kind {
                EventKind::Resolved => None,
                _ => Some(Box::new(IncidentRef {
                    id: i.id.clone(),
                    title: i.title.clone(),
                    declared_at: i.declared_at,
                })),
            };
        }
    }

    /// An incident found open at start-up.
    pub fn open_incident(&self, check: &str, i: &crate::incident::Incident) {
        show_open(&mut self.write(), check, i);
    }

    pub fn scheduler_ticked(&self) {
        self.write().scheduler_last_tick = Some(Utc::now());
    }

    pub fn store_up(&self, up: bool) {
        self.write().store_up = up;
    }

    pub fn config_loaded(&self, config: ConfigView) {
        self.write().config = config;
    }
}

/// `check`'s incident `i` is open: the check shows it, the checks it
/// affects show they are blocked by `check`.
fn show_open(s: &mut State, check: &str, i: &crate::incident::Incident) {
    for a in &i.affected {
        if let Some(v) = s.checks.get_mut(&a.check) {
            v.blocked_by = Some(check.to_owned());
        }
    }
    if let Some(v) = s.checks.get_mut(check) {
        v.open_incident = Some(Box::new(IncidentRef {
            id: i.id.clone(),
            title: i.title.clone(),
            declared_at: i.declared_at,
        }));
    }
}
