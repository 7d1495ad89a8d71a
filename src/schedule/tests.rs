//! The scheduler against a real loopback site: runs of a check never
//! overlap, due runs are skipped (and counted in a streak) while one is
//! going, a changed check runs its new definition, a rescheduled one leaves
//! its old schedule, a removed one stops, and shutdown cancels a hung run
//! once the grace period is over.

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::config::{Defaults, load_checks};
use crate::probe::ProbeSettings;

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Started,
    Skipped(u32),
    Finished {
        url: String,
        started_at: DateTime<Utc>,
    },
}

/// Every event, with when it was observed.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Instant, String, Seen)>>,
}

impl Recorder {
    fn push(&self, check: &str, seen: Seen) {
        self.events
            .lock()
            .expect("recorder")
            .push((Instant::now(), check.to_owned(), seen));
    }

    fn of(&self, check: &str) -> Vec<(Instant, Seen)> {
        let events = self.events.lock().expect("recorder");
        events
            .iter()
            .filter(|(_, c, _)| c == check)
            .map(|(at, _, seen)| (*at, seen.clone()))
            .collect()
    }
}

impl Observer for Recorder {
    fn started(&self, check: &Check, _lateness: Duration) {
        self.push(&check.name, Seen::Started);
    }

    fn skipped(&self, check: &Check, streak: u32) {
        self.push(&check.name, Seen::Skipped(streak));
    }

    fn finished(&self, check: &Arc<Check>, result: Redacted<RunResult>, _counted: bool) {
        let url = result
            .steps
            .first()
            .map(|s| s.url.clone())
            .unwrap_or_default();
        let started_at = result.started_at;
        self.push(&check.name, Seen::Finished { url, started_at });
    }

    fn planned(&self, _plans: &[(Arc<str>, Option<DateTime<Utc>>)]) {}

    fn ticked(&self) {}
}

/// Serves `/slow` (250 ms, counting how many requests are open at once),
/// `/fast` and `/other` (at once) and `/hang` (never, in a test's time).
async fn site() -> (String, Arc<AtomicUsize>) {
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counted = Arc::clone(&most);
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(move || {
                let (open, most) = (Arc::clone(&open), Arc::clone(&most));
                async move {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                    "slow"
                }
            }),
        )
        .route("/fast", axum::routing::get(|| async { "fast" }))
        .route("/other", axum::routing::get(|| async { "other" }))
        .route(
            "/hang",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, counted)
}

