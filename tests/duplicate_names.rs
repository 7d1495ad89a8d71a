//! A check name claimed by two files, through `validate`, `once` and the
//! daemon: the file that runs the name keeps it (on a first load, the first
//! file in path order); the other file is the load error, worded the same
//! everywhere.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Reaped, Site, free_port, run_daemon, scarecrow_in, stderr, stdout};

fn check(name: &str, url: &str) -> String {
    format!("name = \"{name}\"\nevery = \"1s\"\n[[step]]\nurl = \"{url}\"\n")
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join("checks").join(file), text).expect("write check");
}

/// Check files in `dir/checks/` that all name their check `web`, each
/// against its own path of `site`.
fn claim_web(dir: &Path, site: &Site, files: &[(&str, &str)]) {
    for (file, path) in files {
        write(dir, file, &check("web", &format!("{}{path}", site.url)));
    }
}

/// The error as `Diagnostic` renders it: message and position.
fn already_defined(owner: &Path, claimant: &Path) -> String {
    format!(
        "error: check `web` is already defined in {}\n --> {}:1:8\n",
        owner.display(),
        claimant.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_and_once_keep_the_first_file_in_path_order() {
    let site = Site::start().await;
    let dir = common::scratch("duplicate-cli");
    std::fs::create_dir(dir.path().join("checks")).expect("mkdir");
    claim_web(
        dir.path(),
        &site,
        &[("m.toml", "/weather"), ("x.toml", "/nowhere")],
    );
    let error = already_defined(Path::new("checks/m.toml"), Path::new("checks/x.toml"));

    let out = scarecrow_in(dir.path(), &site.url, &["validate"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with(&error), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 check valid, 1 error, 0 warnings\n");

    // The check of m.toml runs; x.toml's, which would fail, does not.
    let out = scarecrow_in(dir.path(), &site.url, &["once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with(&error), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("PASS  web"), "{text}");
    assert!(text.ends_with("1 check: 1 passed, 0 failed\n"), "{text}");
}

/// The daemon's `/api/v1/config`.
async fn config(port: u16) -> serde_json::Value {
    match reqwest::get(format!("http://127.0.0.1:{port}/api/v1/config")).await {
        Ok(r) => serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Each file's check (or `-`) and first error, once the daemon shows `want`.
async fn files_until(port: u16, what: &str, want: &[(&str, &str)]) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let config = config(port).await;
        let files: Vec<(String, String, String)> = config["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .map(|f| {
                        let path = f["path"].as_str().unwrap_or_default();
                        let name = Path::new(path)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let check = f["check"].as_str().unwrap_or("-").to_owned();
                        let error = f["errors"][0].as_str().unwrap_or_default().to_owned();
                        (name, check, error)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let shown: Vec<(&str, &str)> = files.iter().map(|(f, c, _)| (&**f, &**c)).collect();
        if shown == want {
            return files.into_iter().map(|(f, _, e)| (f, e)).collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{config}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_reload_a_newcomer_claiming_a_running_name_is_the_error() {
    let site = Site::start().await;
    let dir = common::scratch("duplicate-daemon");
    let checks = dir.path().join("checks");
    std::fs::create_dir(&checks).expect("mkdir");
    let port = free_port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n"),
    )
    .expect("config");
    claim_web(
        dir.path(),
        &site,
        &[("m.toml", "/weather"), ("x.toml", "/x")],
    );
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let _daemon = Reaped(
        run_daemon(&dir.path().join("config.toml"))
            .stderr(log)
            .spawn()
            .expect("daemon"),
    );

    // First load: m.toml comes first in path order.
    let files = files_until(
        port,
        "the first load",
        &[("m.toml", "web"), ("x.toml", "-")],
    )
    .await;
    let (m, x, a) = (
        checks.join("m.toml"),
        checks.join("x.toml"),
        checks.join("a.toml"),
    );
    assert!(
        files[1].1.starts_with(&already_defined(&m, &x)),
        "{files:?}"
    );

    // a.toml sorts before m.toml, but m.toml runs `web`: a.toml is the error.
    claim_web(dir.path(), &site, &[("a.toml", "/a")]);
    let files = files_until(
        port,
        "a.toml refused",
        &[("a.toml", "-"), ("m.toml", "web"), ("x.toml", "-")],
    )
    .await;
    assert!(
        files[0].1.starts_with(&already_defined(&m, &a)),
        "{files:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let wanted = already_defined(&m, &a);
    loop {
        let logged = std::fs::read_to_string(&log_path).unwrap_or_default();
        if logged.contains(wanted.trim_end()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not logged:\n{logged}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The owner goes: the first claimant left in path order takes the name.
    std::fs::remove_file(&m).expect("rm");
    let files = files_until(
        port,
        "a.toml takes over",
        &[("a.toml", "web"), ("x.toml", "-")],
    )
    .await;
    assert!(
        files[1].1.starts_with(&already_defined(&a, &x)),
        "{files:?}"
    );
}
