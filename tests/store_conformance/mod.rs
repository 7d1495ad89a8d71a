//! The store conformance suite: what every backend of `scarecrow::store`
//! must do, as one generic function over a factory of fresh, empty stores.
//! `tests/store.rs` runs it on SQLite; a new backend's test calls
//! [`conformance`] with its own factory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scarecrow::check::{
    HttpStep, Outcome, Phases, Reason, Redacted, RunRecord, RunResult, StepDetail, StepResult,
};
use scarecrow::incident::machine::CheckState;
use scarecrow::incident::store::{Claimer, DeliveryState, OutboxItem, Store as _, Transition};
use scarecrow::incident::{Event, EventKind, Evidence, Feature, Incident};
use scarecrow::store::{Reader, Retention, Store};

/// A fresh, empty store and a reader on it.
pub struct Opened {
    pub store: Store,
    pub reader: Reader,
}

/// Runs every case, each on a store of its own from `open`, which keeps
/// run history as the case asks.
pub async fn conformance(open: impl AsyncFn(Retention) -> Opened) {
    runs_are_read_back_per_check_newest_first(open(Retention::from(100)).await).await;
    check_states_come_back_and_can_be_forgotten(open(Retention::from(100)).await).await;
    incidents_and_their_timeline(open(Retention::from(100)).await).await;
    a_transition_committed_twice_keeps_one_of_each(open(Retention::from(100)).await).await;
    the_outbox_keeps_order_per_incident_and_sink(open(Retention::from(100)).await).await;
    commits_made_without_waiting_land_in_order(open(Retention::from(100)).await).await;
    claims_hold_a_pair_for_one_worker_until_they_expire(open(Retention::from(100)).await).await;
    retention_by_count_keeps_the_runs_incidents_refer_to(open(Retention::from(5)).await).await;
    a_nul_from_a_page_is_stored_as_a_replacement_character(open(Retention::from(100)).await).await;
    retention_by_age_keeps_the_runs_incidents_refer_to(
        open(Retention {
            runs_per_check: 10,
            max_age: Duration::from_secs(24 * 3600),
        })
        .await,
    )
    .await;
}

/// A fixed time, `secs` after a base some months ago.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + secs, 123_456_789).expect("a time")
}

pub fn incident(id: &str, check: &str, declared: i64) -> Incident {
    Incident {
        id: id.to_owned(),
        key: format!("scarecrow:test:{check}"),
        title: format!("{check} is failing: status 502"),
        severity: "critical".to_owned(),
        feature: Feature {
            check: check.to_owned(),
            ..Feature::default()
        },
        first_failure_at: at(declared - 60),
        detected_at: at(declared - 1),
        declared_at: at(declared),
        resolved_at: None,
        resolution: None,
        note: None,
        evidence: Evidence {
            run_id: "run_1".to_owned(),
            at: at(declared),
            reason: "assertion".to_owned(),
            message: "status: expected 200, got 502".to_owned(),
            ..Evidence::default()
        },
        run_ids: vec!["run_0".to_owned(), "run_1".to_owned()],
        previous_incident: None,
        affected: Vec::new(),
    }
}

pub fn resolved(mut i: Incident, secs: i64) -> Incident {
    i.resolved_at = Some(at(secs));
    i.resolution = Some("recovered".to_owned());
    i
}

/// The transition an event causes, with one outbox item per sink.
pub fn transition(kind: EventKind, incident: Incident, secs: i64, sinks: &[&str]) -> Transition {
    let event = Event {
        id: format!("msg_{}_{}", incident.id, kind.as_str()),
        kind,
        at: at(secs),
        incident: incident.clone(),
    };
    let state = CheckState {
        consecutive_failures: 2,
        first_failure_at: Some(incident.first_failure_at),
        failing_runs: incident.run_ids.clone(),
        open: incident.is_open().then(|| Box::new(incident.clone())),
        last_notified_at: Some(at(secs)),
        ..CheckState::default()
    };
    Transition {
        check: incident.feature.check.clone(),
        outbox: sinks
            .iter()
            .map(|s| OutboxItem::new(&event, s, at(secs)))
            .collect(),
        state,
        event,
    }
}

/// Run `n` of `check`, started `30 n` seconds after the base; every third
/// one failed.
pub fn run(check: &str, n: i64) -> RunRecord {
    run_started(check, n, at(n * 30))
}

