//! The per-check incident state machine. Pure: time comes in as a value,
//! events come out; persisting and delivering them is someone else's job.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Affected, Event, EventKind, Evidence, Feature, Incident, Streak, Thresholds, new_id};
use crate::check::{Outcome, Redacted, RunResult, StepResult};

/// Failing runs remembered per incident; older ones are dropped.
const MAX_RUN_IDS: usize = 100;
const MAX_TITLE: usize = 130;
/// An incident declared this soon after the check's last one was resolved
/// is the same outage again: it names the earlier one.
const SAME_OUTAGE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What the machine remembers about one check between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    pub consecutive_failures: u32,
    /// Counted up to the success threshold, no further: a check that keeps
    /// passing keeps the same state, which need not be written again.
    pub consecutive_successes: u32,
    /// When the current streak of failures began.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// The failing runs of the current streak.
    pub failing_runs: Vec<String>,
    /// Boxed: most checks have none, and the daemon keeps a state per check.
    pub open: Option<Box<Incident>>,
    /// When the open incident was last announced (declared, updated, reminded).
    pub last_notified_at: Option<DateTime<Utc>>,
    /// The check's last resolved incident: its id and when it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resolved: Option<(String, DateTime<Utc>)>,
    /// The ancestor (check, incident id) whose incident this failing check
    /// joined instead of declaring its own (`depends_on`): it declares on
    /// its own only once that incident is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<(String, String)>,
    /// The evidence of the last failing run while the check fails, should a
    /// dependent check declare this check's incident. Not stored: a failing
    /// check runs again soon after a restart.
    #[serde(skip)]
    pub last_failure: Option<Box<Evidence>>,
}

/// One run as the machine sees it.
pub struct Observation<'a> {
    pub run_id: &'a str,
    pub result: &'a Redacted<RunResult>,
    pub critical: bool,
    pub thresholds: Thresholds,
    /// Called only when an incident is declared: most runs never need them.
    pub feature: &'a dyn Fn() -> Feature,
    pub key: &'a dyn Fn() -> String,
    pub now: DateTime<Utc>,
    /// Planned work: runs count, but nothing is declared or announced.
    pub in_maintenance: bool,
    /// An ancestor (`depends_on`) is failing: the check does not declare
    /// its own incident (it joins the ancestor's, which the engine does).
    pub held: bool,
    /// The check's failures and passes in a row, ending with this run, as
    /// the store counted them when replicas share the checks: they replace
    /// the machine's own count, so runs by every replica are one history
    /// and a run seen twice counts once. `None`: count this run.
    pub streak: Option<Streak>,
    /// What the check's locations say (several locations, or a quorum):
    /// it decides whether the check fails, in place of the run's outcome,
    /// and `result` is then the latest failing run of a failing location.
    pub verdict: Option<&'a super::quorum::Verdict>,
    /// Where receivers reach this daemon (`external_url`), for links.
    pub links: Option<&'a url::Url>,
}

impl CheckState {
    /// Whether the check passes steadily with nothing to remember: another
    /// passing run leaves such a state exactly as it is.
    pub fn is_settled(&self, thresholds: Thresholds) -> bool {
        self.consecutive_failures == 0
            && self.consecutive_successes >= thresholds.success.max(1)
            && self.first_failure_at.is_none()
            && self.failing_runs.is_empty()
            && self.open.is_none()
    }

    /// Counts a run; returns the event it causes, if any.
    pub fn observe(&mut self, o: &Observation) -> Option<Event> {
        let failed = o
            .verdict
            .map_or(!o.result.outcome.is_success(), |v| v.failing);
        match failed {
            false => self.passed(o),
            true => self.failed(o),
        }
    }

    fn passed(&mut self, o: &Observation) -> Option<Event> {
        self.consecutive_failures = 0;
        self.first_failure_at = None;
        self.failing_runs.clear();
        self.last_failure = None;
        self.joined = None;
        let enough = o.thresholds.success.max(1);
        let passes = o
            .streak
            .map_or(self.consecutive_successes.saturating_add(1), |s| s.passes);
        self.consecutive_successes = passes.min(enough);
        if self.consecutive_successes >= enough {
            // Resolved below the quorum: it names the locations that
            // still fail.
            if let (Some(v), Some(incident)) = (o.verdict, &mut self.open) {
                incident.evidence.locations.clone_from(&v.locations);
            }
            return self.close("recovered", None, o.now);
        }
        None
    }

