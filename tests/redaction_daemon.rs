//! Secrets never leave the daemon: `scarecrow run` with the leaky flow of
//! tests/redaction.rs failing critically until it declares an incident, and
//! none of what a user or a receiver can see shows the secret — the status
//! page, the API, the store's file, the post-mortem, the debug logs, and the
//! Slack, PagerDuty, Alertmanager and webhook bodies. A second check's
//! session cookie, which only its cookie jar holds, is kept out of them too.

mod common;
mod redaction_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reaped, free_port, run_daemon, scratch};
use redaction_support::{
    PASSWORD, SECRET_NAME, assert_clean, check_toml, cookie_check_toml, cookie_site, leaky_site,
};

const API_TOKEN: &str = "api-token-for-redaction";

/// A receiver on loopback that records the body of every request, whatever
/// its path, and answers 202 with what PagerDuty would (the other sinks
/// take any 2xx).
#[derive(Clone)]
struct Recorder {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rec = Recorder {
            url: format!("http://{}", listener.local_addr().expect("addr")),
            bodies: Arc::default(),
        };
        let bodies = rec.bodies.clone();
        let app = axum::Router::new().fallback(move |body: String| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().expect("lock").push(body);
                (
                    axum::http::StatusCode::ACCEPTED,
                    [("content-type", "application/json")],
                    r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#,
                )
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        rec
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// Polls `f` until it answers, failing the test after `secs` seconds.
async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET url` with the API token: status and body, or `None` while nothing
/// answers (the daemon starting).
async fn try_get(url: &str) -> Option<(u16, String)> {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

async fn get(url: &str) -> (u16, String) {
    try_get(url)
        .await
        .unwrap_or_else(|| panic!("GET {url}: no answer"))
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_the_daemon_shows_or_sends_carries_the_secret() {
    let site = leaky_site().await;
    let cookie_site = cookie_site().await;
    let slack = Recorder::start().await;
    let pagerduty = Recorder::start().await;
    let alertmanager = Recorder::start().await;
    let webhook = Recorder::start().await;

    let port = free_port();
    let tmp = scratch("redaction-daemon");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
shutdown_grace = "2s"
log_level = "debug"
api_token = "${{secret:SCARECROW_TEST_API_TOKEN}}"

[store]
path = "data/scarecrow.db"

[[sinks]]
name = "slack"
type = "slack"
url = "${{secret:SCARECROW_TEST_SLACK_URL}}"

[[sinks]]
name = "pagerduty"
type = "pagerduty"
routing_key = "${{secret:SCARECROW_TEST_PD_KEY}}"
url = "{pd}/v2/enqueue"

[[sinks]]
name = "alertmanager"
type = "alertmanager"
url = "{am}"

[[sinks]]
name = "hook"
type = "webhook"
url = "{hook}/hook"
"#,
        pd = pagerduty.url,
        am = alertmanager.url,
        hook = webhook.url,
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let check = format!("every = \"1s\"\n{}", check_toml(&site));
    std::fs::write(dir.join("checks/leaky.toml"), check).expect("check");
    // A session cookie no check captures: only the run's jar knows it.
    let cookies = format!("every = \"1s\"\n{}", cookie_check_toml(&cookie_site, true));
    std::fs::write(dir.join("checks/cookies.toml"), cookies).expect("check");

    let log = std::fs::File::create(dir.join("daemon.log")).expect("log file");
    let child = run_daemon(&dir.join("config.toml"))
        .env(SECRET_NAME, PASSWORD)
        .env("SCARECROW_TEST_API_TOKEN", API_TOKEN)
        .env("SCARECROW_TEST_SLACK_URL", format!("{}/slack", slack.url))
        .env("SCARECROW_TEST_PD_KEY", "routing-key-for-redaction")
        .env_remove("RUST_LOG")
        .stderr(log)
        .spawn()
        .expect("start daemon");
    let mut daemon = Reaped(child);
    let base = format!("http://127.0.0.1:{port}");

    // Declared, and delivered to every sink.
    let id = eventually("an incident", 90, async || {
        let (status, text) = try_get(&format!("{base}/api/v1/incidents")).await?;
        let doc: serde_json::Value = (status == 200)
            .then(|| serde_json::from_str(&text).ok())
            .flatten()?;
        doc["incidents"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let receivers = [
        ("Slack", &slack),
        ("PagerDuty", &pagerduty),
        ("Alertmanager", &alertmanager),
        ("webhook", &webhook),
    ];
    for (name, rec) in receivers {
        eventually(&format!("the {name} body"), 60, async || {
            (!rec.bodies().is_empty()).then_some(())
        })
        .await;
    }

    // The status page and every API answer that shows runs or incidents.
    let (status, page) = get(&format!("{base}/")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("leaky"), "{page}");
    assert_clean("the status page", &page);
    for path in [
        "/checks".to_owned(),
        "/checks/leaky?runs=50".to_owned(),
        "/incidents".to_owned(),
        "/incidents?open=true".to_owned(),
        format!("/incidents/{id}"),
        "/config".to_owned(),
    ] {
        let (status, text) = get(&format!("{base}/api/v1{path}")).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert_clean(&format!("GET /api/v1{path}"), &text);
    }
    // The evidence is still there, with the secret cut out of it.
    let (_, incident) = get(&format!("{base}/api/v1/incidents/{id}")).await;
    assert!(incident.contains("log in"), "{incident}");
    assert!(incident.contains("[redacted]"), "{incident}");
    let (_, runs) = get(&format!("{base}/api/v1/checks/leaky?runs=50")).await;
    assert!(runs.contains("[redacted]"), "{runs}");
    let (status, runs) = get(&format!("{base}/api/v1/checks/cookies?runs=50")).await;
    assert_eq!(status, 200, "{runs}");
    assert!(runs.contains("sid=[redacted]"), "{runs}");
    assert_clean("GET /api/v1/checks/cookies?runs=50", &runs);

    // The post-mortem, in both formats, from the store the daemon writes.
    for format in ["markdown", "json"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
            .args(["postmortem", &id, "--format", format, "--config"])
            .arg(dir.join("config.toml"))
            .env(SECRET_NAME, PASSWORD)
            .env("SCARECROW_TEST_API_TOKEN", API_TOKEN)
            .env("SCARECROW_TEST_SLACK_URL", format!("{}/slack", slack.url))
            .env("SCARECROW_TEST_PD_KEY", "routing-key-for-redaction")
            .output()
            .await
            .expect("postmortem");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("[redacted]"), "{format}: {stdout}");
        assert_clean(&format!("postmortem --format {format}"), &stdout);
        assert_clean(&format!("postmortem --format {format} (stderr)"), &stderr);
    }

    // Every body each sink received.
    for (name, rec) in receivers {
        for body in rec.bodies() {
            assert_clean(&format!("the {name} body"), &body);
        }
    }

    // The store's bytes, while the daemon holds it open and once SIGTERM
    // stopped it (its write-ahead log checkpointed into the file).
    let store_bytes = || {
        ["data/scarecrow.db", "data/scarecrow.db-wal"]
            .iter()
            .filter_map(|f| std::fs::read(dir.join(f)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect::<String>()
    };
    let live = store_bytes();
    assert!(live.contains("[redacted]"), "the store holds the evidence");
    assert_clean("the store", &live);
    let pid = daemon.id().expect("pid").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let stopped = tokio::time::timeout(Duration::from_secs(30), daemon.wait()).await;
    assert!(matches!(stopped, Ok(Ok(_))), "the daemon stops on SIGTERM");
    assert_clean("the store after stopping", &store_bytes());

    // The daemon's debug logs.
    let logs = std::fs::read_to_string(dir.join("daemon.log")).expect("logs");
    assert!(logs.contains("DEBUG"), "debug logs are on: {logs}");
    assert_clean("the daemon's debug logs", &logs);
}
