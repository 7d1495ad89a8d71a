//! The JSON API under `/api/v1/` (docs/api.md). Reads come from the view
//! and from the store; "run now" and "resolve" go through [`Actions`].
//!
//! [`Actions`]: super::Actions

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, OriginalUri, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ActionError, ServerState, error};
use crate::check::{Outcome, Reason, Redacted, RunResult};
use crate::incident::store::OutboxItem;
use crate::incident::{Incident, LocationResult};
use crate::live::{CheckView, IncidentRef};
use crate::store::{EventRow, Reader};

/// Runs in a check's detail unless `?runs=` says otherwise, and at most.
const RUNS: usize = 20;
const MAX_RUNS: usize = 500;
/// Incidents listed unless `?limit=` says otherwise, and at most.
const INCIDENTS: usize = 50;
const MAX_INCIDENTS: usize = 1000;

pub(super) fn routes() -> Router<ServerState> {
    Router::new()
        .route("/checks", get(checks))
        .route("/checks/{name}", get(check))
        .route("/checks/{name}/run", post(run_check))
        .route("/incidents", get(incidents))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/resolve", post(resolve_incident))
        .route("/config", get(config))
        .route("/screenshots/{name}", get(screenshot))
}

/// A browser step's screenshot, by the file name its run reported. Behind
/// the API's token, never on the public status page: a screenshot cannot
/// be redacted and may show members' data.
async fn screenshot(State(state): State<ServerState>, Path(name): Path<String>) -> Response {
    // Only names the browser step makes: no path can be smuggled in.
    let ours = name.len() == 36
        && name.ends_with(".png")
        && name[..32]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !ours {
        return error(StatusCode::NOT_FOUND, "no such screenshot");
    }
    let path = state.screenshots.join(&name);
    match crate::fsread::read_async(path, crate::check::MAX_SCREENSHOT_BYTES as u64).await {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            png,
        )
            .into_response(),
        Err(_) => error(
            StatusCode::NOT_FOUND,
            "no such screenshot (kept by the replica whose run took it, until retention removes it)",
        ),
    }
}

pub(super) async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
    )
}

/// A check as the API shows it.
#[derive(Serialize)]
struct CheckOut<'a> {
    name: &'a str,
    description: Option<&'a str>,
    critical: bool,
    owner: Option<&'a str>,
    runbook: Option<&'a str>,
    labels: &'a BTreeMap<String, String>,
    schedule: String,
    source: String,
    /// `up`, `down`, or `pending` before the first run.
    status: &'static str,
    last_result: Option<LastResult<'a>>,
    last_success_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    next_run_at: Option<DateTime<Utc>>,
    open_incident: Option<&'a IncidentRef>,
    /// The check it depends on whose incident it joined.
    blocked_by: Option<&'a str>,
    /// Each location's state, when the check runs in several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<LocationResult>,
}

#[derive(Serialize)]
struct LastResult<'a> {
    started_at: DateTime<Utc>,
    duration_ms: f64,
    /// `success` or `failure`.
    result: &'static str,
    reason: Option<Reason>,
    step: Option<&'a str>,
    message: Option<&'a str>,
}

