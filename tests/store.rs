//! The SQLite store through its public API, on real files in a scratch
//! directory.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use scarecrow::check::{Outcome, Phases, Reason, RunResult, StepResult};
use scarecrow::incident::machine::CheckState;
use scarecrow::incident::store::{DeliveryState, OutboxItem, RunRecord, Store, Transition};
use scarecrow::incident::{Event, EventKind, Evidence, Feature, Incident};
use scarecrow::store::{self, SqliteStore};

/// A directory removed when the test ends, pass or fail.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = common::scratch(&format!("store-{name}"));
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// In a directory that does not exist yet: `open` creates it.
    fn db(&self) -> PathBuf {
        self.path().join("state").join("scarecrow.db")
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + secs, 123_456_789).expect("a time")
}

fn incident(id: &str, check: &str, declared: i64) -> Incident {
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
    }
}

fn resolved(mut i: Incident, secs: i64) -> Incident {
    i.resolved_at = Some(at(secs));
    i.resolution = Some("recovered".to_owned());
    i
}

/// The transition an event causes, with one outbox item per sink.
fn transition(kind: EventKind, incident: Incident, secs: i64, sinks: &[&str]) -> Transition {
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

fn run(check: &str, n: i64) -> RunRecord {
    let failing = n % 3 == 0;
    let result = RunResult {
        check: check.to_owned(),
        started_at: at(n * 30),
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
            method: "GET".to_owned(),
            url: "https://shop.test/".to_owned(),
            status: Some(if failing { 502 } else { 200 }),
            duration: Duration::from_micros(140_000),
            phases: Phases {
                ttfb: Some(Duration::from_micros(90_500)),
                ..Phases::default()
            },
            redirects: Vec::new(),
            attempts: 1,
            failures: vec![],
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: failing.then(|| "Bad Gateway".to_owned()),
            host: None,
            cert_expires_at: None,
        }],
    };
    RunRecord {
        run_id: format!("run_{check}_{n}"),
        result,
        state: Some(CheckState {
            consecutive_successes: n as u32,
            ..CheckState::default()
        }),
    }
}

fn open(path: &Path) -> SqliteStore {
    store::open(path, store::DEFAULT_HISTORY).expect("open the store")
}

#[tokio::test]
async fn a_commit_comes_back_after_reopening() {
    let dir = Scratch::new("reopen");
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops", "chat"],
    );
    {
        let store = open(&dir.db());
        store.record_run(run("weather", 1)).await.expect("record");
        store.commit(t.clone()).await.expect("commit");
        store.close().await;
    }
    let store = open(&dir.db());
    let snapshot = store.load().await.expect("load");
    assert_eq!(snapshot.states.get("diesel"), Some(&t.state));
    assert_eq!(
        snapshot.states.get("weather"),
        run("weather", 1).state.as_ref()
    );
    let mut expected = t.outbox.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        snapshot.outbox, expected,
        "pending, oldest first, then by id"
    );
}

#[tokio::test]
async fn a_commit_is_readable_as_soon_as_it_returns() {
    let dir = Scratch::new("visible");
    let store = open(&dir.db());
    let reader = store::open_reader(&dir.db()).expect("reader");
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops"],
    );
    store.commit(t.clone()).await.expect("commit");
    let (incident, events, outbox) = reader
        .incident("inc_a")
        .expect("read")
        .expect("the incident");
    assert_eq!(incident, t.event.incident);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, t.event.id);
    assert_eq!(events[0].kind, EventKind::Declared);
    assert_eq!(events[0].at, t.event.at);
    assert_eq!(outbox, t.outbox);
    store.record_run(run("diesel", 1)).await.expect("record");
    let runs = reader.recent_runs("diesel", 10).expect("runs");
    assert_eq!(runs, vec![run("diesel", 1).result]);
}

