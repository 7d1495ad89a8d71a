//! `depends_on`: checks behind a failing gateway join its incident instead
//! of declaring their own, end to end through the daemon and a real
//! receiver; and the loader's refusals of unknown parents and cycles.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Reaped, Receiver, free_port, run_daemon, scratch};

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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the site's port");
        let app = axum::Router::new().fallback(async || "ok");
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
}

/// The gateway (not critical) and three critical features behind it, all
/// every second, in `dir`; returns the daemon's port.
fn setup(dir: &Path, site: &str, hook: &str) -> u16 {
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
            "description = \"The site answers at all\"\nevery = \"1s\"\ntimeout = \"2s\"\n\n\
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
                 failure_threshold = 3\n\n[[step]]\nname = \"open\"\nurl = \"{site}/{feature}\"\n"
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

/// The site goes down: one incident, the gateway's, declared once and
/// listing the three features; one resolution when the site is back.
#[tokio::test(flavor = "multi_thread")]
async fn features_behind_a_failing_gateway_join_one_incident() {
    let hook = Receiver::start().await;
    let site = Site::down();
    let tmp = scratch("dependencies");
    let port = setup(tmp.path(), &site.url, &hook.url);
    let mut daemon = run_daemon(&tmp.path().join("config.toml"));
    let _daemon = Reaped(daemon.spawn().expect("daemon"));

    let listed = |r: &common::Received| -> Vec<String> {
        r.body["data"]["affected"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["check"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all_three = eventually("the three features in the incident", 60, || {
        let last = hook.all().into_iter().last()?;
        let mut got = listed(&last);
        got.sort();
        let mut want: Vec<String> = FEATURES.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        (got == want).then_some(last)
    })
    .await;
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
