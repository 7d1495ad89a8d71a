//! A `scarecrow run` daemon on loopback for the API and status-page tests:
//! a directory of its own with a config, two checks and a store, watching
//! the demo site. Killed, waited for and its directory removed when dropped.
#![allow(dead_code)]

use std::time::Duration;

use crate::common::{Reaped, free_port, run_daemon, scratch};

pub const TOKEN: &str = "api-token-for-tests";
pub const METRICS_USER: &str = "prometheus";
pub const METRICS_PASSWORD: &str = "scrape-me";

/// Fields drop in order: the daemon before its directory.
pub struct Daemon {
    child: Reaped,
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl Daemon {
    /// Starts a daemon with the critical `diesel-order` (every second) and
    /// the ordinary `weather` (every `weather_every`), an API token, basic
    /// auth on `/metrics` and a log sink; answers once it serves.
    pub async fn start(name: &str, site: &str, weather_every: &str) -> Daemon {
        let port = free_port();
        let tmp = scratch(name);
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
        let config = format!(
            r##"listen = "127.0.0.1:{port}"
shutdown_grace = "2s"
api_token = "${{secret:SCARECROW_TEST_API_TOKEN}}"

[metrics_auth]
basic = {{ username = "{METRICS_USER}", password = "${{secret:SCARECROW_TEST_METRICS_PASSWORD}}" }}

[store]
path = "data/scarecrow.db"

[[sinks]]
name = "log"
type = "log"

[roles]
coordinator = "@incident-coordinator"
communications = "@comms-duty"

[roles.owners.shop-team]
operations = "#shop-ops"
"##
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let diesel = format!(
            r#"description = "Members can order diesel"
critical = true
owner = "shop-team"
runbook = "https://wiki.example.org/runbooks/diesel-order"
every = "1s"

[[step]]
name = "open the order form"
url = "{site}/diesel/order"

[[step.expect.css]]
selector = "form#order input[name=liters]"
exists = true
"#
        );
        std::fs::write(dir.join("checks/diesel-order.toml"), diesel).expect("check");
        let weather = format!(
            r#"description = "The weather page shows the forecast"
owner = "web-team"
every = "{weather_every}"

[[step]]
name = "open the weather page"
url = "{site}/weather"
"#
        );
        std::fs::write(dir.join("checks/weather.toml"), weather).expect("check");
        let child = run_daemon(&dir.join("config.toml"))
            .env("SCARECROW_TEST_API_TOKEN", TOKEN)
            .env("SCARECROW_TEST_METRICS_PASSWORD", METRICS_PASSWORD)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start daemon");
        let d = Daemon {
            child: Reaped(child),
            dir: tmp,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        eventually("the daemon serves", 30, async || {
            let r = client.get(format!("{}/healthz", d.url)).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        d
    }

    /// `GET` of an API path with the token: status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"));
        (status, body)
    }

    /// One check as `GET /checks/{name}` shows it.
    pub async fn check(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.get(&format!("/checks/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
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
