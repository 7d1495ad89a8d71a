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

/// A run of `diesel-order` at `at`: passing, or failing for `reason` (a
/// missing form field, or a timeout at the order's submission).
fn run(failing: Option<Reason>, at: chrono::DateTime<Utc>) -> Redacted<RunResult> {
    let (step, failure) = match failing {
        Some(Reason::Timeout) => (
            "submit a test order",
            "request timed out after 10s".to_owned(),
        ),
        _ => (
            "open the order form",
            r#"selector "form#order input[name=liters]" matched nothing"#.to_owned(),
        ),
    };
    Redacted::vouched(RunResult {
        check: "diesel-order".into(),
        started_at: at,
        duration: Duration::from_millis(42),
        outcome: match failing {
            None => Outcome::Success,
            Some(reason) => Outcome::Failure {
                reason,
                step: Some(step.into()),
                message: format!(r#"step "{step}": {failure}"#),
            },
        },
        steps: vec![StepResult {
            name: step.into(),
            url: "http://127.0.0.1:8780/diesel/order".into(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".into(),
                status: Some(200),
                ..HttpStep::default()
            }),
            duration: Duration::from_millis(40),
            failures: failing.map(|_| failure.clone()).into_iter().collect(),
            excerpt: failing.map(|_| "Diesel order — prices of 29 Nov 2026, 19:00".into()),
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
    let runs: Vec<_> = runs
        .iter()
        .map(|&(ok, at)| ((!ok).then_some(Reason::Assertion), at))
        .collect();
    let ids = play(dir, &runs, &["incident-webhook"], 0).await;
    ids.last().cloned().unwrap_or_default()
}

/// Plays the runs (failing reason or pass, offset from yesterday's start)
/// through the incident machine into the store in `dir`; each event goes to
/// each sink in `sinks`, delivered after `failed` attempts that the
/// receiver answered with a 503. Returns the ids of the incidents declared.
async fn play(
    dir: &Path,
    runs: &[(Option<Reason>, TimeDelta)],
    sinks: &[&str],
    failed: i64,
) -> Vec<String> {
    // Every run kept: the draft reads them all.
    let store = Store::open(&Backend::Sqlite(dir.join("data/scarecrow.db")), 1000).expect("store");
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
    let mut ids = Vec::new();
    for (n, &(failing, offset)) in runs.iter().enumerate() {
        let t = day + offset;
        let result = run(failing, t);
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
            held: false,
            streak: None,
            verdict: None,
            links: None,
        });
        store.queue_state("diesel-order", &state).expect("state");
        store
            .record_run(std::sync::Arc::new(RunRecord {
                run_id,
                result,
                location: "default".into(),
            }))
            .await
            .expect("run");
        if let Some(event) = event {
            if !ids.contains(&event.incident.id) {
                ids.push(event.incident.id.clone());
            }
            let outbox = sinks
                .iter()
                .map(|sink| {
                    let mut item = OutboxItem::new(&event, sink, event.at);
                    // 5 s, then 10 s between attempts, as the worker backs off.
                    let mut at = event.at + TimeDelta::milliseconds(300);
                    for attempt in 1..=failed {
                        item.attempts += 1;
                        item.last_error =
                            Some("the receiver answered 503 Service Unavailable".into());
                        item.tried(at, "retry");
                        at += TimeDelta::seconds(5 * attempt);
                    }
                    item.attempts += 1;
                    item.last_error = None;
                    item.state = DeliveryState::Delivered;
                    item.delivered_at = Some(at);
                    item.tried(at, "delivered");
                    item
                })
                .collect();
            store
                .commit(
                    Transition {
                        check: "diesel-order".into(),
                        state: state.clone(),
                        event,
                        outbox,
                    },
                    &claimer,
                )
                .await
                .expect("commit");
        }
    }
    store.close().await;
    ids
}

/// `scarecrow postmortem ID` against the config in `dir`, times and ids
/// normalised (`DAY `, `inc_1`, `inc_2` … in the order given).
fn postmortem(dir: &Path, ids: &[String], format: &str) -> String {
    let id = ids.last().expect("an incident");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["postmortem", id, "--format", format, "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("postmortem");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    for (n, id) in ids.iter().enumerate() {
        text = text.replace(id, &format!("inc_{}", n + 1));
    }
    let times = regex::Regex::new(r"\d{4}-\d{2}-\d{2} ").expect("regex");
    times.replace_all(&text, "DAY ").into_owned()
}

fn golden(name: &str, text: &str) {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, text).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&golden).expect("golden file (run with UPDATE_GOLDEN=1)");
    assert!(expected == text, "golden {name} differs:\n{text}");
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
    golden("postmortem.md", &postmortem(dir, &[id], "markdown"));
}

