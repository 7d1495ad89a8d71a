//! One outage, one incident, end to end through the daemon and a real
//! receiver: checks behind a failing gateway (`depends_on`) join its
//! incident instead of declaring their own; the outage brake declares one
//! incident when many critical checks fail at once; and the loader's
//! refusals of unknown parents and cycles.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Reaped, Received, Receiver, free_port, run_daemon, scratch};

const FEATURES: [&str; 3] = ["weather", "member-login", "diesel-order"];

/// A site that refuses connections until [`Site::up`] serves it.
struct Site {
    url: String,
    port: u16,
}

impl Site {
    fn down() -> Site {
        let port = free_port();
        Site {
            url: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    async fn up(&self) {
        self.serve(axum::Router::new().fallback(async || "ok"))
            .await;
    }

    /// The home page answers; every feature's page is a 500.
    async fn up_but_features_broken(&self) {
        let broken = async || (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken");
        self.serve(
            axum::Router::new()
                .route("/", axum::routing::get(async || "ok"))
                .fallback(broken),
        )
        .await;
    }

    async fn serve(&self, app: axum::Router) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the site's port");
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

/// The gateway (not critical) and three critical features behind it, all
/// every second, in `dir`; returns the daemon's port.
fn setup(dir: &Path, site: &str, hook: &str) -> u16 {
    setup_with(dir, site, hook, "1s", 3)
}

/// As [`setup`], with the gateway's interval and the features' threshold.
fn setup_with(dir: &Path, site: &str, hook: &str, gateway_every: &str, threshold: u32) -> u16 {
    let port = free_port();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n\n[store]\npath = \"data/scarecrow.db\"\n\n\
             [[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("checks/gateway.toml"),
        format!(
            "description = \"The site answers at all\"\nevery = \"{gateway_every}\"\ntimeout = \"2s\"\n\n\
             [[step]]\nname = \"home\"\nurl = \"{site}/\"\n"
        ),
    )
    .expect("gateway");
    for feature in FEATURES {
        // Three failures: the gateway has surely run by then.
        std::fs::write(
            dir.join(format!("checks/{feature}.toml")),
            format!(
                "critical = true\ndepends_on = [\"gateway\"]\nevery = \"1s\"\ntimeout = \"2s\"\n\
                 failure_threshold = {threshold}\n\n[[step]]\nname = \"open\"\nurl = \"{site}/{feature}\"\n"
            ),
        )
        .expect("feature");
    }
    port
}

async fn eventually<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon of `config`, killed when dropped.
fn start(config: &Path) -> Reaped {
    Reaped(run_daemon(config).spawn().expect("daemon"))
}

/// The checks an event lists as affected, sorted.
fn affected(r: &Received) -> Vec<String> {
    let mut names: Vec<String> = r.body["data"]["affected"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["check"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until the latest event of `check`'s incident lists `n` affected
/// checks, and returns it.
async fn listing(hook: &Receiver, check: &str, n: usize) -> Received {
    eventually(
        &format!("{n} checks in the incident of {check}"),
        60,
        || {
            let last = hook
                .all()
                .into_iter()
                .rev()
                .find(|r| r.body["data"]["check"] == check)?;
            (affected(&last).len() == n).then_some(last)
        },
    )
    .await
}

/// The site goes down: one incident, the gateway's, declared once and
/// listing the three features; one resolution when the site is back.
#[tokio::test(flavor = "multi_thread")]
async fn features_behind_a_failing_gateway_join_one_incident() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("dependencies");
    let port = setup(tmp.path(), &site.url, &hook.url);
    let _daemon = start(&tmp.path().join("config.toml"));
    let all_three = listing(&hook, "gateway", 3).await;
    let mut want: Vec<String> = FEATURES.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(affected(&all_three), want);
    assert_eq!(all_three.body["data"]["check"], "gateway");
    let id = all_three.body["data"]["incident"].clone();

    // The features keep their own status, blocked by the gateway.
    let api = format!("http://127.0.0.1:{port}");
    let weather = reqwest::get(format!("{api}/api/v1/checks/weather"))
        .await
        .expect("api")
        .text()
        .await
        .expect("text");
    let weather: serde_json::Value = serde_json::from_str(&weather).expect("json");
    assert_eq!(weather["status"], "down", "{weather}");
    assert_eq!(weather["blocked_by"], "gateway", "{weather}");
    let page = reqwest::get(format!("{api}/"))
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains(r##"Blocked by <a href="#check-gateway">gateway</a>"##),
        "{page}"
    );

    site.up().await;
    eventually("the resolution", 60, || {
        (!hook.delivered("incident.resolved").is_empty()).then_some(())
    })
    .await;
    // Runs go on a little: nothing more is declared.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let declared = hook.delivered("incident.declared");
    assert_eq!(declared.len(), 1, "one declaration: {declared:#?}");
    assert_eq!(declared[0].body["data"]["check"], "gateway");
    let resolved = hook.delivered("incident.resolved");
    assert_eq!(resolved.len(), 1, "one resolution");
    assert_eq!(resolved[0].body["data"]["incident"], id);
    let kinds: Vec<String> = hook
        .all()
        .iter()
        .filter(|r| r.body["data"]["incident"] != id)
        .map(|r| r.raw.clone())
        .collect();
    assert!(kinds.is_empty(), "events of other incidents: {kinds:?}");
    for update in hook.delivered("incident.updated") {
        assert_eq!(update.body["data"]["incident"], id);
    }
    // Each feature's own failing step is in the evidence.
    for a in all_three.body["data"]["affected"]
        .as_array()
        .expect("affected")
    {
        assert_eq!(a["step"], "open", "{a}");
        assert_eq!(a["reason"], "connect", "{a}");
    }
}

/// The gateway recovers while the features still fail: its incident is
/// resolved, and each feature then declares its own.
#[tokio::test(flavor = "multi_thread")]
async fn features_still_failing_when_the_gateway_recovers_declare_their_own() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("dependencies-recover");
    setup(tmp.path(), &site.url, &hook.url);
    let _daemon = start(&tmp.path().join("config.toml"));
    listing(&hook, "gateway", 3).await;
    site.up_but_features_broken().await;
    let declared = eventually("each feature's own incident", 60, || {
        let d = hook.delivered("incident.declared");
        (d.len() == 4).then_some(d)
    })
    .await;
    let mut own: Vec<String> = declared[1..]
        .iter()
        .map(|d| {
            d.body["data"]["check"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    own.sort();
    assert_eq!(own, ["diesel-order", "member-login", "weather"]);
    let resolved = hook.delivered("incident.resolved");
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0].body["data"]["check"], "gateway");
}

/// A gateway scheduled hourly has not run when the features, every second,
/// reach their threshold: it is run first, and they join its incident
/// rather than overtake it with three of their own.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_gateway_runs_before_fast_features_declare() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("dependencies-slow");
    setup_with(tmp.path(), &site.url, &hook.url, "1h", 1);
    let _daemon = start(&tmp.path().join("config.toml"));
    listing(&hook, "gateway", 3).await;
    let declared = hook.delivered("incident.declared");
    assert_eq!(declared.len(), 1, "one declaration: {declared:#?}");
    assert_eq!(declared[0].body["data"]["check"], "gateway");
}

/// Planned work on the gateway puts the features behind it in maintenance
/// too: while it lasts, nothing is declared.
#[tokio::test(flavor = "multi_thread")]
async fn maintenance_of_the_gateway_covers_the_features_behind_it() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("dependencies-maintenance");
    let port = setup(tmp.path(), &site.url, &hook.url);
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let config = tmp.path().join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[[maintenance]]\nname = \"gateway work\"\nchecks = [\"gateway\"]\nstart = \"{}\"\nend = \"{}\"\n",
        fmt(now - chrono::TimeDelta::minutes(1)),
        fmt(now + chrono::TimeDelta::hours(1))
    ));
    std::fs::write(&config, text).expect("config");
    let _daemon = start(&config);
    // Every feature fails past its threshold of three.
    let api = format!("http://127.0.0.1:{port}/api/v1/checks/weather");
    let mut failing_for = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(resp) = reqwest::get(&api).await else {
            continue;
        };
        let body: serde_json::Value =
            serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or_default();
        if body["status"] == "down" {
            failing_for += 1;
        }
        if failing_for >= 25 {
            break;
        }
    }
    assert!(failing_for >= 25, "weather never failed for 5 s");
    assert!(
        hook.all().is_empty(),
        "declared during the window: {:#?}",
        hook.all()
    );
}

