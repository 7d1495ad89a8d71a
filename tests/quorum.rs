//! The incident engine judging a check by its locations: runs from two
//! locations, on a real SQLite store, declare only at the quorum, with each
//! location's last result in the evidence, and resolve below it, naming
//! the location still failing; and the engine a replica judges with alone
//! while the store is out of reach. (The replicas themselves, on
//! PostgreSQL, are in tests/postgres/locations.rs, stale.rs and alone.rs.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scarecrow::check::{Check, Outcome, Quorum, Reason, Redacted, RunRecord, RunResult, Schedule};
use scarecrow::incident::engine::{Command, Engine, EngineObserver, Policy};
use scarecrow::incident::memory::Memory;
use scarecrow::incident::store::Claimer;
use scarecrow::incident::{Event, EventKind, LocationState};
use scarecrow::store::{Backend, Store};
use tokio::sync::mpsc;

#[derive(Default)]
struct Seen(Mutex<Vec<Event>>);

impl EngineObserver for Seen {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
    fn store_up(&self, _: bool) {}
    fn incident_counts(&self, _: &std::collections::BTreeMap<String, u64>) {}
    fn folded(&self, _: &'static str) {}
}

fn policy(quorum: Quorum) -> Arc<Policy> {
    let mut check = Check {
        name: "weather".to_owned(),
        description: Some("Wetter".to_owned()),
        critical: true,
        owner: None,
        runbook: None,
        labels: Default::default(),
        // Hourly: the runs below, 30 s apart and played at once, are all
        // recent enough to count.
        schedule: Schedule::Every(Duration::from_secs(3600)),
        timeout: Duration::from_secs(10),
        steps: Vec::new(),
        incidents: Default::default(),
        connection: Default::default(),
        public_cookies: Vec::new(),
        depends_on: Vec::new(),
        locations: Vec::new(),
        source: "checks/weather.toml".into(),
    };
    check.incidents.quorum = quorum;
    Arc::new(Policy {
        check: Arc::new(check),
        maintenance: Vec::new(),
        roles: Default::default(),
    })
}

/// Run `n` of the weather check at `location`, `n` intervals from now.
fn run(location: &str, n: i64, ok: bool, base: DateTime<Utc>) -> Arc<RunRecord> {
    let outcome = match ok {
        true => Outcome::Success,
        false => Outcome::Failure {
            reason: Reason::Assertion,
            step: Some("Wetterseite".to_owned()),
            message: format!("step \"Wetterseite\": no temperature in {location}"),
        },
    };
    Arc::new(RunRecord {
        run_id: format!("run_{location}_{n}"),
        result: Redacted::vouched(RunResult {
            check: "weather".to_owned(),
            started_at: base + TimeDelta::seconds(30 * n),
            duration: Duration::from_millis(40),
            outcome,
            steps: Vec::new(),
        }),
        location: location.into(),
    })
}

/// Plays (location, n, passed) through an engine judging by location with
/// `quorum`; the events it made.
async fn play(quorum: Quorum, runs: &[(&str, i64, bool)]) -> Vec<Event> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        Store::open(&Backend::Sqlite(dir.path().join("scarecrow.db")), 100).expect("store"),
    );
    let seen = Arc::new(Seen::default());
    let (outbox, _deliveries) = mpsc::unbounded_channel();
    let engine = Engine::new(
        store,
        Default::default(),
        Vec::new(),
        outbox,
        Claimer::new(Duration::from_secs(60)),
        seen.clone(),
        "default".to_owned(),
    )
    .by_location();
    let (tx, rx) = mpsc::unbounded_channel();
    let running = tokio::spawn(engine.run(rx));
    let last = runs.iter().map(|r| r.1).max().unwrap_or(0);
    let base = Utc::now() - TimeDelta::seconds(30 * last);
    let policy = policy(quorum);
    for &(location, n, ok) in runs {
        tx.send(Command::Run {
            run: run(location, n, ok, base),
            policy: Arc::clone(&policy),
            streak: None,
        })
        .expect("send");
    }
    drop(tx);
    running.await.expect("engine");
    seen.0.lock().unwrap().clone()
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

fn states(e: &Event) -> Vec<(&str, LocationState)> {
    e.incident
        .evidence
        .locations
        .iter()
        .map(|l| (l.location.as_str(), l.state))
        .collect()
}

