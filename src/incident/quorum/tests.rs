use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::check::{Reason, Redacted, RunResult, Schedule};

fn t0() -> DateTime<Utc> {
    "2026-12-03T14:49:00Z".parse().unwrap()
}

/// The weather check, every 30 s with a 10 s timeout: a location goes
/// stale 75 s after its last run (70, and 5 for the store's lag).
fn check() -> Check {
    Check {
        name: "weather".into(),
        description: None,
        critical: true,
        owner: None,
        runbook: None,
        labels: Default::default(),
        schedule: Schedule::Every(Duration::from_secs(30)),
        timeout: Duration::from_secs(10),
        steps: Vec::new(),
        incidents: Default::default(),
        connection: Default::default(),
        public_cookies: Vec::new(),
        depends_on: Vec::new(),
        locations: Vec::new(),
        source: "checks/weather.toml".into(),
    }
}

fn run(location: &str, n: i64, ok: bool) -> Arc<RunRecord> {
    let outcome = match ok {
        true => Outcome::Success,
        false => Outcome::Failure {
            reason: Reason::Assertion,
            step: Some("Wetterseite".into()),
            message: format!("step \"Wetterseite\": status 502 in {location}"),
        },
    };
    Arc::new(RunRecord {
        run_id: format!("run_{location}_{n}"),
        result: Redacted::vouched(RunResult {
            check: "weather".into(),
            started_at: t0() + TimeDelta::seconds(30 * n),
            duration: Duration::from_millis(40),
            outcome,
            steps: Vec::new(),
        }),
        location: location.into(),
    })
}

/// Feeds (location, run number, passed) in order, counting each location's
/// runs itself; the verdict after the last, at that run's time.
fn feed(locations: &mut Locations, runs: &[(&str, i64, bool)], quorum: Quorum) -> Verdict {
    let mut at = t0();
    for &(location, n, ok) in runs {
        let run = run(location, n, ok);
        at = run.result.started_at;
        locations.observe(&run, None, Thresholds::default());
    }
    locations.verdict(&check(), quorum, at, false)
}

fn states(v: &Verdict) -> Vec<(&str, LocationState)> {
    v.locations
        .iter()
        .map(|l| (l.location.as_str(), l.state))
        .collect()
}

#[test]
fn a_location_fails_at_its_threshold_and_recovers_at_its_success_threshold() {
    let mut l = Locations::default();
    let v = feed(&mut l, &[("fra", 0, false)], Quorum::default());
    assert!(!v.failing, "one failure is below the threshold of 2");
    let v = feed(&mut l, &[("fra", 1, false)], Quorum::default());
    assert!(v.failing);
    assert_eq!(v.failures, 2);
    assert_eq!(v.since, Some(t0()), "from the first failure of the streak");
    let v = feed(&mut l, &[("fra", 2, true)], Quorum::default());
    assert!(v.failing, "one pass is below the success threshold of 2");
    let v = feed(&mut l, &[("fra", 3, true)], Quorum::default());
    assert!(!v.failing);
    assert_eq!(states(&v), [("fra", LocationState::Passing)]);
}

#[test]
fn a_quorum_of_two_needs_both_locations_failing() {
    let two = Quorum::Locations(2);
    let mut l = Locations::default();
    let v = feed(
        &mut l,
        &[
            ("fra", 0, false),
            ("ams", 0, true),
            ("fra", 1, false),
            ("ams", 1, true),
        ],
        two,
    );
    assert!(!v.failing);
    assert_eq!(v.failing_locations(), ["fra"]);
    assert_eq!((v.failing_locations().len(), v.needed), (1, 2));
    let v = feed(&mut l, &[("ams", 2, false), ("ams", 3, false)], two);
    assert!(v.failing);
    assert_eq!(v.failing_locations(), ["ams", "fra"]);
    assert_eq!(
        v.evidence.as_ref().map(|r| r.run_id.as_str()),
        Some("run_fra_1"),
        "the latest failure of the location failing longest"
    );
    // One recovers: below the quorum, naming the one still failing.
    let v = feed(
        &mut l,
        &[("ams", 4, true), ("fra", 4, false), ("ams", 5, true)],
        two,
    );
    assert!(!v.failing);
    assert_eq!(v.failing_locations(), ["fra"]);
    let fra = &v.locations[1];
    assert_eq!(fra.reason.as_deref(), Some("assertion"));
    assert_eq!(fra.run_id, "run_fra_4");
    assert_eq!(fra.consecutive_failures, 3);
}

#[test]
fn interleaved_runs_of_two_locations_are_counted_apart() {
    // One daemon's streak would be broken by the other location's passes.
    let mut l = Locations::default();
    let v = feed(
        &mut l,
        &[
            ("fra", 0, false),
            ("ams", 0, true),
            ("fra", 1, false),
            ("ams", 1, true),
        ],
        Quorum::default(),
    );
    assert!(v.failing, "quorum 1: one location failing is enough");
}