    fn failed(&mut self, o: &Observation) -> Option<Event> {
        self.consecutive_successes = 0;
        self.consecutive_failures = o
            .streak
            .map_or(self.consecutive_failures.saturating_add(1), |s| s.failures);
        let since = o.verdict.and_then(|v| v.since);
        self.first_failure_at
            .get_or_insert(since.unwrap_or(o.result.started_at));
        push_bounded(&mut self.failing_runs, o.run_id);
        let evidence = evidence(o, self.consecutive_failures);
        self.last_failure = Some(Box::new(evidence.clone()));
        if let Some(incident) = &mut self.open {
            let changed = incident.evidence.reason != evidence.reason
                || incident.evidence.step != evidence.step;
            incident.evidence = evidence;
            push_bounded(&mut incident.run_ids, o.run_id);
            let due_reminder = o.thresholds.remind_every.is_some_and(|every| {
                let last = self.last_notified_at.unwrap_or(incident.declared_at);
                (o.now - last).to_std().is_ok_and(|d| d >= every)
            });
            if o.in_maintenance {
                return None;
            }
            let kind = match (changed, due_reminder) {
                (true, _) => EventKind::Updated,
                (false, true) => EventKind::Reminder,
                (false, false) => return None,
            };
            if kind == EventKind::Updated {
                incident.title = title(&o.result.check, &incident.evidence.message);
            }
            self.last_notified_at = Some(o.now);
            return Some(event(kind, (**incident).clone(), o.now));
        }
        // A window that ends while the check still fails declares at the
        // first failing run after it: the count kept going throughout.
        if !o.critical
            || o.in_maintenance
            || o.held
            || self.consecutive_failures < o.thresholds.failure.max(1)
        {
            return None;
        }
        let declaring = Declaring {
            feature: (o.feature)(),
            key: (o.key)(),
            detected_at: o.result.started_at,
            affected: Vec::new(),
        };
        Some(self.declare(evidence, declaring, o.now))
    }

    /// A dependent check failing to its threshold joins this check's
    /// incident: declared now if none is open (whether or not this check is
    /// critical or at its own threshold), else updated with the new
    /// feature. None if this check has no failure to tell, or the dependent
    /// is listed already.
    pub fn join(
        &mut self,
        affected: Affected,
        feature: &dyn Fn() -> Feature,
        key: &dyn Fn() -> String,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        if self.open.is_some() {
            return self.add_affected(affected, now);
        }
        let evidence = (**self.last_failure.as_ref()?).clone();
        let declaring = Declaring {
            feature: feature(),
            key: key(),
            detected_at: affected.at,
            affected: vec![affected],
        };
        Some(self.declare(evidence, declaring, now))
    }

    /// Declares an incident that lists `affected` from the start (the
    /// outage incident), with `evidence` of the failure that completed it.
    pub fn declare_with(
        &mut self,
        evidence: Evidence,
        affected: Vec<Affected>,
        feature: Feature,
        key: String,
        now: DateTime<Utc>,
    ) -> Event {
        self.first_failure_at = affected.iter().map(|a| a.at).min();
        let declaring = Declaring {
            feature,
            key,
            detected_at: evidence.at,
            affected,
        };
        self.declare(evidence, declaring, now)
    }

    /// A check the open incident lists has recovered: an update, or the
    /// resolution once every listed check has. None if it is not listed or
    /// already recovered.
    pub fn listed_recovered(&mut self, check: &str, now: DateTime<Utc>) -> Option<Event> {
        let incident = self.open.as_mut()?;
        let listed = incident
            .affected
            .iter_mut()
            .find(|a| a.check == check && a.recovered_at.is_none())?;
        listed.recovered_at = Some(now);
        if incident.affected.iter().all(|a| a.recovered_at.is_some()) {
            self.consecutive_failures = 0;
            return self.close("recovered", None, now);
        }
        self.last_notified_at = Some(now);
        Some(event(EventKind::Updated, (**incident).clone(), now))
    }

    /// Declares for a check that held its declaration (waiting for its
    /// parents to run) from its last failing run; none if it has none.
    pub fn declare_held(
        &mut self,
        feature: &dyn Fn() -> Feature,
        key: &dyn Fn() -> String,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        if self.open.is_some() {
            return None;
        }
        let evidence = (**self.last_failure.as_ref()?).clone();
        let declaring = Declaring {
            feature: feature(),
            key: key(),
            detected_at: evidence.at,
            affected: Vec::new(),
        };
        Some(self.declare(evidence, declaring, now))
    }

    /// Lists `affected` in the open incident: an update; none if there is
    /// no open incident or it lists that check already.
    pub fn add_affected(&mut self, affected: Affected, now: DateTime<Utc>) -> Option<Event> {
        let incident = self.open.as_mut()?;
        if incident.affected.iter().any(|a| a.check == affected.check) {
            return None;
        }
        incident.affected.push(affected);
        self.last_notified_at = Some(now);
        Some(event(EventKind::Updated, (**incident).clone(), now))
    }