#[tokio::test]
async fn one_location_failing_does_not_declare_at_a_quorum_of_two() {
    let events = play(
        Quorum::Locations(2),
        &[
            ("fra", 0, false),
            ("ams", 0, true),
            ("fra", 1, false),
            ("ams", 1, true),
            ("fra", 2, false),
            ("ams", 2, true),
        ],
    )
    .await;
    assert_eq!(kinds(&events), []);
}

#[tokio::test]
async fn both_failing_declare_once_and_one_recovering_resolves_naming_the_other() {
    let events = play(
        Quorum::Locations(2),
        &[
            ("fra", 0, false),
            ("ams", 0, true),
            ("fra", 1, false),
            ("ams", 1, false),
            ("fra", 2, false),
            ("ams", 2, false),
            ("fra", 3, false),
            ("ams", 3, true),
            ("fra", 4, false),
            ("ams", 4, true),
        ],
    )
    .await;
    assert_eq!(kinds(&events), [EventKind::Declared, EventKind::Resolved]);
    let declared = &events[0];
    assert_eq!(
        states(declared),
        [
            ("ams", LocationState::Failing),
            ("fra", LocationState::Failing)
        ]
    );
    assert_eq!(
        declared.incident.evidence.run_id, "run_fra_2",
        "the latest failure of the location failing longest"
    );
    assert_eq!(
        declared.incident.first_failure_at,
        declared.incident.evidence.at - TimeDelta::seconds(60),
        "from fra's first failure, two intervals before"
    );
    let resolved = &events[1];
    assert_eq!(
        states(resolved),
        [
            ("ams", LocationState::Passing),
            ("fra", LocationState::Failing)
        ],
        "the resolution names the location still failing"
    );
}

#[tokio::test]
async fn at_a_quorum_of_one_location_interleaved_passes_elsewhere_do_not_hide_a_failure() {
    let events = play(
        Quorum::Locations(1),
        &[
            ("fra", 0, false),
            ("ams", 0, true),
            ("fra", 1, false),
            ("ams", 1, true),
        ],
    )
    .await;
    assert_eq!(kinds(&events), [EventKind::Declared]);
    assert_eq!(
        states(&events[0]),
        [
            ("ams", LocationState::Passing),
            ("fra", LocationState::Failing)
        ]
    );
}

/// The engine a replica judges with while the store is out of reach
/// (`store_down = "alone"`): its own runs decide, whatever the quorum, and
/// each outage of the store starts from zero but for an incident open.
#[tokio::test]
async fn alone_its_own_runs_decide_and_each_outage_starts_from_zero() {
    let seen = Arc::new(Seen::default());
    let (outbox, _deliveries) = mpsc::unbounded_channel();
    let engine = Engine::new(
        Arc::new(Memory),
        Default::default(),
        Vec::new(),
        outbox,
        Claimer::new(Duration::from_secs(60)),
        seen.clone(),
        "default".to_owned(),
    )
    .alone();
    let (tx, rx) = mpsc::unbounded_channel();
    let running = tokio::spawn(engine.run(rx));
    let base = Utc::now() - TimeDelta::seconds(30 * 6);
    let policy = policy(Quorum::Locations(2));
    let send = |command| tx.send(command).expect("send");
    let ran = |n, ok| Command::Run {
        run: run("fra", n, ok, base),
        policy: Arc::clone(&policy),
        streak: None,
    };
    send(ran(0, false));
    // The store came back, and went again: the failure before is forgotten.
    send(Command::FreshStart);
    send(ran(1, false));
    send(ran(2, false));
    // Again, with the incident open: it stays, and recovers.
    send(Command::FreshStart);
    send(ran(3, true));
    send(ran(4, true));
    drop(tx);
    running.await.expect("engine");
    let events = seen.0.lock().unwrap().clone();
    assert_eq!(kinds(&events), [EventKind::Declared, EventKind::Resolved]);
    assert_eq!(
        events[0].incident.evidence.run_id, "run_fra_2",
        "declared at the second failure after the fresh start, a quorum of two notwithstanding"
    );
    assert_eq!(events[0].incident.key, "scarecrow:default:weather");
}
