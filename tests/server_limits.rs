//! The daemon's HTTP server against clients that misbehave, end to end: idle
//! and half-sent connections are closed while `/healthz` answers and the
//! daemon's own checks keep passing; a held-open request does not hold up
//! SIGTERM; oversized bodies are refused.

mod common;
mod running;

use std::time::{Duration, Instant};

use common::{Reaped, Site, free_port, run_daemon, scratch};
use running::eventually;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A daemon on loopback with one check (`ping`, every second, against the
/// demo site) and the given extra lines of `config.toml`. Fields drop in
/// order: the daemon before its directory.
struct Server {
    child: Reaped,
    _dir: tempfile::TempDir,
    port: u16,
    url: String,
}

impl Server {
    async fn start(name: &str, site: &str, extra: &str) -> Server {
        Server::start_with(name, site, extra, run_daemon).await
    }

    async fn start_with(
        name: &str,
        site: &str,
        extra: &str,
        command: impl FnOnce(&std::path::Path) -> tokio::process::Command,
    ) -> Server {
        let port = free_port();
        let tmp = scratch(name);
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\n{extra}\n[store]\npath = \"data/scarecrow.db\"\n"
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let check = format!("every = \"1s\"\n\n[[step]]\nurl = \"{site}/weather\"\n");
        std::fs::write(dir.join("checks/ping.toml"), check).expect("check");
        let child = command(&dir.join("config.toml"))
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start daemon");
        let s = Server {
            child: Reaped(child),
            _dir: tmp,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        eventually("the daemon serves", 30, async || {
            healthz(&s.url).await.then_some(())
        })
        .await;
        s
    }

    /// The `ping` check's last result, if it started after `since`.
    async fn ping_after(&self, since: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let resp = reqwest::get(format!("{}/api/v1/checks/ping", self.url))
            .await
            .ok()?;
        let body: serde_json::Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
        let started: chrono::DateTime<chrono::Utc> =
            body["last_result"]["started_at"].as_str()?.parse().ok()?;
        (started > since).then(|| body["last_result"]["result"].to_string())
    }
}

async fn healthz(url: &str) -> bool {
    reqwest::get(format!("{url}/healthz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// What an idle client sent before going quiet.
fn opening(i: usize) -> &'static [u8] {
    match i % 3 {
        0 => b"",
        1 => b"GET /healthz HTTP/1.1\r\nHost: scarecrow\r\nUser-Agent: half",
        // A whole request: the server answers, then the connection idles.
        _ => b"GET /healthz HTTP/1.1\r\nHost: scarecrow\r\n\r\n",
    }
}

/// Opens `n` clients that go quiet after their opening bytes.
async fn idle_clients(port: u16, n: usize) -> Vec<TcpStream> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(opening(i)).await.expect("write");
        clients.push(s);
    }
    clients
}

/// Reads until the server closes (end of stream or reset); `false` when it
/// did not by `deadline`.
async fn closed_by_server(mut s: TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Waits for every client to be closed; answers how many were not by `deadline`.
async fn still_open(clients: Vec<TcpStream>, deadline: tokio::time::Instant) -> usize {
    let mut waits = tokio::task::JoinSet::new();
    for c in clients {
        waits.spawn(closed_by_server(c, deadline));
    }
    waits.join_all().await.into_iter().filter(|c| !c).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_half_sent_connections_are_closed_while_checks_pass() {
    let site = Site::start().await;
    let server = Server::start("idle", &site.url, "[server]\nidle_timeout = \"1s\"\n").await;
    let clients = idle_clients(server.port, 200).await;
    let opened = chrono::Utc::now();

    assert!(
        healthz(&server.url).await,
        "/healthz answers beside 200 idle clients"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    assert_eq!(
        still_open(clients, deadline).await,
        0,
        "every idle client is closed by the server"
    );
    let result = eventually("a run of ping after the clients came", 30, async || {
        server.ping_after(opened).await
    })
    .await;
    assert_eq!(
        result, "\"success\"",
        "the daemon's own check keeps passing"
    );
    assert!(healthz(&server.url).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_is_not_held_up_by_a_half_sent_request() {
    let site = Site::start().await;
    // A long idle timeout: only shutdown may end the held connection.
    let mut server = Server::start(
        "sigterm",
        &site.url,
        "shutdown_grace = \"1s\"\n[server]\nidle_timeout = \"1h\"\n",
    )
    .await;
    let mut held = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connect");
    held.write_all(b"POST /api/v1/incidents/inc_x/resolve HTTP/1.1\r\nHost: scarecrow\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"no")
        .await
        .expect("write");
    // Requests on new connections are accepted after the held one, which
    // the server has then taken in and started reading.
    for _ in 0..3 {
        assert!(healthz(&server.url).await);
    }

    let pid = server.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The grace period (1 s) plus generous slack for a loaded machine.
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("the daemon exits although a client holds a request open")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    assert!(closed_by_server(held, deadline).await);
}

/// Sends `head` and `body` on a connection of its own and answers the
/// response's status line and body. Written raw: the server answers before
/// it has read the body, and an HTTP client still writing would see its
/// connection closed instead of the answer.
async fn raw(port: u16, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server answers and closes");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_request_bodies_are_refused_with_413() {
    let site = Site::start().await;
    let server = Server::start("body", &site.url, "").await;
    let path = "/api/v1/incidents/inc_x/resolve";

    // Declared too large: refused before a byte of the body is sent.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: scarecrow\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"
    );
    let answer = raw(server.port, &head, b"").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limited to 65536 bytes"), "{answer}");

    // Chunked, with no length declared: refused once it grows too large.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: scarecrow\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut body = Vec::new();
    for _ in 0..9 {
        body.extend_from_slice(b"2000\r\n");
        body.extend_from_slice(&[b'x'; 0x2000]);
        body.extend_from_slice(b"\r\n");
    }
    let answer = raw(server.port, &head, &body).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A small body still reaches the handler.
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .body(r#"{"note": "fixed"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 404, "no such incident");
}

/// Not a test but a measurement (`cargo test --test server_limits -- --ignored
/// --nocapture`): 1,000 idle clients against a daemon whose idle timeout is
/// 2 s, while its check runs every second; prints how long each client stayed
/// open, how `/healthz` answered meanwhile and how the check fared.
/// `SCARECROW_NOFILE=1024` runs the daemon under that open-file limit.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run by hand"]
async fn measure_a_thousand_idle_clients() {
    let site = Site::start().await;
    let nofile = std::env::var("SCARECROW_NOFILE").ok();
    let extra = "[server]\nidle_timeout = \"2s\"\n";
    let server = Server::start_with("measure", &site.url, extra, |config| match &nofile {
        None => run_daemon(config),
        Some(n) => {
            let mut c = tokio::process::Command::new("sh");
            c.args([
                "-c",
                &format!("ulimit -n {n} && exec \"$0\" run --config \"$1\""),
            ])
            .arg(env!("CARGO_BIN_EXE_scarecrow"))
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
            c
        }
    })
    .await;
    let metric = async |series: &str| -> f64 {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    let ok = r#"scarecrow_check_runs_total{check="ping",result="success"}"#;
    let failed = r#"scarecrow_check_runs_total{check="ping",result="failure"}"#;
    let (ok0, failed0) = (metric(ok).await, metric(failed).await);

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut waits = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .expect("connect");
        s.write_all(opening(i)).await.expect("write");
        let open = Instant::now();
        waits.spawn(async move { closed_by_server(s, deadline).await.then(|| open.elapsed()) });
    }
    let opened = started.elapsed();
    let (mut slowest_health, mut longest_open) = (Duration::ZERO, Duration::ZERO);
    while !waits.is_empty() {
        let t = Instant::now();
        assert!(healthz(&server.url).await, "/healthz answers");
        slowest_health = slowest_health.max(t.elapsed());
        while let Some(done) = waits.try_join_next() {
            let stayed = done.expect("join").expect("closed within 120 s");
            longest_open = longest_open.max(stayed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_closed = started.elapsed();
    println!(
        "open-file limit: {}; 1000 clients opened in {opened:.2?}; longest a client stayed open: {longest_open:.2?} (idle timeout 2 s); all closed {all_closed:.2?} after the first connected; slowest /healthz meanwhile: {slowest_health:.2?}; check runs meanwhile: {} passed, {} failed",
        nofile.as_deref().unwrap_or("default"),
        metric(ok).await - ok0,
        metric(failed).await - failed0,
    );
}
