//! `scarecrow run` as a daemon: schedules, `/metrics`, `/healthz`, SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Site, free_port};

/// A config and two fast checks in a temporary directory, removed when
/// dropped; the heartbeat goes to `ping`.
fn setup(site: &str, port: u16, ping: &str) -> tempfile::TempDir {
    let tmp = common::scratch("daemon");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n[heartbeat]\nurl = \"{ping}\"\nevery = \"1s\"\n"),
    )
    .expect("config");
    std::fs::write(
        dir.join("checks/diesel-order.toml"),
        format!(
            "every = \"1s\"\ncritical = true\nlabels = {{ site = \"shop\" }}\n[[step]]\nurl = \"{site}/diesel/order\"\n[[step.expect.css]]\nselector = \"form#order input[name=liters]\"\nexists = true\n"
        ),
    )
    .expect("check");
    std::fs::write(
        dir.join("checks/weather.toml"),
        format!("every = \"1s\"\n[[step]]\nurl = \"{site}/weather\"\n"),
    )
    .expect("check");
    std::fs::write(dir.join("checks/broken.toml"), "every = 5\n").expect("broken check");
    tmp
}

/// A dead-man's-switch endpoint that counts its pings.
async fn heartbeat_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let pings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pings.clone();
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::get(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "OK" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, pings)
}

async fn scrape(client: &reqwest::Client, port: u16) -> String {
    match client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of one sample line in the exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_for(
    client: &reqwest::Client,
    port: u16,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(client, port).await;
        if ok(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_checks_exposes_metrics_and_stops_on_sigterm() {
    let site = Site::start().await;
    let port = free_port();
    let (ping, pings) = heartbeat_receiver().await;
    let dir = setup(&site.url, port, &ping);
    // Declared after `dir`, so dropped (killed and waited for) before it.
    let mut daemon = common::Reaped(
        common::run_daemon(&dir.path().join("config.toml"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start daemon"),
    );
    let client = reqwest::Client::new();

    let up = r#"scarecrow_check_up{check="diesel-order"}"#;
    let text = wait_for(&client, port, "diesel-order up", |t| {
        sample(t, up) == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&text, "scarecrow_checks_loaded"),
        Some(2.0),
        "the broken file does not stop the others"
    );
    assert!(
        text.contains(
            r#"scarecrow_check_info{check="diesel-order",critical="true",label_site="shop"} 1"#
        ),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"scarecrow_check_failures_total{check="diesel-order",reason="assertion"}"#
        ),
        None,
        "a reason shows from its first failure"
    );

    site.switch("break", "diesel", "").await;
    let failures = r#"scarecrow_check_failures_total{check="diesel-order",reason="assertion"}"#;
    let text = wait_for(&client, port, "diesel-order down", |t| {
        sample(t, up) == Some(0.0) && sample(t, failures) >= Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&text, r#"scarecrow_check_up{check="weather"}"#),
        Some(1.0)
    );
    assert!(
        sample(&text, "scarecrow_scheduler_lateness_seconds_count") >= Some(2.0),
        "{text}"
    );

    // The scheduler's progress pings the dead-man's switch; /readyz is ready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while pings.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no heartbeat");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);

    let health = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .status()
        .await
        .expect("healthcheck");
    assert!(health.success());

    let log = stop(&mut daemon, 10).await;
    assert!(
        log.contains("broken.toml:1:9"),
        "the broken file is logged with its position:\n{log}"
    );
    assert!(log.contains("stopped"), "{log}");

    let after = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .stderr(Stdio::null())
        .status()
        .await
        .expect("healthcheck");
    assert_eq!(
        after.code(),
        Some(1),
        "healthcheck fails once the daemon is gone"
    );
}

/// A check file with a timeout near `u64::MAX` seconds is refused at load
/// with its position: it used to load, panic at its first run (an instant
/// overflow) and leave the check "running" for good. The other checks run.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_timeout_is_refused_at_load_and_the_other_checks_run() {
    let site = Site::start().await;
    let port = free_port();
    let tmp = common::scratch("daemon-huge-timeout");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n"),
    )
    .expect("config");
    std::fs::write(
        dir.join("checks/huge.toml"),
        format!(
            "every = \"1s\"\ntimeout = \"18446744073709551615s\"\n[[step]]\nurl = \"{}/weather\"\n",
            site.url
        ),
    )
    .expect("check");
    std::fs::write(
        dir.join("checks/weather.toml"),
        format!("every = \"1s\"\n[[step]]\nurl = \"{}/weather\"\n", site.url),
    )
    .expect("check");
    let mut daemon = common::Reaped(
        common::run_daemon(&dir.join("config.toml"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start daemon"),
    );
    let client = reqwest::Client::new();
    let text = wait_for(&client, port, "weather up", |t| {
        sample(t, r#"scarecrow_check_up{check="weather"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&text, "scarecrow_checks_loaded"),
        Some(1.0),
        "{text}"
    );

    let log = stop(&mut daemon, 20).await;
    assert!(
        log.contains("duration \"18446744073709551615s\" is too long"),
        "{log}"
    );
    assert!(log.contains("huge.toml:2:11"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// `scarecrow healthcheck` with no daemon says that nothing answers there,
/// not only that sending a request failed.
#[tokio::test]
async fn healthcheck_without_a_daemon_says_nothing_answers() {
    let url = format!("http://127.0.0.1:{}/healthz", free_port());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["healthcheck", "--url", &url])
        .output()
        .await
        .expect("healthcheck");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!("unhealthy: no scarecrow answers at {url} (connection refused)")
    );
}

/// Stops `daemon` with SIGTERM, asserts it exits 0 within `secs`, and
/// returns what it logged.
async fn stop(daemon: &mut tokio::process::Child, secs: u64) -> String {
    let pid = daemon.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(secs), daemon.wait())
        .await
        .expect("exits within the grace period")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    if let Some(mut err) = daemon.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        let _ = err.read_to_string(&mut log).await;
    }
    log
}