#[test]
fn a_location_without_a_recent_run_is_stale_and_counts_neither_way() {
    let mut l = Locations::default();
    feed(
        &mut l,
        &[("fra", 0, false), ("fra", 1, false)],
        Quorum::default(),
    );
    feed(
        &mut l,
        &[("ams", 0, false), ("ams", 1, false)],
        Quorum::default(),
    );
    // Only fra goes on: ams's last run was at 30 s; stale after 30 + 75.
    let v = feed(&mut l, &[("fra", 3, false)], Quorum::Locations(2));
    assert!(v.failing, "at 90 s ams is still fresh");
    let v = feed(&mut l, &[("fra", 4, false)], Quorum::Locations(2));
    assert_eq!(
        states(&v),
        [
            ("ams", LocationState::Stale),
            ("fra", LocationState::Failing)
        ]
    );
    assert!(!v.failing, "two locations needed, one fresh");
    let v = l.verdict(
        &check(),
        Quorum::Percent(50),
        t0() + TimeDelta::seconds(120),
        false,
    );
    assert!(v.failing, "50% of one fresh location is one");
    assert_eq!(v.needed, 1);
}

#[test]
fn too_few_fresh_locations_for_a_count_keep_the_state_while_one_fails() {
    let two = Quorum::Locations(2);
    let mut l = Locations::default();
    feed(
        &mut l,
        &[
            ("fra", 0, false),
            ("ams", 0, false),
            ("fra", 1, false),
            ("ams", 1, false),
        ],
        two,
    );
    // ams's host dies; fra goes on failing, then recovers.
    let at = |n: i64| t0() + TimeDelta::seconds(30 * n);
    feed(
        &mut l,
        &[("fra", 2, false), ("fra", 3, false), ("fra", 4, false)],
        two,
    );
    let v = l.verdict(&check(), two, at(4), true);
    assert_eq!(
        states(&v),
        [
            ("ams", LocationState::Stale),
            ("fra", LocationState::Failing)
        ]
    );
    assert!(
        v.failing,
        "one fresh location cannot judge two: open stays open"
    );
    assert!(
        !l.verdict(&check(), two, at(4), false).failing,
        "and none is declared"
    );
    feed(&mut l, &[("fra", 5, true), ("fra", 6, true)], two);
    let v = l.verdict(&check(), two, at(6), true);
    assert!(!v.failing, "no fresh location fails: resolved");
    assert_eq!(v.failing_locations(), Vec::<&str>::new());
    assert_eq!(
        v.locations[0].reason.as_deref(),
        Some("assertion"),
        "ams: its last failure"
    );
    // A share and a single location are judged on the fresh ones.
    for quorum in [Quorum::Percent(50), Quorum::default()] {
        assert!(!l.verdict(&check(), quorum, at(6), true).failing);
    }
}

/// At the default quorum, a location whose host dies while it fails does
/// not hold the incident open against the locations that pass.
#[test]
fn a_location_gone_quiet_while_failing_does_not_outvote_the_fresh_ones() {
    let mut l = Locations::default();
    feed(
        &mut l,
        &[("fra", 0, false), ("ams", 0, true), ("fra", 1, false)],
        Quorum::default(),
    );
    let v = feed(
        &mut l,
        &[
            ("ams", 1, true),
            ("ams", 2, true),
            ("ams", 3, true),
            ("ams", 4, true),
        ],
        Quorum::default(),
    );
    assert_eq!(
        states(&v),
        [
            ("ams", LocationState::Passing),
            ("fra", LocationState::Stale)
        ]
    );
    assert!(!v.failing);
}

#[test]
fn a_location_silent_for_a_day_is_gone() {
    let mut l = Locations::default();
    feed(
        &mut l,
        &[("fra", 0, false), ("fra", 1, false)],
        Quorum::default(),
    );
    let v = l.verdict(&check(), Quorum::default(), t0() + TimeDelta::days(2), true);
    assert!(v.locations.is_empty());
    assert!(!v.failing);
}

#[test]
fn a_percentage_is_of_the_fresh_locations_rounded_up_at_least_one() {
    assert_eq!(Quorum::Percent(50).needed(3), 2);
    assert_eq!(Quorum::Percent(50).needed(2), 1);
    assert_eq!(Quorum::Percent(34).needed(3), 2);
    assert_eq!(Quorum::Percent(100).needed(3), 3);
    assert_eq!(Quorum::Percent(1).needed(0), 1);
    assert_eq!(Quorum::Locations(2).needed(1), 2);
}

#[test]
fn the_stores_count_replaces_the_own_and_an_older_run_is_no_news() {
    let mut l = Locations::default();
    let t = Thresholds::default();
    let streak = |failures| {
        Some(Streak {
            failures,
            passes: 0,
        })
    };
    // Another replica's failure before it, counted by the store.
    l.observe(&run("fra", 5, false), streak(2), t);
    assert!(l.verdict(&check(), Quorum::default(), t0(), false).failing);
    l.observe(
        &run("fra", 4, true),
        Some(Streak {
            failures: 0,
            passes: 9,
        }),
        t,
    );
    let v = l.verdict(&check(), Quorum::default(), t0(), false);
    assert!(v.failing, "an older run leaves the location as it was");
    assert_eq!(v.locations[0].run_id, "run_fra_5");
    // The same run fed again (a new leader reads every latest) counts once.
    let mut own = Locations::default();
    let first = run("ams", 0, false);
    own.observe(&first, None, t);
    own.observe(&first, None, t);
    assert!(
        !own.verdict(&check(), Quorum::default(), t0(), false)
            .failing
    );
}

#[test]
fn a_location_the_check_no_longer_names_is_forgotten() {
    let mut l = Locations::default();
    feed(
        &mut l,
        &[("fra", 0, true), ("ams", 0, true)],
        Quorum::default(),
    );
    assert!(l.several());
    let only_fra = Check {
        locations: vec!["fra".into()],
        ..check()
    };
    l.retain(&only_fra);
    assert!(!l.several());
}
