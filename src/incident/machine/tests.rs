use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::check::{HttpStep, Reason, StepDetail, StepResult};

fn t0() -> DateTime<Utc> {
    "2026-11-25T14:45:00Z".parse().unwrap()
}

fn run(ok: bool, reason: Reason, step: &str, at: DateTime<Utc>) -> Redacted<RunResult> {
    let outcome = match ok {
        true => Outcome::Success,
        false => Outcome::Failure {
            reason,
            step: Some(step.to_owned()),
            message: format!("step {step:?}: something is wrong"),
        },
    };
    Redacted::vouched(RunResult {
        check: "diesel-order".into(),
        started_at: at,
        duration: Duration::from_millis(40),
        outcome,
        steps: vec![StepResult {
            name: step.into(),
            url: "http://127.0.0.1:8780/diesel/order".into(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".into(),
                status: Some(200),
                ..HttpStep::default()
            }),
            duration: Duration::from_millis(40),
            attempts: 1,
            failures: vec!["selector matched nothing".into()],
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: None,
        }],
    })
}

/// Feeds runs (true = pass) one minute apart; returns the events' kinds.
struct Harness {
    state: CheckState,
    critical: bool,
    thresholds: Thresholds,
    now: DateTime<Utc>,
    feature: Feature,
    maintenance: bool,
}

impl Harness {
    fn new(critical: bool) -> Self {
        Harness {
            state: CheckState::default(),
            critical,
            thresholds: Thresholds::default(),
            now: t0(),
            feature: Feature {
                check: "diesel-order".into(),
                ..Default::default()
            },
            maintenance: false,
        }
    }

    fn feed(&mut self, ok: bool, reason: Reason, step: &str) -> Option<Event> {
        self.now += TimeDelta::minutes(1);
        let run_id = format!("run_{}", self.now.timestamp());
        self.observe(ok, reason, step, &run_id, None)
    }

    /// One run as a replica's engine sees it: `streak` is the store's count.
    fn observe(
        &mut self,
        ok: bool,
        reason: Reason,
        step: &str,
        run_id: &str,
        streak: Option<Streak>,
    ) -> Option<Event> {
        let result = run(ok, reason, step, self.now);
        self.state.observe(&Observation {
            run_id,
            result: &result,
            critical: self.critical,
            thresholds: self.thresholds,
            feature: &|| self.feature.clone(),
            key: &|| "scarecrow:default:diesel-order".to_owned(),
            now: self.now,
            in_maintenance: self.maintenance,
            held: false,
            streak,
            verdict: None,
            links: None,
        })
    }

    fn kinds(&mut self, runs: &[bool]) -> Vec<Option<EventKind>> {
        runs.iter()
            .map(|&ok| {
                self.feed(ok, Reason::Assertion, "open the order form")
                    .map(|e| e.kind)
            })
            .collect()
    }
}

use EventKind::{Declared, Resolved};

#[test]
fn declares_after_the_failure_threshold_and_resolves_after_the_success_threshold() {
    let mut h = Harness::new(true);
    assert_eq!(
        h.kinds(&[false, false, false, true, true]),
        [None, Some(Declared), None, None, Some(Resolved)]
    );
}

#[test]
fn the_declaration_carries_key_times_and_evidence() {
    let mut h = Harness::new(true);
    h.feed(false, Reason::Assertion, "open the order form");
    let e = h
        .feed(false, Reason::Assertion, "open the order form")
        .unwrap();
    let i = &e.incident;
    assert_eq!(i.key, "scarecrow:default:diesel-order");
    assert_eq!(i.first_failure_at, t0() + TimeDelta::minutes(1));
    assert_eq!(i.declared_at, t0() + TimeDelta::minutes(2));
    assert_eq!(i.evidence.consecutive_failures, 2);
    assert_eq!(i.evidence.status, Some(200));
    assert_eq!(i.evidence.step.as_deref(), Some("open the order form"));
    assert_eq!(i.run_ids.len(), 2);
    assert!(
        i.title.starts_with("diesel-order is failing: step"),
        "{}",
        i.title
    );
    assert!(e.id.starts_with("msg_") && i.id.starts_with("inc_"));
}

#[test]
fn flapping_at_thresholds_two_declares_nothing() {
    let mut h = Harness::new(true);
    assert!(
        h.kinds(&[false, true, false, true, false, true])
            .iter()
            .all(Option::is_none)
    );
}

#[test]
fn non_critical_checks_never_declare() {
    let mut h = Harness::new(false);
    assert!(h.kinds(&[false; 10]).iter().all(Option::is_none));
    assert_eq!(h.state.consecutive_failures, 10);
}

#[test]
fn a_changed_reason_updates_the_open_incident() {
    let mut h = Harness::new(true);
    h.kinds(&[false, false]);
    let e = h
        .feed(false, Reason::Timeout, "open the order form")
        .unwrap();
    assert_eq!(e.kind, EventKind::Updated);
    assert_eq!(e.incident.evidence.reason, "timeout");
    assert!(
        h.feed(false, Reason::Timeout, "open the order form")
            .is_none()
    );
}

#[test]
fn reminders_only_when_asked_for() {
    let mut h = Harness::new(true);
    h.thresholds.remind_every = Some(Duration::from_secs(120));
    let kinds = h.kinds(&[false, false, false, false, false]);
    assert_eq!(
        kinds,
        [None, Some(Declared), None, Some(EventKind::Reminder), None]
    );
}