#[tokio::test]
async fn committing_a_transition_twice_keeps_one_of_each() {
    let dir = Scratch::new("twice");
    let store = open(&dir.db());
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops", "chat"],
    );
    store.commit(t.clone()).await.expect("first commit");
    let mut delivered = t.outbox[0].clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    delivered.delivered_at = Some(at(5));
    store
        .update_delivery(delivered.clone())
        .await
        .expect("delivered");
    // A reconcile after an outage commits it again: nothing doubles, and
    // the delivery in between is not undone.
    store.commit(t.clone()).await.expect("second commit");

    let reader = store::open_reader(&dir.db()).expect("reader");
    assert_eq!(reader.incidents(false, 10).expect("list").len(), 1);
    let (_, events, outbox) = reader
        .incident("inc_a")
        .expect("read")
        .expect("the incident");
    assert_eq!(events.len(), 1);
    assert_eq!(outbox.len(), 2);
    assert!(outbox.contains(&delivered));
    assert_eq!(
        store.load().await.expect("load").outbox,
        vec![t.outbox[1].clone()]
    );
}

#[tokio::test]
async fn a_delivery_update_takes_an_item_off_the_pending_list() {
    let dir = Scratch::new("delivery");
    let store = open(&dir.db());
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["chat", "ops"],
    );
    store.commit(t.clone()).await.expect("commit");
    assert_eq!(store.load().await.expect("load").outbox.len(), 2);

    let mut retried = t.outbox[0].clone();
    retried.attempts = 1;
    retried.last_error = Some("HTTP 503".to_owned());
    retried.next_attempt_at = at(30);
    store.update_delivery(retried.clone()).await.expect("retry");
    assert_eq!(
        store.load().await.expect("load").outbox,
        vec![retried.clone(), t.outbox[1].clone()]
    );

    let mut delivered = retried;
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 2;
    delivered.delivered_at = Some(at(31));
    store
        .update_delivery(delivered.clone())
        .await
        .expect("delivered");
    assert_eq!(
        store.load().await.expect("load").outbox,
        vec![t.outbox[1].clone()]
    );

    // An item whose commit was lost is inserted by its first update.
    let mut late = OutboxItem::new(&t.event, "pager", at(40));
    late.state = DeliveryState::Dead;
    late.last_error = Some("HTTP 400".to_owned());
    store.update_delivery(late.clone()).await.expect("insert");
    assert_eq!(
        store.load().await.expect("load").outbox,
        vec![t.outbox[1].clone()]
    );
    let reader = store::open_reader(&dir.db()).expect("reader");
    let (_, _, outbox) = reader
        .incident("inc_a")
        .expect("read")
        .expect("the incident");
    assert_eq!(outbox, vec![delivered, t.outbox[1].clone(), late]);
}