impl<'a> CheckOut<'a> {
    fn new(c: &'a CheckView) -> CheckOut<'a> {
        let last_result = c.last_run.as_ref().map(|r| {
            let (result, reason, step, message) = match &r.outcome {
                Outcome::Success => ("success", None, None, None),
                Outcome::Failure {
                    reason,
                    step,
                    message,
                } => (
                    "failure",
                    Some(*reason),
                    step.as_deref(),
                    Some(message.as_str()),
                ),
            };
            LastResult {
                started_at: r.started_at,
                duration_ms: (r.duration.as_secs_f64() * 1e6).round() / 1e3,
                result,
                reason,
                step,
                message,
            }
        });
        CheckOut {
            name: &c.check.name,
            description: c.check.description.as_deref(),
            critical: c.check.critical,
            owner: c.check.owner.as_deref(),
            runbook: c.check.runbook.as_deref(),
            labels: &c.check.labels,
            schedule: c.check.schedule.to_string(),
            source: c.check.source.display().to_string(),
            status: match &last_result {
                None => "pending",
                Some(r) if r.result == "success" => "up",
                Some(_) => "down",
            },
            last_result,
            last_success_at: c.last_success_at,
            failing_since: c.failing_since(),
            next_run_at: c.next_run_at,
            open_incident: c.open_incident.as_deref(),
            blocked_by: c.blocked_by.as_deref(),
            locations: c.location_states(Utc::now()),
        }
    }
}

/// `GET /checks`: every loaded check, by name.
async fn checks(State(s): State<ServerState>) -> Response {
    #[derive(Serialize)]
    struct Checks<'a> {
        checks: Vec<CheckOut<'a>>,
    }
    let view = s.view.read();
    let checks = view.by_name().into_iter().map(CheckOut::new).collect();
    Json(Checks { checks }).into_response()
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    runs: Option<usize>,
}

/// `GET /checks/{name}`: the check and its latest runs with step timings.
async fn check(
    State(s): State<ServerState>,
    Path(name): Path<String>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    #[derive(Serialize)]
    struct Detail<'a> {
        #[serde(flatten)]
        check: CheckOut<'a>,
        recent_runs: Vec<Redacted<RunResult>>,
    }
    let limit = match query {
        Ok(Query(q)) => q.runs.unwrap_or(RUNS).min(MAX_RUNS),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let unknown = || error(StatusCode::NOT_FOUND, &format!("no check named {name:?}"));
    if !s.view.read().checks.contains_key(&name) {
        return unknown();
    }
    let check = name.clone();
    let recent_runs = match with_reader(&s, move |r| r.recent_runs(&check, limit)).await {
        Ok(runs) => runs,
        Err(resp) => return resp,
    };
    let view = s.view.read();
    match view.checks.get(&name) {
        Some(c) => Json(Detail {
            check: CheckOut::new(c),
            recent_runs,
        })
        .into_response(),
        // Removed by a reload while the store was read.
        None => unknown(),
    }
}

/// `POST /checks/{name}/run`: runs the check now and answers its result;
/// one at a time per check, spaced (429 with `Retry-After` otherwise).
async fn run_check(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Response {
    if !s.view.read().checks.contains_key(&name) {
        return error(StatusCode::NOT_FOUND, &format!("no check named {name:?}"));
    }
    let _permit = match s.run_now.try_start(&name) {
        Ok(p) => p,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("{name} was just run or is running; ask again in {secs} s"),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
    };
    tracing::info!(check = %name, %peer, token = s.api_token.is_some(), "run-now requested through the API");
    action(s.actions.run_check(name).await)
}

#[derive(Debug, Deserialize)]
struct IncidentsQuery {
    open: Option<bool>,
    limit: Option<usize>,
}

/// An incident with what a reader would otherwise compute.
#[derive(Serialize)]
struct IncidentOut<'a> {
    #[serde(flatten)]
    incident: &'a Incident,
    open: bool,
    /// Declared until resolved, or until now while open.
    duration_seconds: i64,
}

impl<'a> IncidentOut<'a> {
    fn new(incident: &'a Incident, now: DateTime<Utc>) -> IncidentOut<'a> {
        let end = incident.resolved_at.unwrap_or(now);
        IncidentOut {
            incident,
            open: incident.is_open(),
            duration_seconds: (end - incident.declared_at).num_seconds().max(0),
        }
    }
}

/// `GET /incidents?open=true&limit=50`: newest declared first.
async fn incidents(
    State(s): State<ServerState>,
    query: Result<Query<IncidentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (open, limit) = match query {
        Ok(Query(q)) => (
            q.open.unwrap_or(false),
            q.limit.unwrap_or(INCIDENTS).min(MAX_INCIDENTS),
        ),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    #[derive(Serialize)]
    struct Incidents<'a> {
        incidents: Vec<IncidentOut<'a>>,
    }
    match with_reader(&s, move |r| r.incidents(open, limit)).await {
        Ok(list) => {
            let now = Utc::now();
            let incidents = list.iter().map(|i| IncidentOut::new(i, now)).collect();
            Json(Incidents { incidents }).into_response()
        }
        Err(resp) => resp,
    }
}

/// A notification as its delivery stands; the event itself is on the timeline.
#[derive(Serialize)]
struct NotificationOut<'a> {
    id: &'a str,
    sink: &'a str,
    event_id: &'a str,
    kind: &'static str,
    state: crate::incident::store::DeliveryState,
    attempts: u32,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<&'a str>,
    delivered_at: Option<DateTime<Utc>>,
}

