use std::time::Duration;

use serde_json::json;

use super::support::{PREVIOUS, Receiver, Secrets, TITLE, at, declared, joined, later, template};
use scarecrow::incident::EventKind;
use scarecrow::sink::http::RateLimit;
use scarecrow::sink::pagerduty::{PagerDutySeverity, PagerDutySink, PagerDutySpec};
use scarecrow::sink::{Attempt, Deliver, Route, SinkKind, SinkSpec, build_with};

const KEY: &str = "R0UTINGKEY0123456789abcdef012345";
const ACCEPTED: &str = r#"{"status":"success","message":"Event processed","dedup_key":"scarecrow:eu-west:diesel-order"}"#;

fn spec(url: &str) -> PagerDutySpec {
    PagerDutySpec {
        url: template(&format!("{url}/v2/enqueue")),
        routing_key: template("${secret:PAGERDUTY_ROUTING_KEY}"),
        source: None,
        severity: None,
        status_url: Some("https://status.example.org".into()),
        timeout: Duration::from_secs(5),
    }
}

fn secrets() -> Secrets {
    Secrets([("PAGERDUTY_ROUTING_KEY", KEY)].into())
}

fn sink(url: &str) -> PagerDutySink {
    PagerDutySink::new(&spec(url), &secrets()).unwrap()
}

#[tokio::test]
async fn trigger_and_resolve_have_the_exact_bodies_and_share_the_dedup_key() {
    let rx = Receiver::start(202, ACCEPTED).await;
    let spec = SinkSpec {
        name: "pagerduty".into(),
        kind: SinkKind::PagerDuty(spec(&rx.url)),
        route: Route::default(),
    };
    let sink = build_with(&spec, &secrets()).unwrap();
    let resolved_at = at("2025-03-04T10:27:32.250Z");
    for e in [
        declared(),
        later(EventKind::Reminder, resolved_at),
        later(EventKind::Resolved, resolved_at),
    ] {
        assert_eq!(sink.send(&e, 1).await, Attempt::Delivered { status: 202 });
    }
    let got = rx.got();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.path == "/v2/enqueue"));
    assert_eq!(got[0].header("content-type"), "application/json");
    let trigger = json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "scarecrow:eu-west:diesel-order",
        "payload": {
            "summary": TITLE,
            "source": "eu-west",
            "severity": "critical",
            "timestamp": "2025-03-04T10:15:01.000Z",
            "component": "diesel-order",
            "group": "shop-team",
            "class": "assertion",
            "custom_details": {
                "event": "incident.declared",
                "incident": "inc_0192f5a6b7c8",
                "previous_incident": PREVIOUS,
                "description": "Customers can order diesel",
                "owner": "shop-team",
                "roles": {"coordinator": "@alice", "operations": "#shop-ops"},
                "labels": {"site": "shop"},
                "first_failure_at": "2025-03-04T10:14:01.000Z",
                "step": "order",
                "message": "expected status 200, got 500",
                "failures": ["status: expected 200, got 500"],
                "failure_details": [{
                    "message": "status: expected 200, got 500",
                    "query": "status",
                    "expected": "be 200",
                    "actual": "500"
                }],
                "status": 500,
                "url": "https://shop.example.org/diesel/order",
                "excerpt": "Internal Server Error",
                "consecutive_failures": 2,
                "run_id": "run_2"
            }
        },
        "client": "scarecrow",
        "client_url": "https://status.example.org",
        "links": [
            {"href": "https://wiki.example.org/runbooks/diesel", "text": "Runbook"},
            {"href": "https://status.example.org", "text": "Status page"}
        ]
    });
    assert_eq!(got[0].json(), trigger);
    let details = &got[0].json()["payload"]["custom_details"];
    assert_eq!(details["failure_details"][0]["expected"], "be 200");
    assert_eq!(details["failure_details"][0]["actual"], "500");
    // A reminder triggers again under the same key: PagerDuty dedupes it.
    let mut reminder = trigger.clone();
    reminder["payload"]["custom_details"]["event"] = json!("incident.reminder");
    assert_eq!(got[1].json(), reminder);
    assert_eq!(
        got[2].json(),
        json!({
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "scarecrow:eu-west:diesel-order"
        })
    );
}

#[tokio::test]
async fn sends_are_paced_to_120_a_minute() {
    let rx = Receiver::start(202, ACCEPTED).await;
    let pd = sink(&rx.url);
    let limit = pd.pace().expect("PagerDuty's rate is known");
    for _ in 0..120 {
        assert_eq!(limit.reserve(), Duration::ZERO);
    }
    // Then one every half second.
    let next = limit.reserve();
    assert!(next > Duration::from_millis(400) && next <= Duration::from_millis(500));
    let sink = sink(&rx.url).with_rate_limit(RateLimit::new(2, Duration::from_secs(60)));
    let limit = sink.pace().expect("set");
    limit.reserve();
    limit.reserve();
    assert!(limit.reserve() > Duration::from_secs(29));
}

#[tokio::test]
async fn a_bad_request_is_dead_lettered_and_throttling_retried() {
    let rx = Receiver::start(202, ACCEPTED).await;
    rx.then(
        400,
        r#"{"status":"invalid event","errors":["'routing_key' is invalid"]}"#,
    );
    rx.then(429, "");
    rx.then(503, "");
    let sink = sink(&rx.url);
    let e = declared();
    let a = sink.send(&e).await;
    assert!(
        matches!(&a, Attempt::Rejected { error } if error.contains("routing_key")),
        "{a:?}"
    );
    // A 429 is PagerDuty's rate limit: throttled, not failed; a 503 fails.
    let a = sink.send(&e).await;
    assert!(
        matches!(a, Attempt::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{a:?}"
    );
    let a = sink.send(&e).await;
    assert!(
        matches!(a, Attempt::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{a:?}"
    );
}

#[tokio::test]
async fn severity_and_source_can_be_overridden() {
    let rx = Receiver::start(202, ACCEPTED).await;
    let mut spec = spec(&rx.url);
    spec.severity = Some(PagerDutySeverity::Warning);
    spec.source = Some("shop-prod".into());
    let sink = PagerDutySink::new(&spec, &secrets()).unwrap();
    let mut e = declared();
    e.incident.title = "x".repeat(2000);
    sink.send(&e).await;
    let body = rx.got()[0].json();
    assert_eq!(body["payload"]["severity"], "warning");
    assert_eq!(body["payload"]["source"], "shop-prod");
    assert_eq!(
        body["payload"]["summary"].as_str().unwrap().chars().count(),
        1024
    );
}

#[test]
fn a_missing_routing_key_stops_the_build() {
    let err = PagerDutySink::new(&spec("http://127.0.0.1:9"), &Secrets([].into())).unwrap_err();
    assert_eq!(
        err,
        "secret `PAGERDUTY_ROUTING_KEY`: PAGERDUTY_ROUTING_KEY is not set"
    );
}

/// The features that joined the incident are in its custom details.
#[tokio::test]
async fn the_features_that_joined_are_in_the_custom_details() {
    let rx = Receiver::start(202, "{}").await;
    let sink = sink(&rx.url);
    sink.send(&joined()).await;
    let body = rx.got()[0].json();
    let affected = &body["payload"]["custom_details"]["affected"];
    assert_eq!(affected.as_array().map(Vec::len), Some(2), "{affected}");
    assert!(
        affected[1].as_str().is_some_and(
            |l| l.starts_with("member-login (connect): ") && l.ends_with(" (recovered)")
        )
    );
}