#[tokio::test]
async fn history_keeps_the_last_n_runs_per_check() {
    let dir = Scratch::new("history");
    let store = store::open(&dir.db(), 5).expect("open");
    for n in 0..8 {
        store.record_run(run("diesel", n)).await.expect("record");
    }
    // A burst, queued at once, is written as a batch.
    let burst = (8..12)
        .map(|n| run("diesel", n))
        .chain((0..3).map(|n| run("weather", n)));
    let results = futures_util::future::join_all(burst.map(|r| store.record_run(r))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let reader = store::open_reader(&dir.db()).expect("reader");
    let newest: Vec<_> = (7..12).rev().map(|n| run("diesel", n).result).collect();
    assert_eq!(reader.recent_runs("diesel", 100).expect("runs"), newest);
    assert_eq!(reader.recent_runs("diesel", 2).expect("runs"), newest[..2]);
    assert_eq!(reader.recent_runs("weather", 100).expect("runs").len(), 3);
    assert_eq!(reader.recent_runs("nothing", 100).expect("runs"), vec![]);
    let states = store.load().await.expect("load").states;
    assert_eq!(states.get("diesel"), run("diesel", 11).state.as_ref());
}

#[tokio::test]
async fn queued_runs_of_many_checks_keep_each_checks_order() {
    let dir = Scratch::new("interleaved");
    let store = open(&dir.db());
    let checks = ["weather", "diesel", "login"];
    // As the engine queues them: interleaved, nobody waiting, one batch.
    for n in 0..20 {
        for check in checks {
            store.queue_run(run(check, n)).expect("queue");
        }
    }
    store.close().await;

    let reader = store::open_reader(&dir.db()).expect("reader");
    let states = open(&dir.db()).load().await.expect("load").states;
    for check in checks {
        let newest: Vec<_> = (0..20).rev().map(|n| run(check, n).result).collect();
        assert_eq!(reader.recent_runs(check, 100).expect("runs"), newest);
        assert_eq!(states.get(check), run(check, 19).state.as_ref());
    }
}

#[tokio::test]
async fn a_run_that_left_the_state_alone_keeps_the_last_one_written() {
    let dir = Scratch::new("settled");
    let store = open(&dir.db());
    store.record_run(run("weather", 2)).await.expect("record");
    let unchanged = RunRecord {
        state: None,
        ..run("weather", 3)
    };
    store.record_run(unchanged).await.expect("record");
    let reader = store::open_reader(&dir.db()).expect("reader");
    assert_eq!(reader.recent_runs("weather", 10).expect("runs").len(), 2);
    let states = store.load().await.expect("load").states;
    assert_eq!(states.get("weather"), run("weather", 2).state.as_ref());
}

#[tokio::test]
async fn incidents_list_newest_first_and_a_stale_version_never_wins() {
    let dir = Scratch::new("incidents");
    let store = open(&dir.db());
    let a = incident("inc_a", "diesel", 0);
    let b = incident("inc_b", "weather", 100);
    let declared_b = transition(EventKind::Declared, b.clone(), 100, &["ops"]);
    store
        .commit(transition(EventKind::Declared, a.clone(), 0, &["ops"]))
        .await
        .expect("a");
    store.commit(declared_b.clone()).await.expect("b declared");
    store
        .commit(transition(
            EventKind::Resolved,
            resolved(b.clone(), 200),
            200,
            &["ops"],
        ))
        .await
        .expect("b resolved");
    // Replayed out of order: the incident stays resolved.
    store.commit(declared_b).await.expect("b declared again");

    let reader = store::open_reader(&dir.db()).expect("reader");
    let all = reader.incidents(false, 10).expect("all");
    assert_eq!(all, vec![resolved(b, 200), a.clone()]);
    assert_eq!(reader.incidents(true, 10).expect("open"), vec![a]);
    assert_eq!(reader.incidents(false, 1).expect("one").len(), 1);
    let (_, events, outbox) = reader
        .incident("inc_b")
        .expect("read")
        .expect("the incident");
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Declared, EventKind::Resolved]);
    assert_eq!(outbox.len(), 2);
    assert_eq!(reader.incident("inc_nope").expect("read"), None);
}

#[tokio::test]
async fn a_forgotten_check_loses_its_state_but_not_its_notifications() {
    let dir = Scratch::new("forget");
    let store = open(&dir.db());
    let t = transition(
        EventKind::Resolved,
        resolved(incident("inc_a", "diesel", 0), 50),
        50,
        &["ops"],
    );
    store.commit(t.clone()).await.expect("commit");
    store.forget_check("diesel").await.expect("forget");
    store
        .forget_check("never-seen")
        .await
        .expect("forgetting nothing is fine");
    let snapshot = store.load().await.expect("load");
    assert!(snapshot.states.is_empty());
    assert_eq!(snapshot.outbox, t.outbox);
}

/// Root bypasses file permissions, so "read-only" cannot be staged here;
/// another connection holding the write lock is a store-down condition
/// root cannot bypass. It costs the 5 s busy timeout.
#[tokio::test]
async fn a_locked_database_fails_readably_and_recovers() {
    let dir = Scratch::new("locked");
    let store = open(&dir.db());
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops"],
    );
    assert!(store.is_healthy());

    let other = rusqlite::Connection::open(dir.db()).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let err = store
        .commit(t.clone())
        .await
        .expect_err("the database is locked");
    assert!(
        err.to_string()
            .contains("committing incident.declared inc_a"),
        "{err}"
    );
    assert!(err.to_string().contains("database is locked"), "{err}");
    assert!(!store.is_healthy());
    // Readers are not blocked by a writer, and the failed commit left nothing.
    let reader = store::open_reader(&dir.db()).expect("reader");
    assert_eq!(reader.incident("inc_a").expect("read"), None);

    other.execute_batch("ROLLBACK").expect("release the lock");
    store.commit(t.clone()).await.expect("works again");
    store
        .record_run(run("diesel", 1))
        .await
        .expect("works again");
    assert!(store.is_healthy());
    assert!(reader.incident("inc_a").expect("read").is_some());
}