#[test]
fn a_removed_check_resolves_its_incident() {
    let mut h = Harness::new(true);
    h.kinds(&[false, false]);
    let e = h.state.removed(h.now).unwrap();
    assert_eq!(
        (e.kind, e.incident.resolution.as_deref()),
        (Resolved, Some("check_removed"))
    );
    assert!(h.state.removed(h.now).is_none());
}

/// The state survives a restart: counts continue, nothing is declared again,
/// and a recovery resolves the incident declared before the restart.
#[test]
fn state_survives_a_round_trip_through_json() {
    let mut h = Harness::new(true);
    let declared = h.kinds(&[false, false]);
    assert_eq!(declared[1], Some(Declared));
    let saved = serde_json::to_string(&h.state).unwrap();
    h.state = serde_json::from_str(&saved).unwrap();
    assert_eq!(h.kinds(&[false, true, true]), [None, None, Some(Resolved)]);
}

#[test]
fn manual_resolution_ends_the_streak() {
    let mut h = Harness::new(true);
    h.kinds(&[false, false]);
    let e = h
        .state
        .resolve_manually(Some("fixed by hand".into()), h.now)
        .unwrap();
    assert_eq!(e.incident.note.as_deref(), Some("fixed by hand"));
    assert_eq!(h.kinds(&[false, false]), [None, Some(Declared)]);
}

#[test]
fn titles_stay_within_130_characters() {
    assert_eq!(title("x", &"y".repeat(300)).chars().count(), 130);
}

#[test]
fn maintenance_suppresses_and_declares_when_it_ends_with_the_check_still_failing() {
    let mut h = Harness::new(true);
    h.maintenance = true;
    assert!(h.kinds(&[false, false, false]).iter().all(Option::is_none));
    h.maintenance = false;
    assert_eq!(h.kinds(&[false]), [Some(Declared)]);
    // An incident already open stays open through a window.
    h.maintenance = true;
    assert_eq!(h.kinds(&[false, false]), [None, None]);
    assert!(h.state.open.is_some());
}

#[test]
fn a_check_that_keeps_passing_settles_and_stays_the_same() {
    let mut h = Harness::new(true);
    h.kinds(&[true]);
    assert!(!h.state.is_settled(h.thresholds), "one pass of two");
    h.kinds(&[true]);
    assert!(h.state.is_settled(h.thresholds));
    let settled = h.state.clone();
    h.kinds(&[true, true, true]);
    assert_eq!(h.state, settled, "more passes change nothing");

    h.kinds(&[false]);
    assert!(!h.state.is_settled(h.thresholds), "a failure is remembered");
    h.kinds(&[false]);
    assert!(h.state.open.is_some());
    h.kinds(&[true, true]);
    assert!(h.state.open.is_none());
    assert!(h.state.is_settled(h.thresholds), "resolved and passing");
}

#[test]
fn an_incident_within_an_hour_of_the_last_names_it_and_a_later_one_does_not() {
    let mut h = Harness::new(true);
    let first = h.feed(false, Reason::Assertion, "open the order form");
    assert!(first.is_none());
    let declared = h.feed(false, Reason::Assertion, "open the order form");
    let first_id = declared.expect("declared").incident.id;
    h.kinds(&[true, true]);
    // Failing again 20 minutes later: the same outage.
    h.now += TimeDelta::minutes(20);
    let again = h.kinds(&[false]).into_iter().chain(h.kinds(&[false]));
    assert_eq!(again.collect::<Vec<_>>(), [None, Some(Declared)]);
    let second = h.state.open.as_ref().expect("open").clone();
    assert_eq!(second.previous_incident.as_deref(), Some(first_id.as_str()));

    // Resolved by hand, then failing again two hours on: a new outage.
    h.state.resolve_manually(None, h.now);
    h.now += TimeDelta::hours(2);
    h.kinds(&[false, false]);
    let third = h.state.open.as_ref().expect("open");
    assert_eq!(third.previous_incident, None);
}

/// With replicas the store counts: the leader sees only each check's
/// latest run, with the counters of all replicas' runs. It declares at
/// the threshold though it saw one failing run, resolves on the count of
/// passes, and a run it sees twice (a new leader reads every check's
/// latest again) counts once.
#[test]
fn the_stores_streak_replaces_the_machines_own_count() {
    let mut h = Harness::new(true);
    let failures = |n| {
        Some(Streak {
            failures: n,
            passes: 0,
        })
    };
    let passes = |n| {
        Some(Streak {
            failures: 0,
            passes: n,
        })
    };
    assert_eq!(
        h.observe(false, Reason::Assertion, "order", "run_1", failures(1)),
        None
    );
    h.now += TimeDelta::minutes(2);
    let declared = h.observe(false, Reason::Assertion, "order", "run_3", failures(3));
    assert_eq!(declared.map(|e| e.kind), Some(EventKind::Declared));
    assert_eq!(h.state.consecutive_failures, 3);
    assert_eq!(
        h.observe(false, Reason::Assertion, "order", "run_3", failures(3)),
        None
    );
    assert_eq!(
        h.state.failing_runs,
        ["run_1", "run_3"],
        "seen twice, listed once"
    );
    h.now += TimeDelta::minutes(1);
    assert_eq!(
        h.observe(true, Reason::Assertion, "order", "run_4", passes(1)),
        None
    );
    h.now += TimeDelta::minutes(1);
    let resolved = h.observe(true, Reason::Assertion, "order", "run_6", passes(3));
    assert_eq!(resolved.map(|e| e.kind), Some(EventKind::Resolved));
}