/// Run `n` of `check`, started at `started_at`.
fn run_started(check: &str, n: i64, started_at: DateTime<Utc>) -> RunRecord {
    let failing = n % 3 == 0;
    let result = RunResult {
        check: check.to_owned(),
        started_at,
        duration: Duration::from_micros(150_000 + n as u64),
        outcome: if failing {
            Outcome::Failure {
                reason: Reason::Assertion,
                step: Some("home".to_owned()),
                message: format!("run {n} failed"),
            }
        } else {
            Outcome::Success
        },
        steps: vec![StepResult {
            name: "home".to_owned(),
            url: "https://shop.test/".to_owned(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".to_owned(),
                status: Some(if failing { 502 } else { 200 }),
                phases: Phases {
                    ttfb: Some(Duration::from_micros(90_500)),
                    ..Phases::default()
                },
                ..HttpStep::default()
            }),
            duration: Duration::from_micros(140_000),
            attempts: 1,
            failures: vec![],
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: failing.then(|| "Bad Gateway".to_owned()),
        }],
    };
    RunRecord {
        run_id: format!("run_{check}_{n}"),
        result: Redacted::vouched(result),
        location: "default".into(),
    }
}

/// A check's state after `n` passes in a row.
pub fn state(n: u32) -> CheckState {
    CheckState {
        consecutive_successes: n,
        ..CheckState::default()
    }
}

fn claimer(id: &str) -> Claimer {
    Claimer {
        id: id.to_owned(),
        lease: Duration::from_secs(60),
    }
}

