//! Files that check files and the config name may be anything: a FIFO, an
//! endless device, a kernel file. The daemon refuses them with a reason and
//! keeps serving; nothing waits on a writer that never comes or reads a
//! device that never ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Reaped, Site, free_port, scratch};

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

fn write(path: PathBuf, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// The last result of every check the daemon on `port` has run once, by
/// name: `(reason, message)`.
async fn last_results(client: &reqwest::Client, port: u16) -> Vec<(String, String, String)> {
    let url = format!("http://127.0.0.1:{port}/api/v1/checks");
    let Ok(resp) = client.get(url).send().await else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let Some(checks) = json["checks"].as_array() else {
        return Vec::new();
    };
    checks
        .iter()
        .filter(|c| !c["last_result"].is_null())
        .map(|c| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&c["name"]),
                text(&c["last_result"]["reason"]),
                text(&c["last_result"]["message"]),
            )
        })
        .collect()
}

async fn healthz(client: &reqwest::Client, port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/healthz");
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn fifos_and_devices_fail_their_checks_and_the_daemon_keeps_serving() {
    let site = Site::start().await;
    let port = free_port();
    let tmp = scratch("special-files");
    let dir = tmp.path();
    let fifo = dir.join("token.fifo");
    mkfifo(&fifo);
    let fifo = fifo.display();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    write(
        dir.join("config.toml"),
        &format!("listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n"),
    );
    let step = |extra: &str| {
        format!(
            "every = \"1s\"\ntimeout = \"60s\"\n[[step]]\nurl = \"{}/weather\"\n{extra}\n",
            site.url
        )
    };
    // As many FIFO readers as the machine has cores: one blocked runtime
    // worker each was enough to stop every endpoint.
    write(
        dir.join("checks/fifo-header.toml"),
        &step(&format!("headers = {{ x-token = \"${{file:{fifo}}}\" }}")),
    );
    write(
        dir.join("checks/fifo-body.toml"),
        &step(&format!(
            "method = \"POST\"\nbody = \"token=${{file:{fifo}}}\""
        )),
    );
    write(
        dir.join("checks/fifo-upload.toml"),
        &step(&format!(
            "method = \"POST\"\nmultipart = [{{ name = \"f\", path = \"{fifo}\" }}]"
        )),
    );
    write(
        dir.join("checks/dev-zero.toml"),
        &step("headers = { x-token = \"${file:/dev/zero}\" }"),
    );
    write(dir.join("checks/weather.toml"), &step(""));
    let mut daemon = Reaped(
        common::run_daemon(&dir.join("config.toml"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start daemon"),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let results = loop {
        let results = last_results(&client, port).await;
        if results.len() == 5 {
            break results;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every check finished a run: {results:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let result = |name: &str| {
        results
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, reason, message)| (reason.as_str(), message.as_str()))
            .expect(name)
    };
    for name in ["fifo-header", "fifo-body"] {
        let (reason, message) = result(name);
        assert_eq!(reason, "setup", "{name}: {message}");
        assert!(
            message.contains(&format!("secret file `{fifo}`: a FIFO, not a regular file")),
            "{name}: {message}"
        );
    }
    let (reason, message) = result("fifo-upload");
    assert_eq!(reason, "setup", "{message}");
    assert!(
        message.contains(&format!(
            "multipart part \"f\": cannot read {fifo}: a FIFO, not a regular file"
        )),
        "{message}"
    );
    let (reason, message) = result("dev-zero");
    assert_eq!(reason, "setup", "{message}");
    assert!(
        message.contains("/dev/zero is under /dev: device and kernel files are not read"),
        "{message}"
    );
    assert_eq!(result("weather").0, "", "the plain check passes");
    assert!(healthz(&client, port).await, "/healthz answers");

    let pid = daemon.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .expect("the daemon stops on SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_file_of_the_config_that_is_a_fifo_stops_start_up_with_a_reason() {
    let tmp = scratch("special-config");
    let dir = tmp.path();
    let fifo = dir.join("api-token");
    mkfifo(&fifo);
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    write(
        dir.join("config.toml"),
        &format!(
            "listen = \"127.0.0.1:{}\"\napi_token = \"${{file:{}}}\"\n",
            free_port(),
            fifo.display()
        ),
    );
    let daemon = common::run_daemon(&dir.join("config.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start daemon");
    let out = tokio::time::timeout(Duration::from_secs(30), daemon.wait_with_output())
        .await
        .expect("start-up ends instead of waiting on the FIFO")
        .expect("wait");
    assert!(!out.status.success());
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains(&format!(
            "api_token: secret file `{}`: a FIFO, not a regular file",
            fifo.display()
        )),
        "{stderr}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_tls_ca_that_is_an_endless_device_is_a_load_error() {
    let tmp = scratch("special-ca");
    let dir = tmp.path();
    let check = dir.join("urandom.toml");
    write(
        check.clone(),
        "[tls]\nca = \"/dev/urandom\"\n\n[[step]]\nurl = \"https://localhost/\"\n",
    );
    let validate = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .arg("validate")
        .arg(&check)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), validate)
        .await
        .expect("validate ends instead of reading /dev/urandom")
        .expect("run validate");
    assert!(!out.status.success());
    let all = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(
        all.contains(
            "cannot read /dev/urandom: /dev/urandom is under /dev: device and kernel files are not read"
        ),
        "{all}"
    );
}

/// `config.toml` and check files are read like the files they name: a FIFO
/// given as either is refused at once instead of waiting for a writer.
#[cfg(unix)]
#[tokio::test]
async fn a_config_or_check_file_that_is_a_fifo_is_refused_not_waited_on() {
    let tmp = scratch("special-config");
    let dir = tmp.path();
    // The check in a directory of its own, where no config.toml is found.
    std::fs::create_dir(dir.join("checks")).expect("checks dir");
    mkfifo(&dir.join("config.toml"));
    mkfifo(&dir.join("checks/check.toml"));
    for (args, cwd, said) in [
        (
            vec!["validate", "--config", "config.toml", "checks/check.toml"],
            dir.to_owned(),
            "cannot read config: a FIFO, not a regular file",
        ),
        (
            vec!["validate", "check.toml"],
            dir.join("checks"),
            "cannot read: a FIFO, not a regular file",
        ),
    ] {
        let validate = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
            .args(&args)
            .current_dir(cwd)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), validate)
            .await
            .expect("validate ends instead of waiting for a writer")
            .expect("run validate");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let all = format!("{}{}", common::stdout(&out), common::stderr(&out));
        assert!(all.contains(said), "{args:?}: {all}");
    }
}