#[tokio::test]
async fn opening_fails_readably() {
    let dir = Scratch::new("open-errors");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("a file");
    let err = store::open(&file.join("scarecrow.db"), 10).expect_err("parent is a file");
    assert!(
        err.to_string()
            .starts_with("store: creating the directory "),
        "{err}"
    );

    let err = store::open_reader(&dir.path().join("missing.db")).expect_err("no such file");
    assert!(err.to_string().contains("no database at"), "{err}");

    open(&dir.db()).close().await;
    let newer = rusqlite::Connection::open(dir.db()).expect("connection");
    newer
        .pragma_update(None, "user_version", 99)
        .expect("pretend a newer build wrote it");
    drop(newer);
    let err = store::open(&dir.db(), 10).expect_err("newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    let err = store::open_reader(&dir.db()).expect_err("newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn runs_written_by_schema_version_1_read_the_same_after_the_upgrade() {
    let dir = Scratch::new("upgrade");
    let (passed, failed) = (run("weather", 1), run("weather", 3));
    {
        let store = open(&dir.db());
        for r in [passed.clone(), failed.clone()] {
            store.record_run(r).await.expect("record");
        }
        store.close().await;
    }
    // Version 1 kept the whole run as JSON, and the duration unrounded.
    let v1 = rusqlite::Connection::open(dir.db()).expect("connection");
    for r in [&passed, &failed] {
        let whole = serde_json::to_string(&r.result).expect("json");
        v1.execute(
            "UPDATE runs SET json = ?1, duration_ms = duration_ms + 0.0000004 WHERE run_id = ?2",
            rusqlite::params![whole, r.run_id],
        )
        .expect("rewrite as version 1");
    }
    v1.pragma_update(None, "user_version", 1)
        .expect("version 1");
    drop(v1);

    open(&dir.db()).close().await;
    let reader = store::open_reader(&dir.db()).expect("reader");
    assert_eq!(
        reader.recent_runs("weather", 10).expect("runs"),
        [failed.result, passed.result]
    );
}

#[tokio::test]
async fn close_and_drop_write_what_is_queued() {
    let dir = Scratch::new("flush");
    let store = open(&dir.db());
    // Queue requests without waiting for their answers.
    for n in 0..50 {
        let _ = store.record_run(run("diesel", n)).now_or_never();
    }
    store.close().await;
    let err = store
        .record_run(run("diesel", 99))
        .await
        .expect_err("closed");
    assert_eq!(err.to_string(), "store: store is closed");

    let store = open(&dir.db());
    for n in 50..80 {
        let _ = store.record_run(run("diesel", n)).now_or_never();
    }
    drop(store);

    let reader = store::open_reader(&dir.db()).expect("reader");
    assert_eq!(reader.recent_runs("diesel", 1000).expect("runs").len(), 80);
}

/// Runs older than `max_age` go, save the ones an incident refers to: its
/// post-mortem needs them.
#[tokio::test]
async fn retention_by_age_keeps_the_runs_incidents_refer_to() {
    let dir = Scratch::new("retention-age");
    let keep = store::Retention {
        runs_per_check: 10,
        max_age: Duration::from_secs(24 * 3600),
    };
    let store = store::open(&dir.db(), keep).expect("open");
    let mut declared = incident("inc_a", "diesel", 0);
    declared.run_ids = vec!["run_diesel_3".to_owned(), "run_diesel_4".to_owned()];
    store
        .commit(transition(EventKind::Declared, declared, 0, &["ops"]))
        .await
        .expect("commit");
    // Months old (fewer than `runs_per_check`, so only their age counts)...
    for n in 0..6 {
        store.record_run(run("diesel", n)).await.expect("record");
    }
    // ...and one from now, whose batch prunes the check.
    let mut recent = run("diesel", 6);
    recent.run_id = "run_diesel_recent".to_owned();
    recent.result.started_at = Utc::now();
    store.record_run(recent.clone()).await.expect("record");

    let reader = store::open_reader(&dir.db()).expect("reader");
    let kept: Vec<DateTime<Utc>> = reader
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