/// Five critical checks fail at once with the brake at three: the first
/// three declare (nothing is delayed), the outage incident lists them, the
/// other two join it; it resolves when all five have recovered, each
/// recovery an update.
#[tokio::test(flavor = "multi_thread")]
async fn the_outage_brake_declares_one_incident_for_many_failing_checks() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("outage");
    let dir = tmp.path();
    let port = free_port();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n\n[store]\npath = \"data/scarecrow.db\"\n\n\
             [incidents]\noutage = {{ min_checks = 3, min_share = \"50%\", window = \"1m\" }}\n\n\
             [[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .expect("config");
    for n in 1..=5 {
        std::fs::write(
            dir.join(format!("checks/feature-{n}.toml")),
            format!(
                "critical = true\nevery = \"1s\"\ntimeout = \"2s\"\n\n[[step]]\nname = \"open\"\nurl = \"{}/{n}\"\n",
                site.url
            ),
        )
        .expect("check");
    }
    let _daemon = start(&dir.join("config.toml"));
    let outage = |r: &Received| r.body["data"]["check"] == "@outage";
    listing(&hook, "@outage", 5).await;
    let declared = hook.delivered("incident.declared");
    let (brake, own): (Vec<_>, Vec<_>) = declared.iter().partition(|r| outage(r));
    assert_eq!(brake.len(), 1, "one outage incident: {brake:#?}");
    assert!(
        brake[0].body["data"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with(":@outage")),
        "{:?}",
        brake[0].body["data"]["key"]
    );
    assert_eq!(own.len(), 3, "the three that made the outage declared");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("scarecrow_incidents_folded_total{reason=\"outage\"} 2"),
        "{metrics}"
    );

    site.up().await;
    eventually("the outage resolved", 60, || {
        hook.delivered("incident.resolved")
            .into_iter()
            .find(|r| outage(r))
    })
    .await;
    let updates = hook
        .delivered("incident.updated")
        .into_iter()
        .filter(|r| outage(r))
        .filter(|r| {
            r.body["data"]["affected"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| !x["recovered_at"].is_null()))
        })
        .count();
    assert!(
        updates >= 4,
        "each recovery but the last is an update: {updates}"
    );
    let resolved = hook.delivered("incident.resolved");
    assert_eq!(resolved.iter().filter(|r| outage(r)).count(), 1);
    assert_eq!(resolved.len(), 4, "the three own incidents and the outage");
}

fn validate(dir: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["validate", "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A parent no file defines and a cycle are load errors at the entry of
/// `depends_on` that names them.
#[test]
fn unknown_parents_and_cycles_are_load_errors_with_their_position() {
    let tmp = scratch("dependencies-validate");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "").expect("config");
    let check = |name: &str, deps: &str| {
        std::fs::write(
            dir.join(format!("checks/{name}.toml")),
            format!("depends_on = [{deps}]\n\n[[step]]\nurl = \"http://127.0.0.1:9/\"\n"),
        )
        .expect("check");
    };
    check("weather", "\"gateway\", \"gatway\"");
    check("gateway", "\"proxy\"");
    check("proxy", "\"gateway\"");
    let (code, stderr) = validate(dir);
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "error: `depends_on`: no check named `gatway` runs",
        "checks/weather.toml:1:26",
        "error: `depends_on` makes a cycle: gateway → proxy → gateway",
        "checks/gateway.toml:1:15",
        "error: `depends_on` makes a cycle: proxy → gateway → proxy",
        "checks/proxy.toml:1:15",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
}
