//! How many runs a second the store's writer takes, probing left out: N
//! runs (1,000,000 by default) of 100 one-step checks queued as the daemon
//! queues them, then the store closed (everything written). Prints the
//! runs per second and the process's CPU per run; bench/run.sh `writes`
//! runs it against SQLite and against its PostgreSQL cluster.
//!
//!   cargo run --release --example store_writes -- N sqlite:PATH
//!   PGPASSWORD=… cargo run --release --example store_writes -- N postgres://user@host:port/db [PREFIX]
//!
//! PREFIX (default `c`) starts the checks' names: two processes with
//! different prefixes on one PostgreSQL store are two replicas writing
//! the checks each owns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scarecrow::check::{
    HttpStep, Outcome, Phases, Reason, Redacted, RunRecord, RunResult, StepDetail, StepResult,
};
use scarecrow::store::postgres::{Connect, SslMode};
use scarecrow::store::{Backend, Retention, Store};

const CHECKS: usize = 100;

fn run(prefix: &str, n: usize, started_at: chrono::DateTime<chrono::Utc>) -> RunRecord {
    let failing = n.is_multiple_of(3);
    let result = RunResult {
        check: format!("{prefix}{:05}", n % CHECKS),
        started_at,
        duration: Duration::from_micros(1042),
        outcome: if failing {
            Outcome::Failure {
                reason: Reason::Assertion,
                step: Some("market page".to_owned()),
                message: "status: expected 200, got 502".to_owned(),
            }
        } else {
            Outcome::Success
        },
        steps: vec![StepResult {
            name: "market page".to_owned(),
            url: "http://127.0.0.1:18080/small.html".to_owned(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".to_owned(),
                status: Some(if failing { 502 } else { 200 }),
                phases: Phases {
                    ttfb: Some(Duration::from_micros(800)),
                    ..Phases::default()
                },
                ..HttpStep::default()
            }),
            duration: Duration::from_micros(1042),
            attempts: 1,
            failures: vec![],
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: None,
        }],
    };
    RunRecord {
        run_id: uuid::Uuid::now_v7().to_string(),
        result: Redacted::vouched(result),
        location: "default".into(),
    }
}

/// utime + stime of this process, in seconds.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let target = args
        .next()
        .unwrap_or_else(|| "sqlite:/tmp/store_writes.db".to_owned());
    let prefix = args.next().unwrap_or_else(|| "c".to_owned());
    let backend = match target.strip_prefix("sqlite:") {
        Some(path) => Backend::Sqlite(path.into()),
        None => Backend::Postgres(
            Connect::new(
                &target,
                std::env::var("PGPASSWORD").ok(),
                SslMode::Disable,
                None,
            )
            .map_err(anyhow::Error::msg)?,
        ),
    };
    let store = Store::open(&backend, Retention::from(1000))?;
    // Built first: what is measured is the store, not making records.
    let now = chrono::Utc::now();
    let runs: Vec<Arc<RunRecord>> = (0..n)
        .map(|i| {
            Arc::new(run(
                &prefix,
                i,
                now + chrono::TimeDelta::microseconds(i as i64),
            ))
        })
        .collect();
    let (t0, c0) = (Instant::now(), cpu());
    // Paced in slices of 10,000, as a busy daemon queues them.
    for chunk in runs.chunks(10_000) {
        for r in chunk {
            store.queue_run(r.clone())?;
        }
        tokio::task::yield_now().await;
    }
    store.close().await;
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu() - c0);
    anyhow::ensure!(store.is_healthy(), "a write failed");
    println!(
        "{backend}: {n} runs written in {secs:.2} s, {:.0} runs/s, {:.1} µs of this process's CPU per run",
        n as f64 / secs,
        cpu * 1e6 / n as f64
    );
    Ok(())
}
