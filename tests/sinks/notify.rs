//! `scarecrow notify --test SINK` through the CLI, against a receiver.

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::support::Receiver;

fn config(rx: &Receiver) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sinks-notify");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        r#"
instance_group = "shop-eu"

[roles]
coordinator = "@alice"

[[sinks]]
name = "pagerduty"
type = "pagerduty"
url = "{url}/v2/enqueue"
routing_key = "${{secret:SCARECROW_TEST_PD_KEY}}"

[[sinks]]
name = "log"
type = "log"
"#,
        url = rx.url
    );
    // One file per call, as tests run at the same time; numbered within
    // the run, so the next run overwrites the same files.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!(
        "config-{}.toml",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

async fn notify(config: &PathBuf, sink: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["notify", "--test", sink, "--config"])
        .arg(config)
        .env("SCARECROW_TEST_PD_KEY", "R0UTINGKEY0123456789abcdef012345")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_test_declaration_and_resolution_are_delivered() {
    let rx = Receiver::start(202, r#"{"status":"success","message":"Event processed"}"#).await;
    let out = notify(&config(&rx), "pagerduty").await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("  declaration: delivered (202)\n  resolution: delivered (202)\n"),
        "{stdout}"
    );
    let got = rx.got();
    assert_eq!(got.len(), 2);
    let trigger = got[0].json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "scarecrow:shop-eu:scarecrow-test");
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] ")
    );
    assert_eq!(trigger["payload"]["component"], "scarecrow-test");
    assert_eq!(trigger["payload"]["source"], "shop-eu");
    assert_eq!(
        trigger["payload"]["custom_details"]["roles"]["coordinator"],
        "@alice"
    );
    let resolve = got[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[tokio::test]
async fn what_the_receiver_refused_is_printed_and_exits_1() {
    let rx = Receiver::start(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid"}"#,
    )
    .await;
    let out = notify(&config(&rx), "pagerduty").await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("declaration: rejected: the receiver answered 400 Bad Request: {\"status\":\"invalid event\""),
        "{stdout}"
    );
    let out = notify(&config(&rx), "pagerdty").await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no sink named `pagerdty`") && stderr.contains("did you mean `pagerduty`?"),
        "{stderr}"
    );
}

/// A sink goes direct whatever the proxy variables say: a proxy would see
/// its credentials.
#[tokio::test]
async fn a_sink_ignores_proxy_variables() {
    let rx = Receiver::start(202, r#"{"status":"success","message":"Event processed"}"#).await;
    // A "proxy" that accepts no connection: any sent to it stays queued.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["notify", "--test", "pagerduty", "--config"])
        .arg(config(&rx))
        .env("SCARECROW_TEST_PD_KEY", "R0UTINGKEY0123456789abcdef012345")
        .env("HTTP_PROXY", &url)
        .env("https_proxy", &url)
        .env("ALL_PROXY", &url)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(rx.got().len(), 2);
    assert_eq!(
        proxy.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}
