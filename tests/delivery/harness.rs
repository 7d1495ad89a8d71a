//! A daemon with many small critical checks against a loopback port, the
//! sinks a test names, and its metrics read over HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{self, Reaped, free_port, run_daemon};

/// A daemon in its own directory. Fields drop in order: the daemon before
/// its directory.
pub struct Daemon {
    child: Option<Reaped>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    env: Vec<(String, String)>,
}

/// The name of the `n`th check.
pub fn check(n: usize) -> String {
    format!("feature-{n:03}")
}

impl Daemon {
    /// `checks` critical checks, each fetching `target` every second, and
    /// `sinks` (TOML `[[sinks]]` tables) to declare to.
    pub fn setup(name: &str, sinks: &str, checks: usize, target: &str) -> Daemon {
        let port = free_port();
        let tmp = common::scratch(&format!("delivery-{name}"));
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\nconcurrency = 256\n\n\
             [store]\npath = \"data/scarecrow.db\"\n\n{sinks}"
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        for n in 0..checks {
            let check = format!(
                "critical = true\nevery = \"1s\"\ntimeout = \"2s\"\n\n\
                 [[step]]\nname = \"home\"\nurl = \"{target}/\"\n"
            );
            std::fs::write(dir.join(format!("checks/{}.toml", self::check(n))), check)
                .expect("check");
        }
        Daemon {
            child: None,
            dir: tmp,
            port,
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of the daemon (a sink's secret).
    pub fn env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_owned(), value.to_owned()));
    }

    pub fn start(&mut self) {
        let mut command = run_daemon(&self.dir.path().join("config.toml"));
        command.env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(Reaped(command.spawn().expect("start daemon")));
    }

    /// SIGTERM, and the exit code once it stopped.
    pub async fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    pub async fn metrics(&self) -> Option<String> {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// One series' value, e.g. `scarecrow_store_up`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        value(&self.metrics().await?, series)
    }
}

/// The value of `series` in a `/metrics` text.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of every series of `family` whose labels contain `labels`
/// (`sink="hook"`); 0 when there is none.
pub fn sum(text: &str, family: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `f` until it answers, failing the test after `secs` seconds.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback URL nothing answers at (checks of it fail at once) until
/// [`Target::up`] serves it.
pub struct Target {
    pub url: String,
    port: u16,
}

impl Target {
    pub fn down() -> Target {
        let port = free_port();
        Target {
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// Serves 200 at the URL from now on.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the target's port");
        let app = axum::Router::new().fallback(async || "ok");
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

/// A `[[sinks]]` table of a webhook sink named `hook`.
pub fn webhook(url: &str) -> String {
    format!("[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n")
}

/// One post an Alertmanager got: when, and the alerts in it.
#[derive(Debug, Clone)]
pub struct Post {
    pub at: tokio::time::Instant,
    pub alerts: serde_json::Value,
}

/// A fake Alertmanager on loopback: takes `POST /api/v2/alerts` and records
/// the alerts.
#[derive(Clone, Default)]
pub struct Alertmanager {
    pub url: String,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Alertmanager {
    pub async fn start() -> Alertmanager {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let am = Alertmanager {
            url: format!("http://{}", listener.local_addr().expect("addr")),
            posts: Arc::default(),
        };
        let posts = am.posts.clone();
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            axum::routing::post(move |body: String| {
                let posts = posts.clone();
                async move {
                    let alerts = serde_json::from_str(&body).unwrap_or_default();
                    posts.lock().expect("lock").push(Post {
                        at: tokio::time::Instant::now(),
                        alerts,
                    });
                    ""
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        am
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("lock").clone()
    }
}
