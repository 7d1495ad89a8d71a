//! Promises of the README about running checks, held end to end: a daemon
//! on loopback against a fixture site of its own that counts what it gets.
//! The heartbeat at most once per `every`; SIGTERM letting a run in flight
//! finish and recording it; run-now never overlapping a scheduled run;
//! `recheck`; a missing secret stopping the daemon at start.

mod common;
mod fixture;
mod running;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fixture::{Daemon, Fixture};
use running::eventually;

#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeat_pings_at_most_once_per_every() {
    let site = Fixture::start().await;
    // The scheduler ticks ten times a second for this check; the heartbeat
    // is every 3 s.
    let config = format!("[heartbeat]\nurl = \"{}/ping\"\nevery = \"3s\"\n", site.url);
    let check = format!("every = \"100ms\"\n[[step]]\nurl = \"{}/ok\"\n", site.url);
    let _d = Daemon::start("heartbeat", &config, &[("busy", &check)]).await;
    eventually("the first ping", 30, async || {
        (site.pings.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let since = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let pings = site.pings.load(Ordering::SeqCst);
    // The first ping, then one per 3 s at most in the time that passed
    // (which a loaded machine only lengthens).
    let most = 1 + since.elapsed().as_secs() / 3;
    assert!(pings as u64 <= most, "{pings} pings, at most {most}");
    assert!(pings >= 2, "it keeps pinging: {pings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_run_in_flight_finish_and_records_it() {
    let site = Fixture::start().await;
    let check = format!("every = \"2s\"\n[[step]]\nurl = \"{}/slow\"\n", site.url);
    let mut d = Daemon::start("drain", "", &[("slow", &check)]).await;
    eventually("a run in flight", 30, async || {
        (site.slow_arrived.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    // The run takes 1.5 s more; the grace period is 20 s.
    assert_eq!(d.signal("-TERM").await, Some(0), "exits 0");
    let reader = scarecrow::store::Reader::open(&scarecrow::store::Backend::Sqlite(d.db()))
        .expect("the store");
    let runs = reader.recent_runs("slow", 10).expect("runs");
    assert_eq!(runs.len(), 1, "the run in flight was recorded: {runs:?}");
    assert!(runs[0].outcome.is_success(), "and finished: {runs:?}");
    assert_eq!(site.slow_arrived.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_never_overlaps_a_scheduled_run() {
    let site = Fixture::start().await;
    let check = format!("every = \"1s\"\n[[step]]\nurl = \"{}/slow\"\n", site.url);
    let d = Daemon::start("run-now", "", &[("slow", &check)]).await;
    eventually("a scheduled run in flight", 30, async || {
        (site.slow_arrived.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    // Asked three times at once while the scheduled run is in flight: one
    // run-now waits for it and then runs; the API refuses the others (429),
    // as it spaces run-now per check.
    let client = reqwest::Client::new();
    let asks = (0..3).map(|_| {
        client
            .post(format!("{}/api/v1/checks/slow/run", d.url))
            .send()
    });
    let mut ran = 0;
    for answer in futures_util::future::join_all(asks).await {
        let answer = answer.expect("POST run");
        if answer.status() == 429 {
            continue;
        }
        assert_eq!(answer.status(), 200);
        let result: serde_json::Value =
            serde_json::from_str(&answer.text().await.expect("body")).expect("JSON");
        assert_eq!(result["result"], "success", "{result}");
        ran += 1;
    }
    assert_eq!(
        ran, 1,
        "one run-now answered with a run, the others were refused"
    );
    eventually("the next scheduled run", 30, async || {
        (site.slow_arrived.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert_eq!(
        site.slow_most_open.load(Ordering::SeqCst),
        1,
        "runs of the check never overlapped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recheck_runs_a_failed_check_once_more_before_counting_it() {
    let site = Fixture::start().await;
    // Both run only when asked to (New Year's midnight is not in a test's
    // time); one failure in a row would declare.
    let check = |path: &str, recheck: &str| {
        format!(
            "critical = true\ncron = \"0 0 1 1 *\"\n{recheck}\n[[step]]\nurl = \"{}{path}\"\n",
            site.url
        )
    };
    let (flaky, failing) = (check("/flaky", "recheck = \"1s\""), check("/fail", ""));
    let config = "[incidents]\nfailure_threshold = 1\n";
    let d = Daemon::start(
        "recheck",
        config,
        &[("flaky", &flaky), ("failing", &failing)],
    )
    .await;
    let run_now = async |name: &str| {
        let answer = reqwest::Client::new()
            .post(format!("{}/api/v1/checks/{name}/run", d.url))
            .send()
            .await
            .expect("POST run");
        assert_eq!(answer.status(), 200);
        let text = answer.text().await.expect("body");
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON")
    };
    let result = run_now("flaky").await;
    assert_eq!(result["result"], "success", "the recheck passed: {result}");
    assert_eq!(site.flaky.load(Ordering::SeqCst), 2, "asked twice");
    // The incident engine takes runs in order: once the failing check's
    // incident is there, the flaky check's run has been counted too.
    assert_eq!(run_now("failing").await["result"], "failure");
    let incidents = eventually("the failing check's incident", 30, async || {
        let text = reqwest::get(format!("{}/api/v1/incidents", d.url))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let body: serde_json::Value = serde_json::from_str(&text).ok()?;
        let list = body["incidents"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    })
    .await;
    let checks: Vec<&str> = incidents
        .iter()
        .filter_map(|i| i["feature"]["check"].as_str())
        .collect();
    assert_eq!(
        checks,
        ["failing"],
        "the rechecked failure declared nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_stops_the_daemon_at_start() {
    let site = Fixture::start().await;
    let check = format!("every = \"1s\"\n[[step]]\nurl = \"{}/ok\"\n", site.url);
    for (what, config) in [
        (
            "the API token",
            "api_token = \"${secret:SCARECROW_TEST_UNSET_TOKEN}\"\n".to_owned(),
        ),
        (
            "a sink's secret",
            format!(
                "[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}/hook\"\nsecrets = [\"${{secret:SCARECROW_TEST_UNSET_TOKEN}}\"]\n",
                site.url
            ),
        ),
    ] {
        let dir = fixture::write("missing-secret", &config, &[("ok", &check)]);
        let child = common::run_daemon(&dir.path().join("config.toml"))
            .env_remove("SCARECROW_TEST_UNSET_TOKEN")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start daemon");
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what}: the daemon kept running"))
            .expect("wait");
        let log = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {log}");
        assert!(log.contains("SCARECROW_TEST_UNSET_TOKEN"), "{what}: {log}");
        assert_eq!(site.ok.load(Ordering::SeqCst), 0, "{what}: nothing ran");
    }
}