    fn declare(&mut self, evidence: Evidence, d: Declaring, now: DateTime<Utc>) -> Event {
        let first_failure_at = self.first_failure_at.unwrap_or(evidence.at);
        let previous_incident = self
            .last_resolved
            .take()
            .filter(|(_, resolved_at)| first_failure_at - *resolved_at < SAME_OUTAGE)
            .map(|(id, _)| id);
        let incident = Incident {
            id: new_id("inc"),
            key: d.key,
            title: title(&d.feature.check, &evidence.message),
            severity: "critical".to_owned(),
            feature: d.feature,
            first_failure_at,
            detected_at: d.detected_at,
            declared_at: now,
            resolved_at: None,
            resolution: None,
            note: None,
            evidence,
            run_ids: self.failing_runs.clone(),
            previous_incident,
            affected: d.affected,
        };
        self.open = Some(Box::new(incident.clone()));
        self.last_notified_at = Some(now);
        event(EventKind::Declared, incident, now)
    }

    /// The check was removed or renamed: its open incident ends.
    pub fn removed(&mut self, now: DateTime<Utc>) -> Option<Event> {
        self.close("check_removed", None, now)
    }

    /// Someone resolved the incident by hand.
    pub fn resolve_manually(&mut self, note: Option<String>, now: DateTime<Utc>) -> Option<Event> {
        self.consecutive_failures = 0;
        self.first_failure_at = None;
        self.failing_runs.clear();
        self.close("manual", note, now)
    }

    fn close(
        &mut self,
        resolution: &str,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let mut incident = *self.open.take()?;
        incident.resolved_at = Some(now);
        incident.resolution = Some(resolution.to_owned());
        incident.note = note;
        self.last_notified_at = None;
        self.last_resolved = Some((incident.id.clone(), now));
        Some(event(EventKind::Resolved, incident, now))
    }
}

/// What a declaration needs besides the evidence.
struct Declaring {
    feature: Feature,
    key: String,
    detected_at: DateTime<Utc>,
    affected: Vec<Affected>,
}

fn event(kind: EventKind, incident: Incident, at: DateTime<Utc>) -> Event {
    Event {
        id: new_id("msg"),
        kind,
        at,
        incident,
    }
}

fn push_bounded(ids: &mut Vec<String>, id: &str) {
    // A run the store's feed shows again (a new leader reads every
    // check's latest) is listed once.
    if ids.last().is_some_and(|last| last == id) {
        return;
    }
    if ids.len() >= MAX_RUN_IDS {
        ids.remove(0);
    }
    ids.push(id.to_owned());
}

/// `diesel-order is failing: step "…": …`, at most 130 characters.
fn title(check: &str, message: &str) -> String {
    let full = format!("{check} is failing: {message}");
    match full.char_indices().nth(MAX_TITLE - 1) {
        Some((cut, _)) => format!("{}…", &full[..cut]),
        None => full,
    }
}

/// The evidence a failing run leaves: the failing step and what it showed.
fn evidence(o: &Observation, consecutive_failures: u32) -> Evidence {
    let r = o.result;
    let (reason, step, message) = match &r.outcome {
        Outcome::Failure {
            reason,
            step,
            message,
        } => (reason.to_string(), step.clone(), message.clone()),
        Outcome::Success => (String::new(), None, String::new()),
    };
    let last = r.steps.last();
    let http = last.and_then(StepResult::http);
    let screenshot = last
        .and_then(StepResult::screenshot)
        .and_then(|p| std::path::Path::new(p).file_name()?.to_str())
        .map(str::to_owned);
    let screenshot_url = screenshot.as_ref().and_then(|name| {
        let link = o.links?.join(&format!("api/v1/screenshots/{name}")).ok()?;
        Some(link.to_string())
    });
    let phases = http.map(|h| h.phases).unwrap_or_default();
    let phases_ms = [
        ("dns", phases.dns),
        ("connect", phases.connect),
        ("ttfb", phases.ttfb),
        ("transfer", phases.transfer),
    ]
    .into_iter()
    .filter_map(|(name, d)| d.map(|d| (name.to_owned(), ms(d))))
    .collect();
    Evidence {
        run_id: o.run_id.to_owned(),
        at: r.started_at,
        reason,
        step,
        message,
        failures: last.map(|s| s.failures.clone()).unwrap_or_default(),
        failure_details: last.map(|s| s.failure_details.clone()).unwrap_or_default(),
        status: last.and_then(StepResult::status),
        url: last.map(|s| s.url.clone()),
        phases_ms,
        duration_ms: ms(r.duration),
        consecutive_failures,
        excerpt: last.and_then(|s| s.excerpt.clone()),
        screenshot,
        screenshot_url,
        locations: o.verdict.map(|v| v.locations.clone()).unwrap_or_default(),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests;