/// A two-hour outage at 30 s: the form field goes missing, then the order's
/// submission times out; two sinks each need three attempts per event. The
/// timeline tells the changes, not the 242 runs.
#[tokio::test]
async fn a_long_outage_fits_its_timeline_in_a_screen() {
    let tmp = common::scratch("postmortem-long");
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), "").expect("config");
    let at = |n: i64| TimeDelta::hours(14) + TimeDelta::seconds(30 * n);
    let runs: Vec<_> = (0..240)
        .map(|n| {
            let reason = if n < 100 {
                Reason::Assertion
            } else {
                Reason::Timeout
            };
            (Some(reason), at(n))
        })
        .chain((240..242).map(|n| (None, at(n))))
        .collect();
    let ids = play(dir, &runs, &["incident-webhook", "pagerduty"], 2).await;
    assert_eq!(ids.len(), 1);
    let text = postmortem(dir, &ids, "markdown");
    let rows = text.lines().filter(|l| l.starts_with("| DAY")).count();
    assert!(rows <= 30, "{rows} timeline rows:\n{text}");
    golden("postmortem-long.md", &text);
}

/// The follow-ups read the check as it is now: one that looks only at the
/// status, of a page that shows a time it never checks, every five minutes.
#[tokio::test]
async fn follow_ups_name_what_the_check_does_not_look_at() {
    let tmp = common::scratch("postmortem-coverage");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "checks_dir = \"checks\"\n").expect("config");
    std::fs::write(
        dir.join("checks/diesel-order.toml"),
        "critical = true\nevery = \"5m\"\n\n[[step]]\nname = \"open the order form\"\n\
         url = \"http://127.0.0.1:9/diesel/order\"\n\n[step.expect]\nstatus = 200\n",
    )
    .expect("check");
    let m = |min: i64| TimeDelta::hours(9) + TimeDelta::minutes(min);
    let fail = Some(Reason::Assertion);
    let runs = [(fail, m(0)), (fail, m(5)), (None, m(10)), (None, m(15))];
    let ids = play(dir, &runs, &["incident-webhook"], 0).await;
    let draft = postmortem(dir, &ids, "markdown");
    for expected in [
        "- [ ] Detection took 5m 1s from the first failing run to the declaration: 2 failing runs at an interval of 5m",
        "running every 2m 30s would have declared about 2m 30s sooner.",
        "- [ ] The page shows a time (“29 Nov 2026”) but diesel-order does not check how old it is",
        "- [ ] diesel-order asserts only how the server answers",
    ] {
        assert!(
            draft.contains(expected),
            "{expected:?} missing from:\n{draft}"
        );
    }
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

    // The check had not recovered: the draft says so, not "down for 5 s".
    let draft = postmortem(dir, std::slice::from_ref(&id), "markdown");
    assert!(
        draft.contains("it was resolved by hand at DAY ")
            && draft.contains(" while the check was still failing, "),
        "{draft}"
    );
    assert!(
        draft.contains("- Down for: at least ")
            && draft.contains("- Runs: 2 of 2 failed between the first failure and the resolution"),
        "{draft}"
    );
    assert!(
        draft.contains("resolved by hand while the check was still failing: “form field restored”"),
        "{draft}"
    );
}

/// Failing again twenty minutes after a recovery is the same outage: the
/// second incident names the first, and its draft tells both.
#[tokio::test]
async fn an_outage_declared_twice_is_told_whole_by_its_second_incident() {
    let tmp = common::scratch("postmortem-twice");
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), "").expect("config");
    let s = |secs: i64| TimeDelta::hours(14) + TimeDelta::seconds(secs);
    let fail = Some(Reason::Assertion);
    let runs = [
        (fail, s(0)),
        (fail, s(30)),
        (None, s(60)),
        (None, s(90)),
        (fail, s(1200)),
        (fail, s(1230)),
        (None, s(1260)),
        (None, s(1290)),
    ];
    let ids = play(dir, &runs, &["incident-webhook"], 0).await;
    assert_eq!(ids.len(), 2, "declared twice");

    let list = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["incidents", "--format", "json", "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("incidents");
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let second = listed
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == ids[1].as_str()))
        .expect("the second incident");
    assert_eq!(second["previous_incident"], ids[0].as_str());

    let draft = postmortem(dir, &ids, "markdown");
    for expected in [
        "· previous incident `inc_1`",
        "It is the same outage as inc_1",
        "- Declared 2 times for one outage: `inc_1`, `inc_2`",
        "- Runs: 4 of 8 failed between the first failure and the recovery",
        "| incident inc_1 declared — delivered to incident-webhook |",
        "| incident inc_2 declared: the outage of inc_1 again — delivered to incident-webhook |",
        "The outage was declared 2 times",
    ] {
        assert!(
            draft.contains(expected),
            "{expected:?} missing from:\n{draft}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&postmortem(dir, &ids, "json")).expect("json draft");
    assert_eq!(json["impact"]["declarations"], 2);
    assert_eq!(json["facts"]["earlier"][0]["id"], "inc_1");
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
