//! A recording receiver, the event the sinks are tried with, and secrets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use scarecrow::check::Failure;
use scarecrow::incident::{Event, EventKind, Evidence, Feature, Incident, Roles};
use scarecrow::template::{Resolve, Template};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    /// When it arrived.
    pub at: DateTime<Utc>,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// An HTTP receiver on 127.0.0.1 that records every request (any path) and
/// answers from a queue, then with its default.
pub struct Receiver {
    pub url: String,
    state: Arc<Inner>,
}

struct Inner {
    got: Mutex<Vec<Got>>,
    answers: Mutex<VecDeque<(u16, &'static str)>>,
    default: (u16, &'static str),
}

async fn record(
    State(rx): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    rx.got.lock().unwrap().push(Got {
        at: Utc::now(),
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let (status, body) = rx.answers.lock().unwrap().pop_front().unwrap_or(rx.default);
    (
        StatusCode::from_u16(status).unwrap(),
        [("retry-after", "7")],
        body,
    )
        .into_response()
}

impl Receiver {
    pub async fn start(status: u16, body: &'static str) -> Receiver {
        let state = Arc::new(Inner {
            got: Mutex::default(),
            answers: Mutex::default(),
            default: (status, body),
        });
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state }
    }

    /// Answer the next request with `status` and `body`.
    pub fn then(&self, status: u16, body: &'static str) {
        self.state.answers.lock().unwrap().push_back((status, body));
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (or panics after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Got> {
        for _ in 0..200 {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests, got {:#?}", self.got());
    }
}

/// Secrets by name (and files by path), as a deployment would provide them.
pub struct Secrets(pub BTreeMap<&'static str, &'static str>);

impl Resolve for Secrets {
    fn secret(&self, name: &str) -> Result<String, String> {
        self.0
            .get(name)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| format!("{name} is not set"))
    }

    fn file(&self, path: &std::path::Path) -> Result<String, String> {
        self.secret(&path.display().to_string())
    }

    fn capture(&self, _: &str) -> Option<String> {
        None
    }
}

pub fn template(text: &str) -> Template {
    Template::parse(text, |_| None).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The check's incident resolved shortly before this one.
pub const PREVIOUS: &str = "inc_0192f5a1e2d3";

pub const TITLE: &str = "diesel-order is failing: step \"order\": expected status 200, got 500";

/// A declaration with every field filled in.
pub fn declared() -> Event {
    Event {
        id: "msg_0192f5a6b7c8".into(),
        kind: EventKind::Declared,
        at: at("2025-03-04T10:15:02.250Z"),
        incident: Incident {
            id: "inc_0192f5a6b7c8".into(),
            key: "scarecrow:eu-west:diesel-order".into(),
            title: TITLE.into(),
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
                failures: vec!["status: expected 200, got 500".into()],
                failure_details: vec![
                    Failure::new("status", "status: expected 200, got 500".into())
                        .expected("be 200")
                        .actual("500"),
                ],
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
            previous_incident: Some(PREVIOUS.into()),
            affected: Vec::new(),
        },
    }
}

/// The declaration of a gateway's incident that two features joined
/// (`depends_on`), one of them recovered since.
pub fn joined() -> Event {
    let mut e = declared();
    let feature = |check: &str, step: &str| scarecrow::incident::Affected {
        check: check.into(),
        description: None,
        at: at("2025-03-04T10:15:31Z"),
        reason: "connect".into(),
        step: Some(step.into()),
        message: format!("step \"{step}\": connection refused"),
        recovered_at: None,
    };
    e.incident.affected = vec![
        feature("weather", "open the weather page"),
        scarecrow::incident::Affected {
            recovered_at: Some(at("2025-03-04T10:20:00Z")),
            ..feature("member-login", "open the login form")
        },
    ];
    e
}

/// The same incident, `kind` later: resolved at `resolved_at` when that is
/// the kind.
pub fn later(kind: EventKind, resolved_at: DateTime<Utc>) -> Event {
    let mut e = declared();
    e.id = format!("msg_{}", kind.as_str());
    e.kind = kind;
    e.at = resolved_at;
    if kind == EventKind::Resolved {
        e.incident.resolved_at = Some(resolved_at);
        e.incident.resolution = Some("recovered".into());
    }
    e
}
