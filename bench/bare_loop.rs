//! The bare loop `bench/run.sh` measures scarecrow against: tokio + reqwest
//! doing what a simple check does (GET, status, body regex) with a fresh
//! connection per request, at a fixed concurrency, for a bounded time. No
//! scheduler, assertions engine, metrics or logs: the floor of our stack.
//!
//! ```text
//! cargo run --release --example bare_loop -- URL REGEX [CONCURRENCY] [SECONDS] [WARMUP] [RATE]
//! ```
//!
//! RATE (checks per second, all workers together; 0 = as fast as it goes)
//! paces the loop like the daemon's scheduler paces its checks.
//!
//! Prints one line: the checks and failures counted after the warm-up, the
//! window's length, and the process's own CPU over the window in clock ticks
//! (`utime + stime` from `/proc/self/stat`, as the harness reads the daemon's).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

struct Args {
    url: reqwest::Url,
    pattern: regex::Regex,
    concurrency: usize,
    window: Duration,
    warmup: Duration,
    /// Each worker's interval between checks; zero when unpaced.
    period: Duration,
}

fn args() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [url, pattern, rest @ ..] = argv.as_slice() else {
        return Err("usage: bare_loop URL REGEX [CONCURRENCY] [SECONDS] [WARMUP] [RATE]".into());
    };
    let number = |i: usize, default: u64| -> Result<u64, String> {
        rest.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("argument {s:?}: {e}"))
        })
    };
    let concurrency = number(0, 32)?.clamp(1, 4096);
    let rate = number(3, 0)?.min(1_000_000);
    Ok(Args {
        url: url.parse().map_err(|e| format!("URL {url:?}: {e}"))?,
        pattern: regex::Regex::new(pattern).map_err(|e| format!("regex: {e}"))?,
        concurrency: usize::try_from(concurrency).unwrap_or(32),
        window: Duration::from_secs(number(1, 10)?.clamp(1, 3600)),
        warmup: Duration::from_secs(number(2, 2)?.min(60)),
        period: match rate {
            0 => Duration::ZERO,
            r => Duration::from_secs_f64(concurrency as f64 / r as f64),
        },
    })
}

/// This process's user + system CPU in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// One check: a new connection, GET, a 2xx status, the body matching.
async fn check(client: &reqwest::Client, url: &reqwest::Url, pattern: &regex::Regex) -> bool {
    let Ok(response) = client.get(url.clone()).send().await else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    response
        .text()
        .await
        .is_ok_and(|body| pattern.is_match(&body))
}

/// The daemon's allocator, so that the ratio compares work, not mallocs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot build the client: {e}");
            return ExitCode::from(2);
        }
    };
    let (passed, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let end = Instant::now() + args.warmup + args.window;
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..args.concurrency {
        let (client, args, passed, failed) = (
            client.clone(),
            Arc::clone(&args),
            Arc::clone(&passed),
            Arc::clone(&failed),
        );
        workers.spawn(async move {
            // Paced workers start spread over one period, as the daemon spreads checks.
            let mut next = Instant::now() + args.period * i as u32 / args.concurrency as u32;
            while Instant::now() < end {
                if !args.period.is_zero() {
                    tokio::time::sleep_until(next).await;
                    next += args.period;
                }
                let counter = match check(&client, &args.url, &args.pattern).await {
                    true => &passed,
                    false => &failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let snapshot = || {
        (
            passed.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            cpu_ticks().unwrap_or(0),
            Instant::now(),
        )
    };
    tokio::time::sleep(args.warmup).await;
    let (p0, f0, c0, t0) = snapshot();
    tokio::time::sleep_until(end).await;
    let (p1, f1, c1, t1) = snapshot();
    workers.shutdown().await;
    let seconds = (t1 - t0).as_secs_f64();
    let checks = p1 - p0 + f1 - f0;
    println!(
        "checks={checks} failures={} seconds={seconds:.3} checks_per_s={:.0} cpu_ticks={}",
        f1 - f0,
        checks as f64 / seconds,
        c1.saturating_sub(c0)
    );
    if f1 > f0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
