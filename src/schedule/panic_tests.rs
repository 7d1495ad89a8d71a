//! A run that panics: it is a failed run with reason `internal`, the
//! check's slot is freed (run-now answers, the next due run starts) and the
//! scheduler keeps going. The runner here panics on purpose: no input is
//! known that still makes the probe panic.

use super::*;
use crate::config::{Defaults, load_checks};

/// Panics in every run of `bomb`, after an await as a real run would;
/// every other check passes at once.
struct Bomb;

impl Runner for Bomb {
    fn run(&self, check: &Check) -> impl Future<Output = Redacted<RunResult>> + Send {
        let name = check.name.clone();
        async move {
            tokio::task::yield_now().await;
            assert!(name != "bomb", "a bug in a run of {name}");
            Redacted::vouched(RunResult {
                check: name,
                started_at: Utc::now(),
                duration: Duration::ZERO,
                outcome: Outcome::Success,
                steps: Vec::new(),
            })
        }
    }
}

/// The counted results, by check.
#[derive(Default)]
struct Finished(Mutex<Vec<(String, Outcome)>>);

impl Finished {
    fn of(&self, check: &str) -> Vec<Outcome> {
        let all = self.0.lock().expect("finished");
        all.iter()
            .filter(|(c, _)| c == check)
            .map(|(_, o)| o.clone())
            .collect()
    }
}

impl Observer for Finished {
    fn started(&self, _check: &Check, _lateness: Duration) {}
    fn skipped(&self, _check: &Check, _streak: u32) {}
    fn finished(&self, check: &Arc<Check>, result: Redacted<RunResult>, counted: bool) {
        if counted {
            let mut all = self.0.lock().expect("finished");
            all.push((check.name.clone(), result.outcome.clone()));
        }
    }
    fn planned(&self, _plans: &[(Arc<str>, Option<DateTime<Utc>>)]) {}
    fn ticked(&self) {}
}

fn checks(files: &[(&str, &str)]) -> Vec<Arc<Check>> {
    let dir = tempfile::Builder::new()
        .prefix("scarecrow-test-panic-")
        .tempdir()
        .expect("scratch dir");
    for (name, every) in files {
        let text = format!("every = \"{every}\"\n[[step]]\nurl = \"http://127.0.0.1:9/\"\n");
        std::fs::write(dir.path().join(format!("{name}.toml")), text).expect("check file");
    }
    let loaded = load_checks(&[dir.path().to_path_buf()], &Defaults::default(), &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.checks.into_iter().map(Arc::new).collect()
}

fn is_internal(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Failure {
            reason: Reason::Internal,
            ..
        }
    )
}

/// Asks for a run now and waits for the answer, with a deadline a loaded
/// machine meets: before the fix, the answer never came.
async fn run_now(tx: &mpsc::UnboundedSender<Request>, name: &str) -> Redacted<RunResult> {
    let (reply, answer) = oneshot::channel();
    let name = name.to_owned();
    tx.send(Request::RunNow { name, reply }).expect("scheduler");
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("run-now answers")
        .expect("reply")
        .expect("a result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_run_fails_as_internal_and_frees_its_slot() {
    let observer = Arc::new(Finished::default());
    let scheduler = Scheduler::new(Bomb, observer.clone(), 8, Duration::from_secs(2));
    let (tx, rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let checks = checks(&[("bomb", "1h"), ("calm", "1h")]);
    let task = tokio::spawn(scheduler.run(checks, rx, shutdown.clone()));

    for _ in 0..2 {
        let result = run_now(&tx, "bomb").await;
        assert!(is_internal(&result.outcome), "{result:?}");
        assert_eq!(result.check, "bomb");
    }
    assert!(run_now(&tx, "calm").await.outcome.is_success());
    // The observer hears of a run just after its waiters do.
    let deadline = Instant::now() + Duration::from_secs(30);
    while observer.of("bomb").len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", observer.of("bomb"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(observer.of("bomb").iter().all(is_internal));

    shutdown.cancel();
    task.await.expect("the scheduler ends without a panic");
}

/// Scheduled runs too: each due run of a check whose runs panic starts,
/// because the one before freed the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_go_on_after_a_panic() {
    let observer = Arc::new(Finished::default());
    let scheduler = Scheduler::new(Bomb, observer.clone(), 8, Duration::from_secs(2));
    let (_tx, rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(checks(&[("bomb", "50ms")]), rx, shutdown.clone()));

    let deadline = Instant::now() + Duration::from_secs(30);
    while observer.of("bomb").len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", observer.of("bomb"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(observer.of("bomb").iter().all(is_internal));
    shutdown.cancel();
    task.await.expect("the scheduler ends without a panic");
}
