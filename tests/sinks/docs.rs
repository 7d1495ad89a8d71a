//! The examples of `docs/integrations.md` load, and the incident.io and
//! FireHydrant templates give those tools the shape they take.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::Value;

use super::support::{Got, Receiver, Secrets, declared, later, template};
use scarecrow::incident::EventKind;
use scarecrow::sink::{Attempt, Sink, SinkKind, SinkSpec, build_with};

/// The ```toml blocks of the document.
fn examples() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrations.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn load(toml: &str, n: usize) -> Vec<SinkSpec> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sinks-docs");
    std::fs::create_dir_all(&dir).unwrap();
    // Named by position, not process: the next run overwrites it.
    let path = dir.join(format!("example-{n}.toml"));
    std::fs::write(&path, toml).unwrap();
    match scarecrow::config::load_config(Some(&path)) {
        Ok(c) => c.sinks,
        Err(diags) => panic!("example {n} does not load:\n{diags:#?}\n{toml}"),
    }
}

#[test]
fn every_example_loads() {
    let blocks = examples();
    assert!(blocks.len() >= 5, "{blocks:#?}");
    let kinds: Vec<String> = blocks
        .iter()
        .enumerate()
        .flat_map(|(n, b)| load(b, n))
        .map(|s| s.name)
        .collect();
    for name in [
        "pagerduty",
        "alertmanager",
        "slack",
        "incident-io",
        "firehydrant",
        "tickets",
    ] {
        assert!(
            kinds.iter().any(|k| k == name),
            "{name} is not in {kinds:?}"
        );
    }
}

/// The example sink `name`, sending to `rx`.
fn example(name: &str, rx: &Receiver) -> Sink {
    let mut spec = examples()
        .iter()
        .enumerate()
        .flat_map(|(n, b)| load(b, n))
        .find(|s| s.name == name)
        .unwrap();
    let SinkKind::Template(t) = &mut spec.kind else {
        panic!("{:?}", spec.kind)
    };
    t.webhook.url = template(&format!("{}/hook", rx.url));
    let secrets = Secrets([("INCIDENT_IO_TOKEN", "inc-token")].into());
    build_with(&spec, &secrets).unwrap()
}

/// The example sink `name`, sending to `rx`, and what it sent for a
/// declaration and a resolution.
async fn send_both(name: &str, rx: &Receiver) -> (Got, Got) {
    let sink = example(name, rx);
    let mut open = declared();
    open.incident.evidence.message = "expected \"Order placed\", saw:\n\tOops".into();
    assert!(matches!(
        sink.send(&open, 1).await,
        Attempt::Delivered { .. }
    ));
    let mut resolved = later(EventKind::Resolved, Utc::now());
    resolved.incident.feature.runbook = None;
    resolved.incident.feature.owner = None;
    assert!(matches!(
        sink.send(&resolved, 1).await,
        Attempt::Delivered { .. }
    ));
    let got = rx.got();
    (got[0].clone(), got[1].clone())
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn the_incident_io_example_renders_an_alert_event() {
    let rx = Receiver::start(202, "").await;
    let (open, resolved) = send_both("incident-io", &rx).await;
    assert_eq!(open.header("authorization"), "Bearer inc-token");
    let o = open.json();
    assert_eq!(
        keys(&o),
        [
            "deduplication_key",
            "description",
            "metadata",
            "source_url",
            "status",
            "title"
        ]
    );
    assert_eq!(o["status"], "firing");
    assert_eq!(o["deduplication_key"], "scarecrow:eu-west:diesel-order");
    assert_eq!(o["title"], super::support::TITLE);
    assert_eq!(o["source_url"], "https://wiki.example.org/runbooks/diesel");
    let description = o["description"].as_str().unwrap();
    assert!(description.starts_with(
        "**expected \"Order placed\", saw:\n\tOops**\n\nFailing step: order (assertion)"
    ));
    assert_eq!(o["metadata"]["check"], "diesel-order");
    assert_eq!(o["metadata"]["event"], "incident.declared");
    assert_eq!(o["metadata"]["labels"]["site"], "shop");
    assert_eq!(o["metadata"]["roles"]["coordinator"], "@alice");

    let r = resolved.json();
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["deduplication_key"], o["deduplication_key"]);
    assert!(r.get("source_url").is_none(), "no runbook, no source_url");
    assert!(r["metadata"]["owner"].is_null());
}

#[tokio::test]
async fn the_firehydrant_example_renders_a_signals_event() {
    let rx = Receiver::start(200, "").await;
    let (open, resolved) = send_both("firehydrant", &rx).await;
    let o = open.json();
    assert_eq!(
        keys(&o),
        [
            "annotations",
            "body",
            "idempotency_key",
            "level",
            "links",
            "status",
            "summary",
            "tags"
        ]
    );
    assert_eq!(o["status"], "OPEN");
    assert_eq!(o["level"], "ERROR");
    assert_eq!(o["idempotency_key"], "scarecrow:eu-west:diesel-order");
    assert!(o["summary"].as_str().unwrap().chars().count() <= 255);
    assert!(
        o["body"]
            .as_str()
            .unwrap()
            .contains("failing step order (assertion)")
    );
    assert_eq!(
        o["tags"],
        serde_json::json!(["scarecrow", "check:diesel-order", "owner:shop-team"])
    );
    assert_eq!(o["annotations"]["scarecrow/incident"], "inc_0192f5a6b7c8");
    assert_eq!(
        o["links"],
        serde_json::json!([{"href": "https://wiki.example.org/runbooks/diesel", "text": "Runbook"}])
    );

    let r = resolved.json();
    assert_eq!(r["status"], "CLOSED");
    assert_eq!(r["idempotency_key"], o["idempotency_key"]);
    assert_eq!(
        r["tags"],
        serde_json::json!(["scarecrow", "check:diesel-order"])
    );
    assert_eq!(r["links"], serde_json::json!([]));
    assert_eq!(r["annotations"]["scarecrow/owner"], "");
}

#[tokio::test]
async fn the_expectations_example_lists_what_was_expected_and_found() {
    let rx = Receiver::start(201, "").await;
    let (open, resolved) = send_both("tickets", &rx).await;
    let o = open.json();
    assert_eq!(
        o["expectations"],
        serde_json::json!([{"where": "status", "expected": "be 200", "actual": "500"}])
    );
    assert_eq!(o["found"], "500");
    assert_eq!(o["reopens"], super::support::PREVIOUS);
    assert_eq!(o["closed"], false);
    assert_eq!(resolved.json()["closed"], true);

    // After a timeout there is nothing to list, and nothing fails.
    let rx = Receiver::start(201, "").await;
    let sink = example("tickets", &rx);
    let mut timeout = declared();
    timeout.incident.evidence.reason = "timeout".into();
    timeout.incident.evidence.failure_details.clear();
    timeout.incident.previous_incident = None;
    assert!(matches!(
        sink.send(&timeout, 1).await,
        Attempt::Delivered { .. }
    ));
    let t = rx.got()[0].json();
    assert_eq!(t["expectations"], serde_json::json!([]));
    assert!(t["found"].is_null() && t["reopens"].is_null(), "{t}");
}
