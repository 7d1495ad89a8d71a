//! Secrets never leave a run: a site that echoes the Authorization header,
//! the posted password and its cookies makes a flow fail with all of that in
//! its evidence, and no output of scarecrow may show any of it — `once` in
//! every format with debug logs, the incident webhook body, the metrics.

mod common;
mod redaction_support;

use std::path::Path;

use chrono::Utc;
use scarecrow::check::{Check, Outcome, Redacted, RunResult};
use scarecrow::config::{self, Defaults};
use scarecrow::incident::machine::{CheckState, Observation};
use scarecrow::incident::{Feature, Thresholds};
use scarecrow::metrics::Metrics;
use scarecrow::probe::{Probe, ProbeSettings};
use scarecrow::secret::Secrets;
use scarecrow::sink::webhook;

use redaction_support::{
    PASSWORD, SECRET_NAME, THEME, assert_clean, cookie_check_toml, cookie_site, leaky_site,
};

/// A config and one check file in a fresh directory, removed when dropped.
fn write_check(site: &str) -> tempfile::TempDir {
    let tmp = common::scratch("redaction");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "checks_dir = \"checks\"\n").expect("config");
    let check = redaction_support::check_toml(site);
    std::fs::write(dir.join("checks/leaky.toml"), check).expect("check");
    tmp
}

fn load(dir: &Path) -> Check {
    let loaded = config::load_checks(&[dir.join("checks")], &Defaults::default(), &|name| {
        (name == SECRET_NAME).then(|| PASSWORD.to_owned())
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.checks.into_iter().next().expect("one check")
}

async fn once(dir: &Path, format: &str, log: &str) -> (String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["once", "--config"])
        .arg(dir.join("config.toml"))
        .args(["--format", format])
        .env(SECRET_NAME, PASSWORD)
        .env("RUST_LOG", log)
        .output()
        .await
        .expect("run scarecrow");
    assert_eq!(out.status.code(), Some(1), "{format}: the check must fail");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn no_output_of_a_failing_flow_shows_its_secrets() {
    let site = leaky_site().await;
    let dir = write_check(&site);

    for (format, log) in [
        ("human", "debug"),
        ("json", "debug"),
        ("junit", "debug"),
        ("human", "trace"),
    ] {
        let (stdout, stderr) = once(dir.path(), format, log).await;
        assert_clean(&format!("once --format {format} (stdout)"), &stdout);
        assert_clean(&format!("once --format {format} (stderr)"), &stderr);
        // The evidence is still there, with the secrets cut out of it.
        assert!(stdout.contains("log in"), "{stdout}");
        assert!(stdout.contains("[redacted]"), "{format}: {stdout}");
        assert!(stderr.contains("DEBUG"), "debug logs are on: {stderr}");
    }
    let (json, _) = once(dir.path(), "json", "warn").await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let step = &doc["results"][0]["steps"][1];
    assert_eq!(step["failures"].as_array().map(Vec::len), Some(7), "{step}");
    // The excerpt shows what the first failing assertion looked at: the
    // password the page echoed, redacted once decoded from the page.
    let excerpt = step["excerpt"].as_str().expect("an excerpt");
    assert_eq!(excerpt, "[redacted]");
    let quoted = step["failures"].to_string();
    for shown in [
        r#"got \"var pw = \\\"[redacted]\\\";\""#,
        "csrf=[redacted]&user=ann&password=[redacted]&sid=[redacted]",
        "cookie: session=[redacted]",
    ] {
        assert!(quoted.contains(shown), "{shown}: {quoted}");
    }
    let failures = step["failures"].as_array().expect("failures");
    assert!(
        failures.iter().any(|f| f
            .as_str()
            .is_some_and(|f| f.contains("not shown: it is a credential"))),
        "{step}"
    );
    // The structured failures carry what the site showed, redacted too.
    let details = step["failure_details"].as_array().expect("failure details");
    assert_eq!(details.len(), failures.len(), "{step}");
    assert!(
        details
            .iter()
            .filter_map(|d| d["actual"].as_str())
            .any(|a| a.contains("[redacted]")),
        "{step}"
    );

    // The same run in-process, through the incident machine to the webhook
    // body, and into the metrics.
    let check = load(dir.path());
    let probe = Probe::new(ProbeSettings {
        secrets: Secrets::default().with_fallback(SECRET_NAME, PASSWORD),
        ..ProbeSettings::default()
    })
    .expect("probe");
    let run: Redacted<RunResult> = probe.run(&check).await;
    assert!(matches!(run.outcome, Outcome::Failure { .. }), "{run:?}");
    assert_clean("the run's Debug", &format!("{run:?}"));
    assert_clean("the check's Debug", &format!("{check:?}"));

    let feature = Feature {
        check: check.name.clone(),
        ..Feature::default()
    };
    let mut state = CheckState::default();
    let event = state
        .observe(&Observation {
            run_id: "run-1",
            result: &run,
            critical: true,
            thresholds: Thresholds {
                failure: 1,
                ..Thresholds::default()
            },
            feature: &|| feature.clone(),
            key: &|| "scarecrow:default:leaky".to_owned(),
            now: Utc::now(),
            in_maintenance: false,
            held: false,
            streak: None,
            verdict: None,
            links: None,
        })
        .expect("a declared incident");
    assert!(!event.incident.evidence.failure_details.is_empty());
    let evidence = serde_json::to_string(&event.incident.evidence).expect("evidence JSON");
    assert_clean("the incident's evidence", &evidence);
    let body = webhook::render(&event).expect("render");
    let body = String::from_utf8_lossy(&body);
    assert_clean("the webhook body", &body);
    assert!(body.contains("[redacted]"), "{body}");

    let metrics = Metrics::new();
    metrics.add_check(&check);
    metrics.observe_run(&run);
    assert_clean("the metrics", &metrics.render());
}

/// A session cookie the site sets, echoed on the same failing page and on
/// the next one; a cookie the check names public stays shown.
#[tokio::test(flavor = "multi_thread")]
async fn cookies_of_a_run_are_redacted_unless_public() {
    let site = cookie_site().await;
    let tmp = common::scratch("redaction-cookies");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "checks_dir = \"checks\"\n").expect("config");
    for (name, next) in [("own", false), ("next", true)] {
        let check = cookie_check_toml(&site, next);
        std::fs::write(dir.join(format!("checks/{name}.toml")), check).expect("check");
    }
    let (json, stderr) = once(dir, "json", "debug").await;
    assert_clean("once --format json (stdout)", &json);
    assert_clean("once --format json (stderr)", &stderr);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{json}");
    for result in results {
        let steps = result["steps"].as_array().expect("steps");
        let excerpt = steps
            .last()
            .and_then(|s| s["excerpt"].as_str())
            .expect("an excerpt");
        assert!(excerpt.contains("sid=[redacted]"), "{excerpt}");
        assert!(excerpt.contains(THEME), "a public cookie stays: {excerpt}");
        assert!(
            excerpt.contains("lang=en"),
            "a short cookie stays: {excerpt}"
        );
    }
}
