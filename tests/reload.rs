//! Hot reload: edits under checks/ apply while the daemon runs; a broken
//! file keeps its last good version; a removed check resolves its incident.

mod common;

use std::time::Duration;

use common::{Reaped, Receiver, Site, free_port, run_daemon};

/// Fields drop in order: the daemon before its directory.
struct Daemon {
    child: Reaped,
    dir: tempfile::TempDir,
    port: u16,
}

impl Daemon {
    async fn metrics(&self) -> String {
        match reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn sample(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    async fn until(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.metrics().await;
            if f(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("checks").join(name), text).expect("write check");
    }
}

fn check(site: &str, path: &str, critical: bool) -> String {
    format!(
        "every = \"1s\"\ncritical = {critical}\n[[step]]\nname = \"open\"\nurl = \"{site}{path}\"\n[[step.expect.css]]\nselector = \"form#order input[name=liters]\"\nexists = true\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_apply_broken_files_keep_the_last_good_version_and_removal_resolves() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let port = free_port();
    let dir = common::scratch("reload");
    std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
    std::fs::write(
        dir.path().join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n", hook.url),
    )
    .expect("config");
    let d = Daemon {
        port,
        child: Reaped(
            run_daemon(&dir.path().join("config.toml"))
                .spawn()
                .expect("daemon"),
        ),
        dir,
    };
    d.write("diesel.toml", &check(&site.url, "/diesel/order", true));
    d.until("diesel loaded and passing", |t| {
        t.contains(r#"scarecrow_check_up{check="diesel"} 1"#)
    })
    .await;

    // A new file starts; an edit applies (the weather page has no order
    // form, so the changed check fails) and keeps the check's counters.
    d.write("weather.toml", &check(&site.url, "/weather", false));
    d.until("weather added", |t| {
        t.contains(r#"scarecrow_check_info{check="weather""#)
    })
    .await;
    let runs_before = d
        .sample(r#"scarecrow_check_runs_total{check="diesel",result="success"}"#)
        .await
        .unwrap_or(0.0);
    assert!(runs_before >= 1.0);
    d.write("diesel.toml", &check(&site.url, "/weather", true));
    d.until("diesel changed and failing", |t| {
        t.contains(r#"scarecrow_check_up{check="diesel"} 0"#)
    })
    .await;
    let runs_after = d
        .sample(r#"scarecrow_check_runs_total{check="diesel",result="success"}"#)
        .await
        .unwrap_or(0.0);
    assert!(runs_after >= runs_before, "counters kept across the change");
    let declared = async || hook.delivered("incident.declared").pop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while declared().await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no declaration");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broken file: the last good version keeps running, the reload is marked failed.
    d.write("weather.toml", "every = 5\n");
    let text = d
        .until("reload failed", |t| {
            t.contains("scarecrow_config_last_reload_successful 0")
        })
        .await;
    assert!(
        text.contains(r#"scarecrow_check_info{check="weather""#),
        "weather keeps its last good version"
    );
    let config: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("http://127.0.0.1:{port}/api/v1/config"))
            .await
            .expect("api")
            .text()
            .await
            .expect("body"),
    )
    .expect("json");
    assert!(config.to_string().contains("weather.toml:1:9"), "{config}");

    // Removing a check stops it, removes its series, resolves its incident.
    std::fs::remove_file(d.dir.path().join("checks/diesel.toml")).expect("rm");
    d.until("diesel removed", |t| !t.contains(r#"check="diesel""#))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = hook.delivered("incident.resolved").pop() {
            assert_eq!(r.body["data"]["resolution"], "check_removed");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no resolution");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGHUP reloads too.
    d.write("weather.toml", &check(&site.url, "/diesel/order", false));
    let pid = d.child.id().expect("pid").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status();
    d.until("reload ok", |t| {
        t.contains("scarecrow_config_last_reload_successful 1")
    })
    .await;
}

impl Daemon {
    async fn config(&self) -> serde_json::Value {
        match reqwest::get(format!("http://127.0.0.1:{}/api/v1/config", self.port)).await {
            Ok(r) => serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// `/api/v1/config` once `f` holds for it.
    async fn config_until(
        &self,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let config = self.config().await;
            if f(&config) {
                return config;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{config}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A daemon on `dir`, whose `checks/` the caller has filled: files written
/// before it starts make no events for its watch.
fn start(dir: tempfile::TempDir) -> Daemon {
    let port = free_port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n"),
    )
    .expect("config");
    Daemon {
        port,
        child: Reaped(
            run_daemon(&dir.path().join("config.toml"))
                .spawn()
                .expect("daemon"),
        ),
        dir,
    }
}

/// Reading is an event to inotify, and a rescan reads every file: a watch
/// that took reads for changes reloaded once a second, forever, after one
/// `cat`.
#[tokio::test(flavor = "multi_thread")]
async fn reading_check_files_does_not_reload() {
    let site = Site::start().await;
    let dir = common::scratch("reload-read");
    let checks = dir.path().join("checks");
    std::fs::create_dir_all(&checks).expect("mkdir");
    for name in ["diesel", "weather"] {
        std::fs::write(
            checks.join(format!("{name}.toml")),
            check(&site.url, "/diesel/order", false),
        )
        .expect("write check");
    }
    let d = start(dir);
    let loaded = d
        .config_until("both files loaded", |c| {
            c["files"].as_array().is_some_and(|f| f.len() == 2)
        })
        .await["loaded_at"]
        .clone();

    // Reads over several debounce periods, like a dashboard tailing them.
    let reading = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < reading {
        for entry in std::fs::read_dir(&checks).expect("read dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            assert!(!text.is_empty());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A reload the reads had asked for lands within a debounce (500 ms).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(d.config().await["loaded_at"], loaded, "reads reloaded");

    // The watch is alive: a write does reload.
    d.write("weather.toml", &check(&site.url, "/weather", false));
    d.config_until("a write reloads", |c| c["loaded_at"] != loaded)
        .await;
}

/// A Kubernetes ConfigMap volume: the files are symlinks into `..data`, a
/// symlink to a timestamped directory; an update writes a new directory,
/// links `..data_tmp` to it and renames that over `..data`.
#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let site = Site::start().await;
    let dir = common::scratch("reload-configmap");
    let checks = dir.path().join("checks");
    let old = checks.join("..2026_01_01_00_00_00.1");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(
        old.join("swap.toml"),
        check(&site.url, "/diesel/order", true),
    )
    .expect("write check");
    symlink("..2026_01_01_00_00_00.1", checks.join("..data")).expect("..data");
    symlink("..data/swap.toml", checks.join("swap.toml")).expect("swap.toml");
    let d = start(dir);
    d.until("swap loaded and passing", |t| {
        t.contains(r#"scarecrow_check_up{check="swap"} 1"#)
    })
    .await;

    // The kubelet's steps, with a pause before the rename: the rename alone
    // must be enough to reload.
    let new = checks.join("..2026_01_01_00_01_00.2");
    std::fs::create_dir_all(&new).expect("mkdir");
    std::fs::write(new.join("swap.toml"), check(&site.url, "/weather", true)).expect("write");
    symlink("..2026_01_01_00_01_00.2", checks.join("..data_tmp")).expect("..data_tmp");
    let loaded = d.config().await["loaded_at"].clone();
    d.config_until("the new directory seen", |c| c["loaded_at"] != loaded)
        .await;
    assert!(
        d.metrics()
            .await
            .contains(r#"scarecrow_check_up{check="swap"} 1"#),
        "nothing swapped yet"
    );
    std::fs::rename(checks.join("..data_tmp"), checks.join("..data")).expect("swap");
    d.until("the swapped check failing", |t| {
        t.contains(r#"scarecrow_check_up{check="swap"} 0"#)
    })
    .await;
    // Then the kubelet removes the old directory.
    std::fs::remove_dir_all(&old).expect("old data");
}

/// `config.toml` for the SIGHUP test: a failure threshold, a coordinator
/// and, when `window`, a maintenance window over check `x` for a day
/// either side of now.
fn sighup_config(
    port: u16,
    dir: &std::path::Path,
    threshold: u32,
    coordinator: &str,
    window: bool,
) -> String {
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n[incidents]\nfailure_threshold = {threshold}\n[roles]\ncoordinator = \"{coordinator}\"\n",
        dir.join("store.db").display()
    );
    if window {
        let now = chrono::Utc::now();
        let day = chrono::TimeDelta::days(1);
        text.push_str(&format!(
            "[[maintenance]]\nname = \"deploy\"\nchecks = [\"x\"]\nstart = \"{}\"\nend = \"{}\"\n",
            (now - day).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            (now + day).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    text
}

impl Daemon {
    fn hangup(&self) {
        let pid = self.child.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Open incidents through the API, polled until one of `check` shows.
    async fn open_incident(&self, check: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/api/v1/incidents?open=true", self.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let list: serde_json::Value = match reqwest::get(&url).await {
                Ok(r) => {
                    serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or_default()
                }
                Err(_) => serde_json::Value::Null,
            };
            let found = list["incidents"]
                .as_array()
                .and_then(|l| l.iter().find(|i| i["feature"]["check"] == check).cloned());
            if let Some(i) = found {
                return i;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no open incident of {check}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A SIGHUP that changes only `config.toml` reaches every check: a removed
/// maintenance window and new roles apply to a check whose file did not
/// change, and a lower failure threshold declares.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_config_toml_roles_windows_and_thresholds_to_unchanged_checks() {
    let site = Site::start().await;
    let port = free_port();
    let dir = common::scratch("reload-sighup");
    std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        sighup_config(port, dir.path(), 1000, "@before", true),
    )
    .expect("config");
    // `x` keeps its own threshold, so new defaults do not change its file's
    // meaning: only the reload of config.toml itself can reach it.
    let failing = check(&site.url, "/weather", true);
    std::fs::write(
        dir.path().join("checks/x.toml"),
        format!("failure_threshold = 1\n{failing}"),
    )
    .expect("x");
    std::fs::write(dir.path().join("checks/y.toml"), &failing).expect("y");
    let d = Daemon {
        port,
        child: Reaped(run_daemon(&config).spawn().expect("daemon")),
        dir,
    };
    d.until("x in maintenance, failing", |t| {
        t.contains(r#"scarecrow_maintenance_active{check="x"} 1"#)
            && t.contains(r#"scarecrow_check_up{check="x"} 0"#)
    })
    .await;

    // The window goes and the coordinator changes; x's file stays as it is.
    std::fs::write(
        &config,
        sighup_config(port, d.dir.path(), 1000, "@after", false),
    )
    .expect("config");
    d.hangup();
    d.until("x out of maintenance", |t| {
        t.contains(r#"scarecrow_maintenance_active{check="x"} 0"#)
    })
    .await;
    let x = d.open_incident("x").await;
    assert_eq!(x["feature"]["roles"]["coordinator"], "@after", "{x}");
    let open: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!(
            "http://127.0.0.1:{port}/api/v1/incidents?open=true"
        ))
        .await
        .expect("api")
        .text()
        .await
        .expect("body"),
    )
    .expect("json");
    assert_eq!(
        open["incidents"].as_array().map(Vec::len),
        Some(1),
        "y stays below 1000 failures: {open}"
    );

    // y, failing all along, declares once the threshold comes down to 1.
    std::fs::write(
        &config,
        sighup_config(port, d.dir.path(), 1, "@after", false),
    )
    .expect("config");
    d.hangup();
    let y = d.open_incident("y").await;
    assert_eq!(y["feature"]["roles"]["coordinator"], "@after", "{y}");
}
