//! Shared by the end-to-end tests: the demo site on loopback and the CLI.
#![allow(dead_code)]

pub mod postgres;
pub mod tools;

use std::path::Path;
use std::process::Output;

/// The demo site served on a free loopback port for the life of the test.
pub struct Site {
    pub url: String,
    client: reqwest::Client,
}

impl Site {
    pub async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(scarecrow::demo::DemoSite::new().serve(listener, std::future::pending()));
        Site {
            url,
            client: reqwest::Client::new(),
        }
    }

    /// Flips a break/fix switch, e.g. `("break", "diesel", "")`.
    pub async fn switch(&self, action: &str, feature: &str, query: &str) {
        let resp = self
            .client
            .post(format!("{}/_demo/{action}/{feature}{query}", self.url))
            .send()
            .await
            .expect("switch");
        assert!(
            resp.status().is_success(),
            "{action} {feature}: {}",
            resp.status()
        );
    }
}

/// Runs the scarecrow binary from the repository root, against `site`.
pub async fn scarecrow(site: &Site, args: &[&str]) -> Output {
    scarecrow_in(Path::new(env!("CARGO_MANIFEST_DIR")), &site.url, args).await
}

pub async fn scarecrow_in(dir: &Path, site_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(args)
        .current_dir(dir)
        .env("SCARECROW_SITE", site_url)
        .env("SCARECROW_DEMO_PASSWORD", scarecrow::demo::DEMO_PASSWORD)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run scarecrow")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A directory of the test's own, named after `name`, removed when dropped,
/// pass or fail.
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("scarecrow-test-{name}-"))
        .tempdir()
        .expect("scratch dir")
}

/// `scarecrow run --config CONFIG` with its output discarded; callers add
/// the environment, or keep stderr.
pub fn run_daemon(config: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"));
    command
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// A child process killed and waited for when dropped, pass or fail. Drop
/// it before the directory it runs in (as a field, declare it before): a
/// daemon must write nothing more into a directory being removed.
pub struct Reaped(pub tokio::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // Without `.await`: this is `Drop`.
        let _ = self.0.start_kill();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl std::ops::Deref for Reaped {
    type Target = tokio::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// What the receiver answered.
    pub status: u16,
    pub headers: std::collections::HashMap<String, String>,
    pub body: serde_json::Value,
    pub raw: String,
}

/// A real webhook receiver on loopback that records every request and
/// answers with a status the test controls (and `Retry-After` on 503).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    /// Requests that arrived (recorded as they come, before the answer).
    pub arrived: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let r = Receiver {
            url,
            got: Default::default(),
            status: std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200)),
            arrived: Default::default(),
            delay_ms: Default::default(),
        };
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state
                        .arrived
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let delay = state.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    let status = state.status.load(std::sync::atomic::Ordering::SeqCst);
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    let parsed = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    state.got.lock().expect("lock").push(Received {
                        status,
                        headers,
                        body: parsed,
                        raw: body,
                    });
                    let code = axum::http::StatusCode::from_u16(status).expect("status");
                    (code, [("retry-after", "1")], "")
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    /// Take this long to answer each following request.
    pub fn delay(&self, ms: u64) {
        self.delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answer every following request with `status`.
    pub fn answer(&self, status: u16) {
        self.status
            .store(status, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests answered with a 2xx, i.e. delivered ones, of one event type.
    pub fn delivered(&self, kind: &str) -> Vec<Received> {
        let got = self.got.lock().expect("lock");
        got.iter()
            .filter(|r| r.body["type"] == kind && (200..300).contains(&r.status))
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it instead.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (run with UPDATE_GOLDEN=1)");
    assert!(
        expected == actual,
        "golden {name} differs:\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}
