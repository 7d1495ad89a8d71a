//! The daemon's log at default settings: a check's first pass, each failure
//! and each recovery, not every pass; `log_level` in `config.toml` and
//! `RUST_LOG` over it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reaped, Site, free_port, run_daemon};
use tokio::io::AsyncBufReadExt as _;

/// A daemon whose stderr lines are collected as they come.
struct Logged {
    child: Reaped,
    lines: Arc<Mutex<Vec<String>>>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Logged {
    async fn start(site: &Site, log_level: Option<&str>, rust_log: Option<&str>) -> Logged {
        let port = free_port();
        let dir = common::scratch("logs");
        std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
        let level = log_level
            .map(|l| format!("log_level = \"{l}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "{level}listen = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n",
                dir.path().join("store.db").display()
            ),
        )
        .expect("config");
        std::fs::write(
            dir.path().join("checks/diesel.toml"),
            format!(
                "every = \"1s\"\n[[step]]\nname = \"open\"\nurl = \"{}/diesel/order\"\n[[step.expect.css]]\nselector = \"form#order input[name=liters]\"\nexists = true\n",
                site.url
            ),
        )
        .expect("check");
        let mut command = run_daemon(&dir.path().join("config.toml"));
        command.stderr(std::process::Stdio::piped());
        match rust_log {
            Some(spec) => command.env("RUST_LOG", spec),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command.spawn().expect("daemon");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("lines").push(line);
            }
        });
        Logged {
            child: Reaped(child),
            lines,
            port,
            _dir: dir,
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn text(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Polls until `f` holds, with a deadline a loaded machine meets.
    async fn until(&self, what: &str, f: impl Fn(&Logged) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !f(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Passing runs so far, from `/metrics`.
    async fn passes(&self) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = match reqwest::get(url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .find_map(|l| {
                l.strip_prefix(r#"scarecrow_check_runs_total{check="diesel",result="success"} "#)?
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    async fn until_passes(&self, n: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.passes().await < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} passes:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_default_settings_the_first_pass_each_failure_and_each_recovery_are_logged() {
    let site = Site::start().await;
    let d = Logged::start(&site, None, None).await;
    d.until_passes(3.0).await;
    assert_eq!(
        d.count("INFO"),
        2,
        "start-up and the first pass only:\n{}",
        d.text()
    );
    assert_eq!(d.count("check passed check=diesel"), 1, "{}", d.text());
    assert_eq!(d.count("scarecrow running"), 1, "{}", d.text());

    site.switch("break", "diesel", "").await;
    d.until("a failure", |d| {
        d.count("WARN") > 0 && d.count("check failed") > 0
    })
    .await;
    site.switch("fix", "diesel", "").await;
    d.until("the recovery", |d| {
        d.count("check recovered check=diesel") == 1
    })
    .await;
    let passes = d.passes().await;
    d.until_passes(passes + 2.0).await;
    assert_eq!(d.count("check passed"), 1, "{}", d.text());
    assert_eq!(d.count("check recovered"), 1, "{}", d.text());
    drop(d.child);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_level_in_config_toml_sets_the_level_and_rust_log_overrides_it() {
    let site = Site::start().await;
    let quiet = Logged::start(&site, Some("warn"), None).await;
    quiet.until_passes(2.0).await;
    assert_eq!(quiet.count("INFO"), 0, "{}", quiet.text());

    let chatty = Logged::start(&site, Some("warn"), Some("debug")).await;
    chatty
        .until("a pass at debug after the first", |d| {
            d.count("DEBUG") > 0 && d.count("check passed") >= 2
        })
        .await;
}
