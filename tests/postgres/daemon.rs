//! The daemon end to end on a PostgreSQL store: an incident across a
//! SIGKILL, PostgreSQL stopped under a running daemon, and `store copy`
//! from the SQLite store of another.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{self, Reaped, Receiver, Site, free_port, run_daemon};

use super::database;

/// A daemon in its own directory, storing to PostgreSQL `db`. Fields drop
/// in order: the daemon before its directory.
pub(super) struct Daemon {
    pub(super) child: Option<Reaped>,
    pub(super) dir: tempfile::TempDir,
    pub(super) port: u16,
    password: String,
}

const CHECKS: usize = 3;

impl Daemon {
    /// [`CHECKS`] critical checks of `site` every second, declaring to
    /// `hook`; `store` is the `[store]` table.
    fn setup(name: &str, store: &str, password: &str, site: &str, hook: &str) -> Daemon {
        let port = free_port();
        let dir = common::scratch(&format!("pg-{name}"));
        std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n\n{store}\n\
             [[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("config");
        for n in 0..CHECKS {
            let check = format!(
                "critical = true\nevery = \"1s\"\ntimeout = \"2s\"\n\n\
                 [[step]]\nname = \"home\"\nurl = \"{site}/\"\n"
            );
            std::fs::write(dir.path().join(format!("checks/feature-{n}.toml")), check)
                .expect("check");
        }
        Daemon {
            child: None,
            dir,
            port,
            password: password.to_owned(),
        }
    }

    pub(super) fn on(
        name: &str,
        db: &common::postgres::Database,
        site: &str,
        hook: &str,
    ) -> Daemon {
        let store = format!(
            "[store]\nurl = \"{}\"\npassword = \"${{secret:SCARECROW_STORE_PASSWORD}}\"\n",
            db.url
        );
        Daemon::setup(name, &store, &db.password, site, hook)
    }

    pub(super) fn start(&mut self) {
        self.start_with(&[]);
    }

    /// [`Daemon::start`], with `env` set too, e.g. `SCARECROW_LOCATION`.
    pub(super) fn start_with(&mut self, env: &[(&str, &str)]) {
        let mut command = run_daemon(&self.dir.path().join("config.toml"));
        command
            .env("RUST_LOG", "warn")
            .env("SCARECROW_STORE_PASSWORD", &self.password)
            .envs(env.iter().copied());
        self.child = Some(Reaped(command.spawn().expect("start daemon")));
    }

    pub(super) fn signal(&mut self, signal: &str) {
        let pid = self.child.as_ref().and_then(|c| c.id()).expect("running");
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, and the exit code once it stopped.
    pub(super) async fn stop(&mut self) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take()?;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    pub(super) async fn metrics(&self) -> Option<String> {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// One series' value, e.g. `scarecrow_store_up`.
    pub(super) async fn metric(&self, series: &str) -> Option<f64> {
        self.metrics()
            .await?
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// The runs the daemon has counted, over every check and result.
    async fn runs_counted(&self) -> Option<f64> {
        let text = self.metrics().await?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("scarecrow_check_runs_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    fn sqlite(&self) -> PathBuf {
        self.dir.path().join("data/scarecrow.db")
    }
}

/// Polls `f` until it answers, failing the test after `secs` seconds.
pub(super) async fn eventually<T>(
    what: &str,
    secs: u64,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Declared, SIGKILLed, restarted (once the lease the killed daemon left
/// behind expires), recovered: the receiver hears one declaration per
/// check and one resolution each, and the store holds them.
#[tokio::test(flavor = "multi_thread")]
async fn an_incident_survives_a_sigkill_and_resolves_once() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("sigkill") else {
        return;
    };
    let site = Site::start().await;
    let hook = Receiver::start().await;
    site.switch("break", "site", "").await;
    let mut d = Daemon::on("sigkill", &db, &site.url, &hook.url);
    d.start();
    eventually("the declarations", 60, async || {
        (hook.delivered("incident.declared").len() == CHECKS).then_some(())
    })
    .await;
    d.signal("KILL");
    let _ = d.child.take().expect("running").wait().await;

    site.switch("fix", "site", "").await;
    d.start();
    eventually("the resolutions", 90, async || {
        (hook.delivered("incident.resolved").len() == CHECKS).then_some(())
    })
    .await;
    // Time for a repeat to show, had there been one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Delivery is at least once: a declaration delivered just before the
    // SIGKILL, its outcome not yet stored, goes out again with the same
    // event id, which receivers deduplicate on. One event each.
    let events = |kind: &str| {
        let ids: std::collections::BTreeSet<String> = hook
            .delivered(kind)
            .iter()
            .map(|r| r.headers["webhook-id"].clone())
            .collect();
        ids.len()
    };
    assert_eq!(events("incident.declared"), CHECKS);
    assert_eq!(events("incident.resolved"), CHECKS);
    assert_eq!(d.stop().await, Some(0));
    assert_eq!(
        db.psql("SELECT count(*), count(resolved_at) FROM incidents"),
        format!("{CHECKS}|{CHECKS}")
    );
    assert_eq!(
        db.psql("SELECT count(*) FROM lease WHERE expires_at > clock_timestamp()"),
        "0",
        "given up on stop"
    );
}

/// PostgreSQL stopped for 30 s under a running daemon: it goes on probing,
/// says the store is down, and once it is back the runs of the outage are
/// written, none lost and none twice.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_for_30_seconds_loses_and_doubles_no_run() {
    let _alone = super::SHARED.write().await;
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database("outage");
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut d = Daemon::on("outage", &db, &site.url, &hook.url);
    d.start();
    // Serving /metrics: the store is open and migrated.
    eventually("the daemon", 60, async || {
        d.metric("scarecrow_store_up").await
    })
    .await;
    eventually("runs in the store", 60, async || {
        (db.psql("SELECT count(*) FROM runs").parse::<u64>().ok()? >= 10).then_some(())
    })
    .await;

    cluster.stop();
    let down_at = chrono::Utc::now();
    eventually("scarecrow_store_up 0", 20, async || {
        (d.metric("scarecrow_store_up").await? == 0.0).then_some(())
    })
    .await;
    let before = d.runs_counted().await.expect("metrics");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = d
        .runs_counted()
        .await
        .expect("metrics while the store is down");
    assert!(
        during > before,
        "it goes on probing: {before} then {during}"
    );
    cluster.start();
    let up_at = chrono::Utc::now();

    eventually("scarecrow_store_up 1", 60, async || {
        (d.metric("scarecrow_store_up").await? == 1.0).then_some(())
    })
    .await;
    let counted = d.runs_counted().await.expect("metrics");
    assert_eq!(d.stop().await, Some(0));

    let (rows, distinct): (f64, f64) = {
        let out = db.psql("SELECT count(*), count(DISTINCT run_id) FROM runs");
        let (a, b) = out.split_once('|').expect("two columns");
        (a.parse().expect("count"), b.parse().expect("count"))
    };
    assert_eq!(rows, distinct, "no run written twice");
    assert!(
        rows >= counted,
        "every run counted is stored: {rows} < {counted}"
    );
    let outage = db.psql(&format!(
        "SELECT count(*) FROM runs WHERE started_at > '{}' AND started_at < '{}'",
        down_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        up_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    ));
    let outage: f64 = outage.parse().expect("count");
    assert!(outage >= during - before, "the outage's runs: {outage}");
    assert!(hook.all().is_empty(), "nothing declared: the site was up");
}

/// A SQLite daemon's history copied into PostgreSQL, twice: the second
/// copy adds nothing, and a daemon on PostgreSQL reads the incident.
#[tokio::test(flavor = "multi_thread")]
async fn store_copy_moves_a_sqlite_history_and_can_run_again() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("copy") else {
        return;
    };
    let site = Site::start().await;
    let hook = Receiver::start().await;
    site.switch("break", "site", "").await;
    let mut d = Daemon::setup(
        "copy",
        "[store]\npath = \"data/scarecrow.db\"\n",
        "",
        &site.url,
        &hook.url,
    );
    d.start();
    eventually("the declarations", 60, async || {
        (hook.delivered("incident.declared").len() == CHECKS).then_some(())
    })
    .await;
    assert_eq!(d.stop().await, Some(0));

    let copy = async || {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
            .args(["store", "copy", "--from"])
            .arg(d.sqlite())
            .args(["--to", &db.url])
            .env("PGPASSWORD", &db.password)
            .output()
            .await
            .expect("scarecrow store copy");
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    };
    let first = copy().await;
    let runs = line(&first, "runs");
    assert!(runs.0 > 0 && runs.0 == runs.1, "{first}");
    assert_eq!(
        line(&first, "incidents"),
        (CHECKS as u64, CHECKS as u64),
        "{first}"
    );
    assert_eq!(
        line(&first, "check_states"),
        (CHECKS as u64, CHECKS as u64),
        "{first}"
    );
    let again = copy().await;
    assert_eq!(line(&again, "runs"), (runs.0, 0), "{again}");
    assert_eq!(line(&again, "incidents"), (CHECKS as u64, 0), "{again}");
    assert_eq!(
        db.psql("SELECT count(*) FROM runs"),
        runs.0.to_string(),
        "nothing twice"
    );

    // The daemon, now on PostgreSQL, resumes the open incidents: the site
    // recovers and each is resolved, none declared again.
    let mut d = Daemon::on("copied", &db, &site.url, &hook.url);
    site.switch("fix", "site", "").await;
    d.start();
    eventually("the resolutions", 60, async || {
        (hook.delivered("incident.resolved").len() == CHECKS).then_some(())
    })
    .await;
    assert_eq!(d.stop().await, Some(0));
    assert_eq!(hook.delivered("incident.declared").len(), CHECKS);
}

/// `runs: 12 read, 12 new` → (12, 12).
fn line(out: &str, table: &str) -> (u64, u64) {
    let rest = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{table}: ")))
        .unwrap_or_else(|| panic!("no line for {table} in {out}"));
    let (read, new) = rest.split_once(" read, ").expect("read, new");
    let new = new.strip_suffix(" new").expect("new");
    (read.parse().expect("read"), new.parse().expect("new"))
}
