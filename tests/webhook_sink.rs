//! The webhook sink against a real receiver on loopback: the body, the
//! Standard Webhooks headers and signatures, and how answers are classified.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use scarecrow::check::Failure;
use scarecrow::incident::{Event, EventKind, Evidence, Feature, Incident, Roles};
use scarecrow::sink::webhook::WebhookSpec;
use scarecrow::sink::{Attempt, Route, Sink, SinkKind, SinkSpec, build};
use scarecrow::template::Template;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// How the receiver answers, in turn; 204 once the list is used up.
type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    answers: Mutex<VecDeque<Answer>>,
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    rx.got.lock().unwrap().push(Received { headers, body });
    let answer = rx.answers.lock().unwrap().pop_front();
    let Some((status, headers, body)) = answer else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (name, value) in headers {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}

async fn receiver(answers: Vec<Answer>) -> (SocketAddr, Arc<Receiver>) {
    let rx = Arc::new(Receiver::default());
    rx.answers.lock().unwrap().extend(answers);
    let app = Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// A secret in a file, referenced as `${file:…}` the way a deployment would.
fn secret_file(value: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webhook_sink");
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Numbered within the run, so the next run overwrites the same files.
    let path = dir.join(format!("secret-{n}"));
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path
}

fn template(text: &str) -> Template {
    Template::parse(text, |_| None).unwrap()
}

fn spec(url: &str, secrets: &[&str]) -> SinkSpec {
    let secrets = secrets
        .iter()
        .map(|s| {
            let path = secret_file(s);
            template(&format!("${{file:{}}}", path.display()))
        })
        .collect();
    SinkSpec {
        name: "incident-webhook".into(),
        kind: SinkKind::Webhook(WebhookSpec {
            url: template(url),
            secrets,
            headers: BTreeMap::from([("x-team".to_owned(), template("ops"))]),
            timeout: Duration::from_secs(5),
        }),
        route: Route {
            critical_only: true,
            ..Route::default()
        },
    }
}

fn sink(addr: SocketAddr, secrets: &[&str]) -> Sink {
    build(&spec(&format!("http://{addr}/hook"), secrets)).unwrap()
}

fn event() -> Event {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    Event {
        id: "msg_0192f5a6b7c8".into(),
        kind: EventKind::Declared,
        at: at("2025-03-04T10:15:02.250Z"),
        incident: Incident {
            id: "inc_0192f5a6b7c8".into(),
            key: "scarecrow:default:diesel-order".into(),
            title: "diesel-order is failing: step \"order\": expected status 200, got 500".into(),
            severity: "critical".into(),
            feature: Feature {
                check: "diesel-order".into(),
                description: Some("Customers can order diesel".into()),
                owner: Some("shop-team".into()),
                runbook: Some("https://wiki.example.org/runbooks/diesel".into()),
                labels: BTreeMap::from([("site".to_owned(), "shop".to_owned())]),
                roles: Roles {
                    coordinator: Some("@alice".into()),
                    operations: Some("#shop-ops".into()),
                    communications: None,
                },
            },
            first_failure_at: at("2025-03-04T10:14:01Z"),
            detected_at: at("2025-03-04T10:15:01Z"),
            declared_at: at("2025-03-04T10:15:02.250Z"),
            resolved_at: None,
            resolution: None,
            note: None,
            evidence: Evidence {
                run_id: "run_2".into(),
                at: at("2025-03-04T10:15:01Z"),
                reason: "assertion".into(),
                step: Some("order".into()),
                message: "expected status 200, got 500".into(),
                failures: vec!["expected status 200, got 500".into()],
                failure_details: vec![Failure {
                    message: "expected status 200, got 500".into(),
                    query: "status".into(),
                    expected: Some("be 200".into()),
                    actual: Some("500".into()),
                }],
                status: Some(500),
                url: Some("https://shop.example.org/diesel/order".into()),
                phases_ms: BTreeMap::from([("ttfb".to_owned(), 120.5)]),
                duration_ms: 130.25,
                consecutive_failures: 2,
                excerpt: Some("Internal Server Error".into()),
                screenshot: None,
                screenshot_url: None,
                locations: Vec::new(),
            },
            run_ids: vec!["run_1".into(), "run_2".into()],
            previous_incident: Some("inc_0192f5a1e2d3".into()),
            affected: Vec::new(),
        },
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The receiver's side of Standard Webhooks, written from the spec.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_body_has_the_documented_fields_and_a_valid_signature() {
    let (addr, rx) = receiver(vec![]).await;
    let sink = sink(addr, &[SECRET]);
    let e = event();
    assert_eq!(sink.send(&e, 1).await, Attempt::Delivered { status: 204 });

    let got = rx.got.lock().unwrap()[0].clone();
    let h = &got.headers;
    assert_eq!(header(h, "content-type"), "application/json");
    assert_eq!(header(h, "webhook-id"), e.id);
    assert_eq!(header(h, "x-team"), "ops");
    let ts: i64 = header(h, "webhook-timestamp").parse().unwrap();
    assert!((Utc::now().timestamp() - ts).abs() <= 5);
    assert_eq!(
        header(h, "webhook-signature"),
        expected_signature(SECRET, &e.id, &ts.to_string(), &got.body)
    );

    let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(v["version"], "1");
    assert_eq!(v["type"], "incident.declared");
    assert_eq!(v["id"], e.id);
    assert_eq!(v["timestamp"], "2025-03-04T10:15:02.250Z");
    let d = &v["data"];
    let expected = serde_json::json!({
        "incident": "inc_0192f5a6b7c8",
        "key": "scarecrow:default:diesel-order",
        "title": "diesel-order is failing: step \"order\": expected status 200, got 500",
        "severity": "critical",
        "status": "open",
        "check": "diesel-order",
        "description": "Customers can order diesel",
        "owner": "shop-team",
        "runbook": "https://wiki.example.org/runbooks/diesel",
        "labels": {"site": "shop"},
        "roles": {"coordinator": "@alice", "operations": "#shop-ops", "communications": null},
        "first_failure_at": "2025-03-04T10:14:01.000Z",
        "detected_at": "2025-03-04T10:15:01.000Z",
        "declared_at": "2025-03-04T10:15:02.250Z",
        "resolved_at": null,
        "duration_seconds": null,
        "resolution": null,
        "note": null,
        "previous_incident": "inc_0192f5a1e2d3",
        "affected": [],
        "evidence": {
            "run_id": "run_2",
            "at": "2025-03-04T10:15:01.000Z",
            "reason": "assertion",
            "step": "order",
            "message": "expected status 200, got 500",
            "failures": ["expected status 200, got 500"],
            "failure_details": [{
                "message": "expected status 200, got 500",
                "query": "status",
                "expected": "be 200",
                "actual": "500"
            }],
            "status": 500,
            "url": "https://shop.example.org/diesel/order",
            "phases_ms": {"ttfb": 120.5},
            "duration_ms": 130.25,
            "consecutive_failures": 2,
            "excerpt": "Internal Server Error"
        }
    });
    assert_eq!(d, &expected);
    assert_eq!(d["evidence"]["failure_details"][0]["expected"], "be 200");
    assert_eq!(d["evidence"]["failure_details"][0]["actual"], "500");
}

#[tokio::test]
async fn a_resolution_carries_its_duration() {
    let (addr, rx) = receiver(vec![]).await;
    let sink = sink(addr, &[]);
    let mut e = event();
    e.id = "msg_resolved".into();
    e.kind = EventKind::Resolved;
    let resolved_at = "2025-03-04T10:27:32.250Z".parse().unwrap();
    e.at = resolved_at;
    e.incident.resolved_at = Some(resolved_at);
    e.incident.resolution = Some("recovered".into());
    assert!(matches!(sink.send(&e, 1).await, Attempt::Delivered { .. }));

    let got = rx.got.lock().unwrap()[0].clone();
    // No secrets: sent unsigned.
    assert!(got.headers.get("webhook-signature").is_none());
    let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(v["type"], "incident.resolved");
    assert_eq!(v["data"]["status"], "resolved");
    assert_eq!(v["data"]["resolved_at"], "2025-03-04T10:27:32.250Z");
    assert_eq!(v["data"]["duration_seconds"], 750);
    assert_eq!(v["data"]["resolution"], "recovered");
}

#[tokio::test]
async fn two_secrets_give_two_signatures() {
    let (addr, rx) = receiver(vec![]).await;
    let sink = sink(addr, &[SECRET, OLD_SECRET]);
    let e = event();
    sink.send(&e, 1).await;

    let got = rx.got.lock().unwrap()[0].clone();
    let ts = header(&got.headers, "webhook-timestamp");
    let sigs: Vec<&str> = header(&got.headers, "webhook-signature")
        .split(' ')
        .collect();
    assert_eq!(
        sigs,
        [
            expected_signature(SECRET, &e.id, ts, &got.body),
            expected_signature(OLD_SECRET, &e.id, ts, &got.body),
        ]
    );
}

#[tokio::test]
async fn retries_keep_the_id_and_body_but_not_the_timestamp() {
    let (addr, rx) = receiver(vec![(503, vec![], "busy")]).await;
    let sink = sink(addr, &[SECRET]);
    let e = event();
    assert!(matches!(sink.send(&e, 1).await, Attempt::Retry { .. }));
    // Timestamps are whole seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(sink.send(&e, 2).await, Attempt::Delivered { .. }));

    let got = rx.got.lock().unwrap().clone();
    let (a, b) = (&got[0], &got[1]);
    assert_eq!(header(&a.headers, "webhook-id"), e.id);
    assert_eq!(header(&b.headers, "webhook-id"), e.id);
    assert_eq!(a.body, b.body);
    let ts = |r: &Received| header(&r.headers, "webhook-timestamp").to_owned();
    assert!(ts(b).parse::<i64>().unwrap() > ts(a).parse::<i64>().unwrap());
    let sig = |r: &Received| header(&r.headers, "webhook-signature").to_owned();
    assert_ne!(sig(a), sig(b));
    assert_eq!(sig(b), expected_signature(SECRET, &e.id, &ts(b), &b.body));
}

#[tokio::test]
async fn answers_are_classified() {
    let (addr, _rx) = receiver(vec![
        (503, vec![("retry-after", "7")], "maintenance"),
        (429, vec![], ""),
        (410, vec![], "this hook was deleted"),
        (400, vec![], "{\"error\": \"unknown field\"}"),
        (302, vec![("location", "/elsewhere")], ""),
    ])
    .await;
    let sink = sink(addr, &[SECRET]);
    let e = event();

    let a = sink.send(&e, 1).await;
    let Attempt::Retry { error, retry_after } = a else {
        panic!("{a:?}")
    };
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        error,
        "the receiver answered 503 Service Unavailable: maintenance"
    );
    assert_eq!(
        sink.send(&e, 2).await,
        Attempt::Throttled {
            error: "the receiver answered 429 Too Many Requests".into(),
            retry_after: None
        }
    );
    assert_eq!(
        sink.send(&e, 3).await,
        Attempt::Gone {
            error: "the receiver answered 410 Gone: this hook was deleted".into()
        }
    );
    assert_eq!(
        sink.send(&e, 4).await,
        Attempt::Rejected {
            error: "the receiver answered 400 Bad Request: {\"error\": \"unknown field\"}".into()
        }
    );
    // Redirects are not followed: a moved endpoint is a configuration error.
    assert!(matches!(sink.send(&e, 5).await, Attempt::Rejected { .. }));
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sink = sink(addr, &[SECRET]);
    let a = sink.send(&event(), 1).await;
    let Attempt::Retry { error, retry_after } = a else {
        panic!("{a:?}")
    };
    assert!(error.starts_with("could not connect"), "{error}");
    assert_eq!(retry_after, None);
}

#[tokio::test]
async fn routing_follows_the_spec() {
    let sink = sink("127.0.0.1:9".parse().unwrap(), &[]);
    let f = event().incident.feature;
    assert!(sink.accepts(&f, true));
    assert!(!sink.accepts(&f, false));
    assert_eq!(sink.name(), "incident-webhook");
}

#[test]
fn missing_or_malformed_secrets_stop_the_sink_from_starting() {
    let with_secret = |secret: &str| {
        let mut s = spec("http://127.0.0.1:9/hook", &[]);
        if let SinkKind::Webhook(w) = &mut s.kind {
            w.secrets = vec![template(secret)];
        }
        build(&s).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert_eq!(
        with_secret("${secret:SCARECROW_TEST_SURELY_UNSET_7F3A}"),
        "secret `SCARECROW_TEST_SURELY_UNSET_7F3A`: not set in the environment"
    );

    let path = secret_file("whsec_this is not base64!");
    let err = with_secret(&format!("${{file:{}}}", path.display()));
    assert!(err.contains("is not base64"), "{err}");
    // The message names where the secret comes from, never its value.
    assert!(!err.contains("this is not"), "{err}");

    let err = with_secret("${file:/nonexistent/scarecrow/secret}");
    assert!(
        err.contains("secret file `/nonexistent/scarecrow/secret`"),
        "{err}"
    );
}

#[tokio::test]
async fn the_log_sink_always_delivers() {
    let sink = build(&SinkSpec::log("log")).unwrap();
    assert_eq!(
        sink.send(&event(), 1).await,
        Attempt::Delivered { status: 200 }
    );
    assert!(sink.accepts(&Feature::default(), false));
}