/// Checks from check files, as the daemon loads them.
fn checks(files: &[(&str, String)]) -> Vec<Arc<Check>> {
    let dir = tempfile::Builder::new()
        .prefix("scarecrow-test-schedule-")
        .tempdir()
        .expect("scratch dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).expect("check file");
    }
    let loaded = load_checks(&[dir.path().to_path_buf()], &Defaults::default(), &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.checks.into_iter().map(Arc::new).collect()
}

fn check_file(every: &str, url: &str) -> String {
    format!("every = \"{every}\"\n[[step]]\nurl = \"{url}\"\n")
}

fn start(
    checks: Vec<Arc<Check>>,
) -> (
    Arc<Recorder>,
    mpsc::UnboundedSender<Request>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let recorder = Arc::new(Recorder::default());
    let probe = Probe::new(ProbeSettings::default()).expect("probe");
    let observer: Arc<dyn Observer> = recorder.clone();
    let scheduler = Scheduler::new(probe, observer, 8, Duration::from_secs(2));
    let (tx, rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(checks, rx, shutdown.clone()));
    (recorder, tx, shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_still_going_makes_due_runs_skip_in_a_counted_streak() {
    let (url, most_open) = site().await;
    let checks = checks(&[("slow", check_file("100ms", &format!("{url}/slow")))]);
    let (recorder, _tx, shutdown, task) = start(checks);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    shutdown.cancel();
    task.await.expect("scheduler");

    assert_eq!(
        most_open.load(Ordering::SeqCst),
        1,
        "runs of one check never overlap"
    );
    let events = recorder.of("slow");
    let finished = events
        .iter()
        .filter(|(_, e)| matches!(e, Seen::Finished { .. }))
        .count();
    assert!(finished >= 3, "{events:?}");
    // Every skip continues the streak since the last run started.
    let mut next_streak = 1;
    let mut skips = 0;
    for (_, seen) in &events {
        match seen {
            Seen::Started => next_streak = 1,
            Seen::Skipped(n) => {
                assert_eq!(*n, next_streak, "{events:?}");
                next_streak += 1;
                skips += 1;
            }
            Seen::Finished { .. } => {}
        }
    }
    assert!(skips >= finished, "a 250 ms run every 100 ms: {events:?}");
}

/// Waits until the scheduler has taken in every request sent before: it
/// handles them in order, and answers a run of an unknown check at once.
async fn taken_in(tx: &mpsc::UnboundedSender<Request>) {
    let (reply, answer) = oneshot::channel();
    tx.send(Request::RunNow {
        name: "no-such-check".to_owned(),
        reply,
    })
    .expect("barrier");
    let answered = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("the scheduler answers");
    assert!(matches!(answered, Ok(Err(_))), "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_check_runs_its_new_definition_and_a_removed_one_stops() {
    let (url, _) = site().await;
    let checks = checks(&[("quick", check_file("10ms", &format!("{url}/fast")))]);
    let (recorder, tx, shutdown, task) = start(checks);

    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Request::Upsert(checks_changed(&url)))
        .expect("upsert");
    taken_in(&tx).await;
    let changed_at = Utc::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Request::Remove("quick".to_owned()))
        .expect("remove");
    taken_in(&tx).await;
    let removed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    task.await.expect("scheduler");

    let events = recorder.of("quick");
    let runs: Vec<(&str, DateTime<Utc>)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Seen::Finished { url, started_at } => Some((url.as_str(), *started_at)),
            _ => None,
        })
        .collect();
    assert!(
        runs.iter()
            .any(|(u, at)| u.ends_with("/fast") && *at < changed_at),
        "{runs:?}"
    );
    // Runs never overlap, so at most one run (that took its definition
    // before the change was taken in) may start after it with the old one.
    let after: Vec<&str> = runs
        .iter()
        .filter(|(_, at)| *at > changed_at)
        .map(|(u, _)| *u)
        .collect();
    assert!(
        after.iter().skip(1).all(|u| u.ends_with("/other")),
        "runs after the change: {runs:?}"
    );
    assert!(
        runs.iter().filter(|(u, _)| u.ends_with("/other")).count() >= 3,
        "every 10 ms for 300 ms: {runs:?}"
    );
    // Likewise one run past its last look at the schedule may still start.
    let late = events
        .iter()
        .filter(|(at, e)| *e == Seen::Started && *at > removed_at)
        .count();
    assert!(late <= 1, "runs started after the removal: {events:?}");
}

/// `quick` with a new target and the same schedule: it keeps its place.
fn checks_changed(url: &str) -> Arc<Check> {
    let mut changed = checks(&[("quick", check_file("10ms", &format!("{url}/other")))]);
    changed.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_out_the_grace_period_then_cancels_a_hung_run() {
    let (url, _) = site().await;
    let file = format!(
        "timeout = \"1h\"\n{}",
        check_file("100ms", &format!("{url}/hang"))
    );
    let (recorder, _tx, shutdown, task) = start(checks(&[("hung", file)]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.of("hung").is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopping = Instant::now();
    shutdown.cancel();
    // The grace period is 2 s; the run would go on for an hour.
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the scheduler stops after the grace period")
        .expect("scheduler");
    assert!(
        stopping.elapsed() >= Duration::from_secs(2),
        "the run had its grace period: stopped after {:?}",
        stopping.elapsed()
    );
    let events = recorder.of("hung");
    assert!(
        !events
            .iter()
            .any(|(_, e)| matches!(e, Seen::Finished { .. })),
        "the cancelled run reports nothing: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescheduled_check_leaves_its_old_schedule() {
    let (url, _) = site().await;
    let (recorder, tx, shutdown, task) = start(checks(&[(
        "slowed",
        check_file("20ms", &format!("{url}/fast")),
    )]));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut hourly = checks(&[("slowed", check_file("1h", &format!("{url}/fast")))]);
    tx.send(Request::Upsert(hourly.remove(0))).expect("upsert");
    taken_in(&tx).await;
    let changed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    task.await.expect("scheduler");

    let events = recorder.of("slowed");
    let before = events.iter().filter(|(_, e)| *e == Seen::Started).count();
    assert!(before >= 3, "every 20 ms for 300 ms: {events:?}");
    // Its first hourly run falls later in the hour (its phase): a run
    // starting after the change has been taken in is one of the old schedule
    // (save one already past its look at the schedule then).
    let after = events
        .iter()
        .filter(|(at, e)| *e == Seen::Started && *at > changed_at)
        .count();
    assert!(after <= 1, "runs on the old schedule: {events:?}");
}