fn ids(items: &[OutboxItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

async fn record(store: &Store, run: RunRecord) {
    store.record_run(Arc::new(run)).await.expect("record a run");
}

async fn runs_are_read_back_per_check_newest_first(b: Opened) {
    // Where a run ran comes back with it (the post-mortem tells each
    // location's runs apart).
    let in_ams = |n| RunRecord {
        location: "ams-1".into(),
        ..run("diesel", n)
    };
    for n in 0..3 {
        record(&b.store, in_ams(n)).await;
    }
    // Queued ones are written by the time a later awaited one is.
    for n in 0..2 {
        b.store
            .queue_run(Arc::new(run("weather", n)))
            .expect("queue");
    }
    record(&b.store, run("weather", 2)).await;

    let newest = |check: &str, ns: &[i64]| -> Vec<Redacted<RunResult>> {
        ns.iter().map(|&n| run(check, n).result).collect()
    };
    assert_eq!(
        b.reader.recent_runs("diesel", 10).expect("runs"),
        newest("diesel", &[2, 1, 0])
    );
    assert_eq!(
        b.reader.recent_runs("diesel", 2).expect("runs"),
        newest("diesel", &[2, 1])
    );
    assert_eq!(
        b.reader.recent_runs("weather", 10).expect("runs"),
        newest("weather", &[2, 1, 0])
    );
    assert_eq!(b.reader.recent_runs("nothing", 10).expect("runs"), vec![]);
    let between = b
        .reader
        .runs_between("diesel", at(30), at(60), 10)
        .expect("runs between");
    assert_eq!(
        between,
        vec![in_ams(1), in_ams(2)],
        "oldest first, with their ids and locations, the bounds included"
    );
}

async fn check_states_come_back_and_can_be_forgotten(b: Opened) {
    b.store.queue_state("diesel", &state(1)).expect("queue");
    b.store.queue_state("diesel", &state(2)).expect("queue");
    b.store.queue_state("weather", &state(7)).expect("queue");
    let states = b.store.load().await.expect("load").states;
    assert_eq!(states.len(), 2);
    assert_eq!(states.get("diesel"), Some(&state(2)), "the last one queued");
    assert_eq!(states.get("weather"), Some(&state(7)));

    let t = transition(
        EventKind::Declared,
        incident("inc_a", "login", 0),
        0,
        &["ops"],
    );
    b.store
        .commit(t.clone(), &claimer("a"))
        .await
        .expect("commit");
    assert_eq!(
        b.store.load().await.expect("load").states.get("login"),
        Some(&t.state),
        "a transition writes the check's state"
    );
    b.store.forget_check("login").await.expect("forget");
    b.store
        .forget_check("never-seen")
        .await
        .expect("forgetting nothing is fine");
    let states = b.store.load().await.expect("load").states;
    assert_eq!(states.get("login"), None);
    let (_, _, outbox) = b.reader.incident("inc_a").expect("read").expect("kept");
    assert_eq!(outbox, t.outbox, "its notifications stay");
}

async fn incidents_and_their_timeline(b: Opened) {
    let worker = claimer("a");
    let a = incident("inc_a", "diesel", 0);
    let x = incident("inc_x", "diesel", -200 * 86_400);
    let bb = incident("inc_b", "weather", 100);
    let declared_b = transition(EventKind::Declared, bb.clone(), 100, &["ops"]);
    for t in [
        transition(EventKind::Declared, x.clone(), -200 * 86_400, &[]),
        transition(EventKind::Declared, a.clone(), 0, &["ops"]),
        declared_b.clone(),
        transition(EventKind::Updated, bb.clone(), 150, &["ops"]),
        transition(
            EventKind::Resolved,
            resolved(bb.clone(), 200),
            200,
            &["ops"],
        ),
        // Replayed out of order: the incident stays resolved.
        declared_b,
    ] {
        b.store.commit(t, &worker).await.expect("commit");
    }

    let all = b.reader.incidents(false, 10).expect("all");
    assert_eq!(all, vec![resolved(bb, 200), a.clone(), x]);
    assert_eq!(b.reader.incidents(true, 10).expect("open").len(), 2);
    assert_eq!(b.reader.incidents(false, 1).expect("one").len(), 1);
    let (incident, events, outbox) = b
        .reader
        .incident("inc_b")
        .expect("read")
        .expect("the incident");
    assert_eq!(incident.resolution.as_deref(), Some("recovered"));
    let timeline: Vec<_> = events.iter().map(|e| (e.kind, e.at)).collect();
    assert_eq!(
        timeline,
        vec![
            (EventKind::Declared, at(100)),
            (EventKind::Updated, at(150)),
            (EventKind::Resolved, at(200)),
        ]
    );
    assert!(events.iter().all(|e| e.incident_id == "inc_b"));
    assert_eq!(outbox.len(), 3);
    assert_eq!(b.reader.incident("inc_nope").expect("read"), None);

    let since = at(-86_400);
    let counts = b.reader.incident_counts(since).expect("counts");
    let expected: std::collections::BTreeMap<String, u64> =
        [("diesel".to_owned(), 1), ("weather".to_owned(), 1)].into();
    assert_eq!(counts, expected, "declared since then, by check");
    assert_eq!(
        b.store.incident_counts(since).await.expect("counts"),
        expected
    );
}

async fn a_transition_committed_twice_keeps_one_of_each(b: Opened) {
    let worker = claimer("a");
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops", "chat"],
    );
    b.store.commit(t.clone(), &worker).await.expect("commit");
    let mut delivered = t.outbox[0].clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    delivered.delivered_at = Some(at(5));
    let written = b
        .store
        .update_delivery(&worker, delivered.clone())
        .await
        .expect("delivered");
    assert!(written);
    // A reconcile after an outage commits it again: nothing doubles, and
    // the delivery in between is not undone.
    let again = b.store.commit(t.clone(), &worker).await.expect("again");
    assert_eq!(ids(&again), vec![t.outbox[1].id.as_str()], "still pending");
    assert_eq!(b.reader.incidents(false, 10).expect("list").len(), 1);
    let (_, events, outbox) = b.reader.incident("inc_a").expect("read").expect("it");
    assert_eq!(events.len(), 1);
    assert_eq!(outbox.len(), 2);
    assert!(outbox.contains(&delivered));
}

async fn the_outbox_keeps_order_per_incident_and_sink(b: Opened) {
    let worker = claimer("a");
    let a = incident("inc_a", "diesel", 0);
    let declared = transition(EventKind::Declared, a.clone(), 0, &["ops", "chat"]);
    let got = b
        .store
        .commit(declared.clone(), &worker)
        .await
        .expect("declared");
    let d = |sink: &str| format!("msg_inc_a_incident.declared/{sink}");
    let r = |sink: &str| format!("msg_inc_a_incident.resolved/{sink}");
    assert_eq!(ids(&got), vec![d("chat"), d("ops")]);

    // The resolution's commit hands back the declarations still pending of
    // its pairs, first: they go out before it.
    let res = transition(EventKind::Resolved, resolved(a, 100), 100, &["ops", "chat"]);
    let got = b.store.commit(res, &worker).await.expect("resolved");
    assert_eq!(ids(&got), vec![d("chat"), d("ops"), r("chat"), r("ops")]);

    // Delivered, an item leaves what the worker holds; the others stay in
    // their order, and a retry keeps its place.
    let mut delivered = got[1].clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    delivered.delivered_at = Some(at(101));
    assert!(
        b.store
            .update_delivery(&worker, delivered.clone())
            .await
            .expect("update")
    );
    let mut retried = got[0].clone();
    retried.attempts = 1;
    retried.last_error = Some("HTTP 503".to_owned());
    assert!(
        b.store
            .update_delivery(&worker, retried.clone())
            .await
            .expect("update")
    );
    let held = b.store.claim(&worker, Utc::now()).await.expect("claim");
    assert_eq!(held, vec![retried, got[2].clone(), got[3].clone()]);

    // An item whose commit was lost is inserted by its first update.
    let mut late = OutboxItem::new(&declared.event, "pager", at(40));
    late.state = DeliveryState::Dead;
    late.last_error = Some("HTTP 400".to_owned());
    assert!(
        b.store
            .update_delivery(&worker, late.clone())
            .await
            .expect("insert")
    );
    let (_, _, outbox) = b.reader.incident("inc_a").expect("read").expect("it");
    assert_eq!(outbox.len(), 5);
    assert!(outbox.contains(&late) && outbox.contains(&delivered));
}

async fn commits_made_without_waiting_land_in_order(b: Opened) {
    let worker = claimer("a");
    let a = incident("inc_a", "diesel", 0);
    let declared = transition(EventKind::Declared, a.clone(), 0, &["ops"]);
    let mut down = transition(
        EventKind::Declared,
        incident("inc_w", "weather", 5),
        5,
        &["ops"],
    );
    down.state = state(0);
    let res = transition(EventKind::Resolved, resolved(a, 100), 100, &["ops"]);
    // All made before any is awaited, as the engine does in a burst, and
    // awaited in reverse: they land in the order they were made.
    let first = b.store.commit(declared.clone(), &worker);
    let second = b.store.commit(down.clone(), &worker);
    let third = b.store.commit(res.clone(), &worker);
    let (third, second, first) = futures_util::join!(third, second, first);
    assert_eq!(
        ids(&first.expect("declared")),
        vec![declared.outbox[0].id.as_str()]
    );
    assert_eq!(
        ids(&second.expect("other")),
        vec![down.outbox[0].id.as_str()]
    );
    assert_eq!(
        ids(&third.expect("resolved")),
        vec![declared.outbox[0].id.as_str(), res.outbox[0].id.as_str()],
        "the resolution's commit saw the declaration's"
    );
    let (incident, events, _) = b.reader.incident("inc_a").expect("read").expect("it");
    assert_eq!(incident.resolution.as_deref(), Some("recovered"));
    assert_eq!(events.len(), 2);
    let states = b.store.load().await.expect("load").states;
    assert_eq!(
        states.get("diesel"),
        Some(&res.state),
        "the last one's state"
    );
    assert_eq!(states.get("weather"), Some(&state(0)));
}

async fn claims_hold_a_pair_for_one_worker_until_they_expire(b: Opened) {
    let (one, two) = (claimer("worker_one"), claimer("worker_two"));
    let now = Utc::now();
    let later = now + TimeDelta::seconds(61);
    let a = incident("inc_a", "diesel", 0);
    let declared = transition(EventKind::Declared, a.clone(), 0, &["ops"]);
    let got = b.store.commit(declared, &one).await.expect("commit");
    assert_eq!(got.len(), 1, "claimed by its committer");
    let d = got[0].clone();

    assert_eq!(b.store.claim(&two, now).await.expect("claim"), vec![]);
    let res = transition(EventKind::Resolved, resolved(a, 100), 100, &["ops"]);
    let got = b.store.commit(res, &two).await.expect("commit");
    assert_eq!(got, vec![], "the pair is the other worker's");
    let held = b.store.claim(&one, now).await.expect("claim");
    assert_eq!(held.len(), 2, "renewed, and the new item of its pair taken");
    assert_eq!(held[0], d);

    // Expired, the claims pass to the other worker, whose updates count;
    // the first worker's are refused.
    let held = b.store.claim(&two, later).await.expect("claim");
    assert_eq!(
        ids(&held),
        vec![d.id.as_str(), "msg_inc_a_incident.resolved/ops"]
    );
    let mut delivered = d.clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    delivered.delivered_at = Some(now);
    let mut stale = d.clone();
    stale.attempts = 1;
    stale.last_error = Some("HTTP 503".to_owned());
    assert!(
        !b.store
            .update_delivery(&one, stale)
            .await
            .expect("refused, not failed"),
        "the claim was lost"
    );
    assert!(
        b.store
            .update_delivery(&two, delivered.clone())
            .await
            .expect("update")
    );
    let (_, _, outbox) = b.reader.incident("inc_a").expect("read").expect("it");
    assert!(
        outbox.contains(&delivered),
        "the refused update changed nothing"
    );
    assert_eq!(b.store.claim(&one, now).await.expect("claim"), vec![]);

    // Released, they are free at once.
    b.store.release(&two).await.expect("release");
    let held = b.store.claim(&one, now).await.expect("claim");
    assert_eq!(ids(&held), vec!["msg_inc_a_incident.resolved/ops"]);

    // A pair is claimed once its oldest pending item is due.
    let c = incident("inc_c", "weather", 300);
    let mut t = transition(EventKind::Declared, c, 300, &["ops"]);
    t.outbox[0].next_attempt_at = now + TimeDelta::hours(1);
    b.store.commit(t, &one).await.expect("commit");
    b.store.release(&one).await.expect("release");
    assert_eq!(
        ids(&b.store.claim(&two, now).await.expect("claim")),
        vec!["msg_inc_a_incident.resolved/ops"]
    );
    b.store.release(&two).await.expect("release");
    let due = b
        .store
        .claim(&two, now + TimeDelta::hours(2))
        .await
        .expect("claim");
    assert_eq!(due.len(), 2, "{:?}", ids(&due));
}

/// A page can put any character in a failure's message; PostgreSQL's text
/// refuses NUL (and would fail the whole batch), so every backend stores
/// U+FFFD in its place.
async fn a_nul_from_a_page_is_stored_as_a_replacement_character(b: Opened) {
    let mut nul = run("diesel", 0);
    let mut result = (*nul.result).clone();
    result.outcome = Outcome::Failure {
        reason: Reason::Assertion,
        step: Some("order\0form".to_owned()),
        message: "body: expected \"Danke\", got \"\0\0Grüße\"".to_owned(),
    };
    nul.result = Redacted::vouched(result);
    record(&b.store, nul).await;
    record(&b.store, run("diesel", 1)).await;
    let runs = b.reader.recent_runs("diesel", 10).expect("runs");
    assert_eq!(runs.len(), 2, "the batch with the NUL was written whole");
    match &runs[1].outcome {
        Outcome::Failure { step, message, .. } => {
            assert_eq!(step.as_deref(), Some("order\u{FFFD}form"));
            assert_eq!(
                message,
                "body: expected \"Danke\", got \"\u{FFFD}\u{FFFD}Grüße\""
            );
        }
        other => panic!("{other:?}"),
    }
}

async fn retention_by_count_keeps_the_runs_incidents_refer_to(b: Opened) {
    let mut declared = incident("inc_a", "diesel", 0);
    declared.run_ids = vec!["run_diesel_1".to_owned()];
    b.store
        .commit(
            transition(EventKind::Declared, declared, 0, &[]),
            &claimer("a"),
        )
        .await
        .expect("commit");
    for n in 0..8 {
        record(&b.store, run("diesel", n)).await;
    }
    let burst = (8..12)
        .map(|n| run("diesel", n))
        .chain((0..3).map(|n| run("weather", n)))
        .map(|r| b.store.record_run(Arc::new(r)));
    let results = futures_util::future::join_all(burst).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mut kept: Vec<_> = (7..12).rev().map(|n| run("diesel", n).result).collect();
    kept.push(run("diesel", 1).result);
    assert_eq!(
        b.reader.recent_runs("diesel", 100).expect("runs"),
        kept,
        "the newest five, and the one the incident refers to"
    );
    assert_eq!(b.reader.recent_runs("weather", 100).expect("runs").len(), 3);
}

async fn retention_by_age_keeps_the_runs_incidents_refer_to(b: Opened) {
    let mut declared = incident("inc_a", "diesel", 0);
    declared.run_ids = vec!["run_diesel_3".to_owned(), "run_diesel_4".to_owned()];
    b.store
        .commit(
            transition(EventKind::Declared, declared, 0, &["ops"]),
            &claimer("a"),
        )
        .await
        .expect("commit");
    // Months old (fewer than `runs_per_check`, so only their age counts)...
    for n in 0..6 {
        record(&b.store, run("diesel", n)).await;
    }
    // ...and one from now, after which the check is pruned.
    let mut recent = run_started("diesel", 6, Utc::now());
    recent.run_id = "run_diesel_recent".to_owned();
    record(&b.store, recent.clone()).await;

    let kept: Vec<DateTime<Utc>> = b
        .reader
        .recent_runs("diesel", 100)
        .expect("runs")
        .iter()
        .map(|r| r.started_at)
        .collect();
    let expected = vec![
        recent.result.started_at,
        run("diesel", 4).result.started_at,
        run("diesel", 3).result.started_at,
    ];
    assert_eq!(kept, expected, "the recent run and the incident's two");
}
