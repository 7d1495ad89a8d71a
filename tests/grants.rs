//! `[[grant]]`: a check file reaches only what `config.toml` grants its
//! directory, never the daemon's own secrets, and no metadata host; through
//! `validate`, `once` and a daemon's reload.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{Reaped, Site, free_port, golden, run_daemon, stderr, stdout};

/// Every variable the tests set, so none leaks in from the environment.
const VARS: &[(&str, &str)] = &[
    ("GRANTS_TEST_SITE", "http://127.0.0.1:9"),
    ("GRANTS_TEST_HOME", "/home/someone"),
    ("GRANTS_TEST_WEB_TOKEN", "web-token-value"),
    ("GRANTS_TEST_OTHER", "other-value"),
    ("GRANTS_TEST_API_TOKEN", "the-daemon-api-token"),
    ("GRANTS_TEST_ALIAS", "the-daemon-api-token"),
];

const CONFIG: &str = r#"api_token = "${secret:GRANTS_TEST_API_TOKEN}"

[[grant]]
dir = "web"
env = ["GRANTS_TEST_SITE", "GRANTS_TEST_ALIAS"]
secrets = ["GRANTS_TEST_WEB_*", "GRANTS_TEST_API_TOKEN"]
files = ["secrets/web"]
"#;

const BAD: &str = r#"every = "1m"

[[step]]
url = "${env:GRANTS_TEST_SITE}/a"
headers = { x-other = "${secret:GRANTS_TEST_OTHER}", x-home = "${env:GRANTS_TEST_HOME}" }

[[step]]
url = "${env:GRANTS_TEST_SITE}/b"
headers = { x-key = "${file:secrets/other/key}", x-api = "${secret:GRANTS_TEST_API_TOKEN}", x-alias = "${env:GRANTS_TEST_ALIAS}" }

[[step]]
url = "http://169.254.169.254/latest/meta-data/"
"#;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `scarecrow ARGS --config config.toml` run in `dir`.
fn scarecrow(dir: &Path, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"));
    command
        .args(args)
        .args(["--config", "config.toml"])
        .current_dir(dir)
        .env_remove("RUST_LOG");
    for (name, value) in VARS {
        command.env(name, value);
    }
    command.output().expect("run scarecrow")
}

