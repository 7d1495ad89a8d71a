//! The Dockerfile promises paths, a port and a health check; no container
//! engine runs here, so this reads it and holds it to those promises, and
//! runs the binary as an unprivileged user in the image's layout.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::Duration;

use common::{Reaped, Site, free_port};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Dockerfile's instructions, continuation lines joined.
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    text.replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// The Dockerfile's stages: each `FROM` line's argument and the
/// instructions after it, up to the next.
fn stages() -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (k, v) in instructions() {
        if k == "FROM" {
            stages.push((v, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push((k, v));
        }
    }
    stages
}

fn last(instr: &[(String, String)], key: &str) -> String {
    instr
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn dockerfile_keeps_its_promises() {
    let instr = instructions();
    // Multi-stage: the binary is built in a stage of its own and copied
    // into a slim Debian.
    let froms: Vec<&str> = instr
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(froms[0].ends_with(" AS builder"), "{froms:?}");
    assert!(
        froms.iter().any(|f| f.starts_with("debian:bookworm-slim ")),
        "{froms:?}"
    );
    assert!(
        instr
            .iter()
            .any(|(k, v)| k == "COPY" && v.starts_with("--from=builder ")),
        "the binary comes from the build stage"
    );
    assert_eq!(last(&instr, "EXPOSE"), "9787");
    assert_eq!(last(&instr, "STOPSIGNAL"), "SIGTERM");
    assert_eq!(last(&instr, "USER"), "scarecrow", "runs as non-root");
    assert_eq!(last(&instr, "VOLUME"), r#"["/var/lib/scarecrow"]"#);
    assert!(
        instr
            .iter()
            .any(|(k, v)| k == "RUN" && v.contains("chown scarecrow /var/lib/scarecrow")),
        "the image's user owns its data volume, where the store goes"
    );
    assert!(
        last(&instr, "HEALTHCHECK").contains(
            r#"CMD ["scarecrow", "healthcheck", "--url", "http://127.0.0.1:9787/healthz"]"#
        )
    );
    assert_eq!(
        last(&instr, "CMD"),
        r#"["run", "--config", "/etc/scarecrow/config.toml"]"#
    );
    assert!(
        instr
            .iter()
            .any(|(k, v)| k == "RUN" && v.contains("ca-certificates"))
    );
    // Everything copied from the build context exists.
    for (_, v) in instr
        .iter()
        .filter(|(k, v)| k == "COPY" && !v.starts_with("--from"))
    {
        let parts: Vec<&str> = v.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(repo(src).exists(), "COPY source {src} is missing");
        }
    }
}

/// `--build-arg BROWSER=true` picks the base with Chromium, a font and tini
/// as PID 1 (docs/browser.md); the default, the base without. Either way
/// the same final stage follows, so the user, the volume, the health check
/// and the CMD are the ones above; only the base's ENTRYPOINT differs.
#[test]
fn the_browser_variant_adds_chromium_a_font_and_an_init() {
    assert_eq!(
        instructions().first(),
        Some(&("ARG".to_owned(), "BROWSER=false".to_owned())),
        "no browser unless asked for"
    );
    let stages = stages();
    let (final_from, final_stage) = stages.last().expect("stages");
    assert_eq!(final_from, "base-${BROWSER}");
    assert!(
        final_stage.iter().all(|(k, _)| k != "ENTRYPOINT"),
        "the final stage keeps its base's ENTRYPOINT"
    );
    let stage = |name: &str| {
        stages
            .iter()
            .find(|(from, _)| from.ends_with(&format!(" AS {name}")))
            .unwrap_or_else(|| panic!("no stage {name}"))
    };
    let (from, without) = stage("base-false");
    assert!(from.starts_with("debian:bookworm-slim "), "{from}");
    assert_eq!(last(without, "ENTRYPOINT"), r#"["scarecrow"]"#);
    assert!(
        without
            .iter()
            .all(|(k, v)| !(k == "RUN" && v.contains("chromium"))),
        "the default image has no browser"
    );
    let (from, with) = stage("base-true");
    assert_eq!(from, "base-false AS base-true", "the same base, plus");
    let install = with
        .iter()
        .find(|(k, v)| k == "RUN" && v.contains("apt-get install"))
        .map(|(_, v)| v)
        .expect("an apt-get install");
    for word in [
        "chromium",
        "fonts-dejavu-core",
        "tini",
        "--no-install-recommends",
    ] {
        assert!(
            install.split_whitespace().any(|w| w == word),
            "{word}: {install}"
        );
    }
    assert!(install.contains("rm -rf /var/lib/apt/lists/*"), "{install}");
    // The daemon is not PID 1: tini reaps the browser's orphaned processes.
    assert_eq!(
        last(with, "ENTRYPOINT"),
        r#"["/usr/bin/tini", "--", "scarecrow"]"#
    );
    // The final stage sets the user, for both.
    assert!(without.iter().chain(with).all(|(k, _)| k != "USER"));
}

#[test]
fn container_config_listens_everywhere_keeps_its_store_in_the_volume_and_needs_a_token() {
    let config = scarecrow::config::load_config(Some(&repo("deploy/container-config.toml")))
        .expect("valid config");
    assert_eq!(config.listen.to_string(), "0.0.0.0:9787");
    assert_eq!(config.checks_dir, Path::new("/etc/scarecrow/checks"));
    assert_eq!(config.log_format, scarecrow::config::LogFormat::Json);
    assert!(
        config.store_path.starts_with("/var/lib/scarecrow/"),
        "the store is in the volume, the only place the image's user writes: {}",
        config.store_path.display()
    );
    assert_eq!(
        config.api_token.map(|t| t.to_string()).as_deref(),
        Some("${file:/run/secrets/scarecrow_api_token}")
    );
}

const TOKEN: &str = "container-test-token";

/// The image's filesystem under `root`, as the Dockerfile builds it: the
/// binary, the shipped config and checks owned by root and read-only to
/// others, the data volume owned by `uid`, a secret file as Docker mounts it.
/// Returns the config path.
fn image_layout(root: &Path, uid: u32, port: u16) -> std::path::PathBuf {
    let dir = |p: &str| {
        let d = root.join(p);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    };
    let bin = dir("usr/local/bin").join("scarecrow");
    std::fs::copy(env!("CARGO_BIN_EXE_scarecrow"), &bin).expect("copy the binary");
    let etc = dir("etc/scarecrow");
    let checks = dir("etc/scarecrow/checks");
    for entry in std::fs::read_dir(repo("checks")).expect("checks") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, checks.join(path.file_name().expect("name"))).expect("copy check");
    }
    let secrets = dir("run/secrets");
    std::fs::write(secrets.join("scarecrow_api_token"), format!("{TOKEN}\n")).expect("secret");
    std::fs::set_permissions(
        secrets.join("scarecrow_api_token"),
        std::fs::Permissions::from_mode(0o444),
    )
    .expect("chmod");
    let data = dir("var/lib/scarecrow");
    // The shipped config with its absolute paths moved under `root`, and a
    // free loopback port: nothing else changes.
    let shipped =
        std::fs::read_to_string(repo("deploy/container-config.toml")).expect("container config");
    let moved = root.display().to_string();
    let config = shipped
        .replace("/etc/scarecrow", &format!("{moved}/etc/scarecrow"))
        .replace("/var/lib/scarecrow", &format!("{moved}/var/lib/scarecrow"))
        .replace("/run/secrets", &format!("{moved}/run/secrets"))
        .replace("0.0.0.0:9787", &format!("127.0.0.1:{port}"));
    assert_ne!(config, shipped);
    std::fs::write(etc.join("config.toml"), config).expect("config");
    // Everything readable and traversable, nothing writable but the volume.
    for d in [
        "",
        "usr",
        "usr/local",
        "usr/local/bin",
        "etc",
        "etc/scarecrow",
        "etc/scarecrow/checks",
        "run",
        "run/secrets",
        "var",
        "var/lib",
    ] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(&data, Some(uid), Some(uid)).expect("chown the volume");
    etc.join("config.toml")
}

/// `docker run` of the image, without a container engine: the binary runs
/// as an unprivileged user (nobody, when the tests run as root) that owns
/// only the data volume, with the shipped container config, and gets ready.
#[tokio::test(flavor = "multi_thread")]
async fn the_image_layout_starts_as_an_unprivileged_user() {
    let site = Site::start().await;
    let port = free_port();
    let root = common::scratch("container");
    let as_root = std::fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
    let uid = if as_root {
        65534
    } else {
        std::fs::metadata("/proc/self").expect("/proc/self").uid()
    };
    let config = image_layout(root.path(), uid, port);
    if !as_root {
        // The tests' own user owns the layout: take its write permission
        // away, as not owning it would.
        for d in ["etc/scarecrow", "etc/scarecrow/checks"] {
            std::fs::set_permissions(root.path().join(d), std::fs::Permissions::from_mode(0o555))
                .expect("chmod");
        }
    }
    let log = root.path().join("stderr.log");
    let mut command = if as_root {
        let Some(setpriv) = common::tools::require("setpriv", &["setpriv"], "util-linux") else {
            return;
        };
        let mut c = tokio::process::Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(root.path().join("usr/local/bin/scarecrow"));
        c
    } else {
        tokio::process::Command::new(root.path().join("usr/local/bin/scarecrow"))
    };
    // The Dockerfile's CMD, WORKDIR and `-e SCARECROW_DEMO_PASSWORD`.
    command
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(root.path().join("var/lib/scarecrow"))
        .env("SCARECROW_SITE", &site.url)
        .env("SCARECROW_DEMO_PASSWORD", scarecrow::demo::DEMO_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .kill_on_drop(true);
    let mut daemon = Reaped(command.spawn().expect("start the daemon"));
    let pid = daemon.id().expect("pid");

    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!(
                "the daemon stopped ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status() == 200
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready within a minute:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uids = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uids.split_whitespace().nth(1).and_then(|u| u.parse().ok()),
        Some(uid),
        "runs as {uid}"
    );
    assert!(
        root.path().join("var/lib/scarecrow/scarecrow.db").exists(),
        "the store is in the volume"
    );
    // The token came from the secret file.
    let client = reqwest::Client::new();
    let api = format!("{base}/api/v1/checks");
    let anonymous = client.get(&api).send().await.expect("api");
    assert_eq!(anonymous.status(), 401);
    let with_token = client
        .get(&api)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("api");
    assert_eq!(with_token.status(), 200);
    // `docker stop`.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .expect("stops")
        .expect("wait");
    assert_eq!(
        exit.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
