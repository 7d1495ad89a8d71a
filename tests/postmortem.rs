//! `scarecrow postmortem`: a draft from a scripted incident in a real store,
//! pinned by a golden file (times and the incident id normalised).

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DurationRound as _, TimeDelta, Utc};
use scarecrow::check::{
    HttpStep, Outcome, Reason, Redacted, RunRecord, RunResult, StepDetail, StepResult,
};
use scarecrow::incident::machine::{CheckState, Observation};
use scarecrow::incident::store::{Claimer, DeliveryState, OutboxItem, Store as _, Transition};
use scarecrow::incident::{Feature, Thresholds};
use scarecrow::store::{Backend, Store};

fn run(ok: bool, at: chrono::DateTime<Utc>) -> Redacted<RunResult> {
    Redacted::vouched(RunResult {
        check: "diesel-order".into(),
        started_at: at,
        duration: Duration::from_millis(42),
        outcome: match ok {
            true => Outcome::Success,
            false => Outcome::Failure {
                reason: Reason::Assertion,
                step: Some("open the order form".into()),
                message: r#"step "open the order form": selector "form#order input[name=liters]" matched nothing"#.into(),
            },
        },
        steps: vec![StepResult {
            name: "open the order form".into(),
            url: "http://127.0.0.1:8780/diesel/order".into(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".into(),
                status: Some(200),
                ..HttpStep::default()
            }),
            duration: Duration::from_millis(40),
            failures: if ok { vec![] } else { vec![r#"selector "form#order input[name=liters]" matched nothing"#.into()] },
            excerpt: (!ok).then(|| "Greenfield Farmers' Union Diesel order".into()),
            ..StepResult::default()
        }],
    })
}

/// Writes the runs (pass?, (hour, minute) yesterday) of `diesel-order` to
/// the store in `dir` as the daemon would; returns the incident's id.
async fn script(dir: &Path, runs: &[(bool, (i64, i64))]) -> String {
    let runs: Vec<(bool, TimeDelta)> = runs
        .iter()
        .map(|&(ok, (h, m))| (ok, TimeDelta::hours(h) + TimeDelta::minutes(m)))
        .collect();
    script_at(dir, &runs).await
}

/// As [`script`], with each run's time as an offset from yesterday's start.
async fn script_at(dir: &Path, runs: &[(bool, TimeDelta)]) -> String {
    let store = Store::open(&Backend::Sqlite(dir.join("data/scarecrow.db")), 100).expect("store");
    let claimer = Claimer::new(Duration::from_secs(60));
    let feature = Feature {
        check: "diesel-order".into(),
        description: Some("The diesel order form takes an order".into()),
        owner: Some("shop-team".into()),
        runbook: Some("https://wiki.example.org/runbooks/diesel-order".into()),
        ..Feature::default()
    };
    let day = (Utc::now() - TimeDelta::days(1))
        .duration_trunc(TimeDelta::days(1))
        .expect("day");
    let mut state = CheckState::default();
    let mut id = String::new();
    for (n, &(ok, offset)) in runs.iter().enumerate() {
        let t = day + offset;
        let result = run(ok, t);
        let run_id = format!("run_{}", n + 1);
        let event = state.observe(&Observation {
            run_id: &run_id,
            result: &result,
            critical: true,
            thresholds: Thresholds::default(),
            feature: &|| feature.clone(),
            key: &|| "scarecrow:default:diesel-order".to_owned(),
            now: t + TimeDelta::seconds(1),
            in_maintenance: false,
        });
        store.queue_state("diesel-order", &state).expect("state");
        store
            .record_run(std::sync::Arc::new(RunRecord { run_id, result }))
            .await
            .expect("run");
        if let Some(event) = event {
            id = event.incident.id.clone();
            let mut item = OutboxItem::new(&event, "incident-webhook", event.at);
            item.state = DeliveryState::Delivered;
            item.attempts = 1;
            item.delivered_at = Some(event.at + TimeDelta::milliseconds(300));
            store
                .commit(
                    Transition {
                        check: "diesel-order".into(),
                        state: state.clone(),
                        event,
                        outbox: vec![item],
                    },
                    &claimer,
                )
                .await
                .expect("commit");
        }
    }
    store.close().await;
    id
}

#[tokio::test]
async fn a_scripted_incident_gives_the_golden_draft() {
    let tmp = common::scratch("postmortem");
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), "[incidents]\nbudget_90d = 1\n").expect("config");
    // The case that started it all: first failure 14:48, declared 14:49,
    // recovered 15:13, resolved 15:14 (a day ago, so it counts in 90 days).
    let id = script(
        dir,
        &[
            (false, (14, 48)),
            (false, (14, 49)),
            (false, (15, 0)),
            (true, (15, 13)),
            (true, (15, 14)),
        ],
    )
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["postmortem", &id, "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("postmortem");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace(&id, "inc_ID");
    let times = regex::Regex::new(r"\d{4}-\d{2}-\d{2} ").expect("regex");
    let text = times.replace_all(&text, "DAY ").into_owned();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/postmortem.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&golden).expect("golden file (run with UPDATE_GOLDEN=1)");
    assert!(expected == text, "golden postmortem.md differs:\n{text}");
}

/// `incidents resolve` with no daemon running: the resolution is written to
/// the store and sent through the configured sink right away.
#[tokio::test(flavor = "multi_thread")]
async fn resolving_by_hand_without_a_daemon_sends_the_resolution() {
    let hook = common::Receiver::start().await;
    let tmp = common::scratch("resolve");
    let dir = tmp.path();
    let config = format!(
        "listen = \"127.0.0.1:{}\"\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        common::free_port(),
        hook.url
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let id = script(dir, &[(false, (14, 48)), (false, (14, 49))]).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
            .args(args)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .output()
            .expect("scarecrow")
    };
    let out = cli(&["incidents", "resolve", &id, "--note", "form field restored"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no daemon was running"));
    let resolved = hook.delivered("incident.resolved");
    assert_eq!(resolved.len(), 1, "sent at once");
    assert_eq!(resolved[0].body["data"]["incident"], id.as_str());
    assert_eq!(resolved[0].body["data"]["resolution"], "manual");
    assert_eq!(resolved[0].body["data"]["note"], "form field restored");
    let open = cli(&["incidents", "--open", "--format", "json"]);
    assert_eq!(String::from_utf8_lossy(&open.stdout).trim(), "[]");
    let again = cli(&["incidents", "resolve", &id]);
    assert!(!again.status.success(), "an incident resolves once");
}

/// A 29-second incident reads "after 29s" in `scarecrow incidents`, not
/// "after 0m".
#[tokio::test]
async fn a_short_incident_is_listed_with_its_length_in_seconds() {
    let tmp = common::scratch("short-incident");
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), "").expect("config");
    let s = TimeDelta::seconds;
    // Declared a second after the second failure (at 2s), resolved a
    // second after the second pass (at 31s).
    script_at(
        dir,
        &[(false, s(0)), (false, s(1)), (true, s(15)), (true, s(30))],
    )
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["incidents", "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("incidents");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" after 29s\n"), "{text}");
}