/// Granted references load; ungranted ones are errors where they are
/// written, naming the grant they lack; the daemon's API token is refused
/// though a grant names it, and so is its value under another name; a
/// metadata address is refused.
#[test]
fn validate_reports_each_reference_the_grants_refuse_at_its_place() {
    let tmp = common::scratch("grants-validate");
    let dir = tmp.path();
    write(dir, "config.toml", CONFIG);
    write(dir, "secrets/web/key", "k\n");
    write(dir, "secrets/other/key", "o\n");
    write(
        dir,
        "checks/web/ok.toml",
        "every = \"1m\"\n[[step]]\nurl = \"${env:GRANTS_TEST_SITE}/ok\"\nheaders = { x-token = \"${secret:GRANTS_TEST_WEB_TOKEN}\", x-key = \"${file:secrets/web/key}\" }\n",
    );
    write(dir, "checks/web/bad.toml", BAD);
    write(
        dir,
        "checks/team/other.toml",
        "every = \"1m\"\n[[step]]\nurl = \"http://127.0.0.1:9/\"\nheaders = { x-token = \"${secret:GRANTS_TEST_WEB_TOKEN}\" }\n",
    );
    let out = scarecrow(dir, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    golden("grants.stderr", &stderr(&out));
    assert_eq!(stdout(&out), "1 check valid, 7 errors, 0 warnings\n");
}

/// Unknown keys and bad patterns of `[[grant]]` are errors of config.toml.
#[test]
fn a_bad_grant_is_an_error_of_config_toml() {
    let tmp = common::scratch("grants-config");
    let dir = tmp.path();
    write(
        dir,
        "config.toml",
        "[[grant]]\ndir = \"../up\"\nsecrets = [\"WEB_**\", \"A B\"]\nowner = \"web-team\"\n\n[[grant]]\nhosts = \"*.example.org\"\n",
    );
    let out = scarecrow(dir, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    golden("grants-config.stderr", &stderr(&out));
}

/// Without any `[[grant]]` check files keep their reach, and validate says
/// so once.
#[test]
fn without_grants_everything_resolves_and_validate_warns_once() {
    let tmp = common::scratch("grants-open");
    let dir = tmp.path();
    write(dir, "config.toml", "");
    write(
        dir,
        "checks/a.toml",
        "every = \"1m\"\n[[step]]\nurl = \"${env:GRANTS_TEST_SITE}/\"\nheaders = { x = \"${secret:GRANTS_TEST_OTHER}\" }\n",
    );
    write(
        dir,
        "checks/b.toml",
        "every = \"1m\"\n[[step]]\nurl = \"http://127.0.0.1:9/\"\n",
    );
    let out = scarecrow(dir, &["validate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("has no [[grant]]").count(), 1, "{err}");
    assert_eq!(stdout(&out), "2 checks valid, 0 errors, 0 warnings\n");
}

/// At run time a secret whose value is the daemon's API token is refused
/// under any name; the granted check beside it passes.
#[tokio::test(flavor = "multi_thread")]
async fn once_refuses_the_daemons_secret_by_value_under_another_name() {
    let site = Site::start().await;
    let tmp = common::scratch("grants-once");
    let dir = tmp.path();
    write(
        dir,
        "config.toml",
        "api_token = \"${secret:GRANTS_TEST_API_TOKEN}\"\n[[grant]]\ndir = \".\"\nsecrets = [\"GRANTS_TEST_WEB_*\", \"GRANTS_TEST_ALIAS\"]\n",
    );
    let step = |secret: &str| {
        format!(
            "every = \"1m\"\n[[step]]\nurl = \"{}/weather\"\nheaders = {{ x-token = \"${{secret:{secret}}}\" }}\n[step.expect]\nstatus = 200\n",
            site.url
        )
    };
    write(dir, "checks/granted.toml", &step("GRANTS_TEST_WEB_TOKEN"));
    write(dir, "checks/alias.toml", &step("GRANTS_TEST_ALIAS"));
    let out = scarecrow(dir, &["once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("PASS  granted"), "{text}");
    assert!(text.contains("FAIL  alias"), "{text}");
    assert!(
        text.contains("holds the value of one of the daemon's own secrets"),
        "{text}"
    );
    assert!(!text.contains("the-daemon-api-token"), "{text}");
}

async fn metrics(port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn until(port: u16, what: &str, f: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(port).await;
        if f(&text) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A grant revoked by a reload of config.toml stops the check that used
/// it: its last good version does not keep the secret flowing.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_grant_stops_the_check_on_reload() {
    let site = Site::start().await;
    let port = free_port();
    let tmp = common::scratch("grants-reload");
    let dir = tmp.path();
    let config = |secrets: &str| {
        format!(
            "listen = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n[[grant]]\ndir = \"web\"\nsecrets = [{secrets}]\n",
            dir.join("store.db").display()
        )
    };
    write(dir, "config.toml", &config("\"GRANTS_TEST_WEB_TOKEN\""));
    write(
        dir,
        "checks/web/shop.toml",
        &format!(
            "every = \"1s\"\n[[step]]\nurl = \"{}/weather\"\nheaders = {{ x-token = \"${{secret:GRANTS_TEST_WEB_TOKEN}}\" }}\n",
            site.url
        ),
    );
    let mut command = run_daemon(&dir.join("config.toml"));
    command.env("GRANTS_TEST_WEB_TOKEN", "web-token-value");
    let child = Reaped(command.spawn().expect("daemon"));
    until(port, "shop running", |t| {
        t.contains(r#"scarecrow_check_info{check="shop""#)
    })
    .await;

    write(dir, "config.toml", &config(""));
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    until(port, "shop stopped, reload failed", |t| {
        !t.contains(r#"check="shop""#) && t.contains("scarecrow_config_last_reload_successful 0")
    })
    .await;
    drop(child);
}