impl<'a> NotificationOut<'a> {
    fn new(o: &'a OutboxItem) -> NotificationOut<'a> {
        NotificationOut {
            id: &o.id,
            sink: &o.sink,
            event_id: &o.event.id,
            kind: o.event.kind.as_str(),
            state: o.state,
            attempts: o.attempts,
            created_at: o.created_at,
            next_attempt_at: o.next_attempt_at,
            last_error: o.last_error.as_deref(),
            delivered_at: o.delivered_at,
        }
    }
}

/// `GET /incidents/{id}`: the incident, its timeline and its notifications.
async fn incident(State(s): State<ServerState>, Path(id): Path<String>) -> Response {
    #[derive(Serialize)]
    struct Detail<'a> {
        incident: IncidentOut<'a>,
        timeline: Vec<EventRow>,
        notifications: Vec<NotificationOut<'a>>,
    }
    let key = id.clone();
    match with_reader(&s, move |r| r.incident(&key)).await {
        Ok(Some((incident, timeline, outbox))) => Json(Detail {
            incident: IncidentOut::new(&incident, Utc::now()),
            timeline,
            notifications: outbox.iter().map(NotificationOut::new).collect(),
        })
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no incident {id:?}")),
        Err(resp) => resp,
    }
}

#[derive(Debug, Default, Deserialize)]
struct ResolveBody {
    note: Option<String>,
}

/// `POST /incidents/{id}/resolve`, with an optional `{"note": "…"}`.
async fn resolve_incident(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Result<Json<ResolveBody>, JsonRejection>,
) -> Response {
    let note = match body {
        Ok(Json(b)) => b.note,
        // No JSON body at all: a resolution without a note.
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(e) => return error(e.status(), &e.body_text()),
    };
    tracing::info!(incident = %id, %peer, token = s.api_token.is_some(), "resolve requested through the API");
    action(s.actions.resolve_incident(id, note).await)
}

/// `GET /config`: the last reload: when, which files, which errors.
async fn config(State(s): State<ServerState>) -> Response {
    let body = serde_json::to_value(&s.view.read().config).unwrap_or_default();
    Json(body).into_response()
}

fn action(answer: Result<serde_json::Value, ActionError>) -> Response {
    match answer {
        Ok(value) => Json(value).into_response(),
        Err(ActionError::NotFound(m)) => error(StatusCode::NOT_FOUND, &m),
        Err(ActionError::Unavailable(m)) => error(StatusCode::SERVICE_UNAVAILABLE, &m),
    }
}

/// Runs `read` on a reader of its own on the blocking pool: a reader is
/// synchronous, and SQLite's is one connection, cheap to open and not
/// shareable between threads.
pub(super) async fn with_reader<T: Send + 'static>(
    s: &ServerState,
    read: impl FnOnce(&Reader) -> Result<T, crate::incident::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let Some(backend) = s.store.clone() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server has no store",
        ));
    };
    let answer = tokio::task::spawn_blocking(move || Reader::open(&backend).and_then(|r| read(&r)))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading the store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the store failed",
            )
        })?;
    answer.map_err(|e| {
        tracing::warn!(error = %e, "the API could not read the store");
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the store cannot be read: {e}"),
        )
    })
}
