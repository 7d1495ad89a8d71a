//! `scarecrow demo-site` stops like the daemon: SIGTERM (a container stop,
//! a supervisor) or Ctrl-C ends it with exit code 0, not a signal's 143.

mod common;

use std::time::Duration;

use common::{Reaped, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn demo_site_exits_zero_on_sigterm() {
    let port = free_port();
    let mut site = Reaped(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
            .args(["demo-site", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("demo-site"),
    );
    // Serving proves the signal handler is installed (it is set up before
    // the first connection is accepted).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo site never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = site.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), site.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{status}");
}
