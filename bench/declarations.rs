//! How fast a burst of declarations reaches a healthy receiver: N critical
//! checks (500 by default) of a port nothing listens on, so they all
//! declare within a few seconds, and a webhook sink to a receiver on
//! loopback that answers 200 at once. Prints when the last declaration
//! arrived after the first state change, and the longest any declaration
//! took to arrive: from the start of the run that crossed the failure
//! threshold (`data.detected_at`), and from the event itself (`timestamp`,
//! when the engine declared it).
//!
//!   cargo build && cargo run --example declarations -- [N] [path/to/scarecrow]
//!
//! The daemon defaults to the debug build next to this example.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Declarations that arrived: when the failure was detected, when it was
/// declared, and when it came.
type Arrivals = Arc<Mutex<Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let bin = match args.next() {
        Some(b) => PathBuf::from(b),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|debug| debug.join("scarecrow"))
            .ok_or_else(|| anyhow::anyhow!("where is the scarecrow binary?"))?,
    };

    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let got = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let got = got.clone();
            async move {
                let now = Utc::now();
                let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let time = |v: &serde_json::Value| v.as_str().and_then(|t| t.parse().ok());
                let detected = time(&body["data"]["detected_at"]);
                let at = time(&body["timestamp"]);
                if let (Some(detected), Some(at), "incident.declared") =
                    (detected, at, body["type"].as_str().unwrap_or(""))
                {
                    got.lock().expect("lock").push((detected, at, now));
                }
                ""
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::Builder::new()
        .prefix("scarecrow-declarations-")
        .tempdir()?;
    let port = free_port()?;
    let down = free_port()?;
    std::fs::create_dir_all(dir.path().join("checks"))?;
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nconcurrency = 256\n\n[store]\npath = \"data/scarecrow.db\"\n\n\
             [[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )?;
    for i in 0..n {
        std::fs::write(
            dir.path().join(format!("checks/feature-{i:04}.toml")),
            format!(
                "critical = true\nevery = \"1s\"\n\n[[step]]\nname = \"home\"\nurl = \"http://127.0.0.1:{down}/\"\n"
            ),
        )?;
    }
    let mut daemon = tokio::process::Command::new(&bin)
        .args(["run", "--config"])
        .arg(dir.path().join("config.toml"))
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .spawn()?;

    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().expect("lock").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;

    let got = arrivals.lock().expect("lock").clone();
    let first = got.iter().map(|(detected, ..)| *detected).min();
    let last_change = got.iter().map(|(detected, ..)| *detected).max();
    let last = got.iter().map(|(.., came)| *came).max();
    let slowest = got
        .iter()
        .map(|(detected, _, came)| *came - *detected)
        .max();
    let slowest_sent = got.iter().map(|(_, at, came)| *came - *at).max();
    let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
    println!("declarations arrived: {} of {n}", got.len());
    if let (Some(first), Some(last_change), Some(last), Some(slowest), Some(sent)) =
        (first, last_change, last, slowest, slowest_sent)
    {
        println!(
            "failures detected over:             {:.2} s",
            secs(last_change - first)
        );
        println!(
            "first detection to last arrival:    {:.2} s",
            secs(last - first)
        );
        println!(
            "longest detection to arrival:       {:.2} s (from the declaration: {:.2} s)",
            secs(slowest),
            secs(sent)
        );
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
