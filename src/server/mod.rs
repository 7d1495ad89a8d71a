//! The daemon's HTTP endpoints: `/metrics` for Prometheus, `/healthz` for
//! whatever supervises the process, the JSON API under `/api/v1/` and the
//! public status page at `/`.
//!
//! The server reads the daemon's state through a [`View`] and the store
//! through a reader opened per request; it changes nothing itself, but asks
//! the daemon through [`Actions`].

mod api;
mod auth;
mod fds;
mod html;
mod listen;
mod state;
mod status;
#[cfg(test)]
mod tests;
mod throttle;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics;

pub use auth::SecretError;
pub use fds::{connection_cap, raise_open_files};
pub use listen::{Limits, serve};
use state::error;
pub use state::{ActionError, ActionFuture, Actions, MetricsCredentials, ServerState};

/// Every endpoint, with its state.
pub fn router(state: ServerState) -> Router {
    let api = api::routes()
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth::api));
    // A route layer: it guards `/metrics` only, not the paths no route matches.
    let metrics = Router::new()
        .route("/metrics", get(render_metrics))
        .route_layer(from_fn_with_state(state.clone(), auth::metrics));
    Router::new()
        .route("/", get(status::page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics)
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(listen::MAX_BODY as usize))
        .layer(map_response(nosniff))
        .with_state(state)
}

/// Every answer is what its `Content-Type` says: browsers must not guess
/// (a failure message quoting a page must never render as HTML).
async fn nosniff(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Rendering thousands of checks takes milliseconds of CPU: it runs on the
/// blocking pool so it never stalls the workers that drive the scheduler.
/// Streams the page as it renders, so a scrape of thousands of checks holds
/// a few chunks in memory rather than the whole page; a scraper that hangs up
/// stops the rendering.
async fn render_metrics(State(s): State<ServerState>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let metrics = s.metrics.clone();
    tokio::task::spawn_blocking(move || {
        metrics.render_chunks(&mut |chunk| tx.blocking_send(chunk).is_ok());
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The scheduler wakes at least every second; this long without a tick
/// means it is wedged.
const STALE_TICK: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Ready once the checks are loaded and while the scheduler makes progress.
async fn readyz(State(s): State<ServerState>) -> Response {
    let (loaded, tick) = {
        let v = s.view.read();
        (v.config.loaded_at.is_some(), v.scheduler_last_tick)
    };
    match not_ready(loaded, tick, chrono::Utc::now()) {
        None => "ready\n".into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Why the daemon is not ready at `now`, if it is not.
fn not_ready(
    loaded: bool,
    tick: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    match tick {
        _ if !loaded => Some("the checks are not loaded yet".to_owned()),
        None => Some("the scheduler has not started".to_owned()),
        Some(t) if now - t > STALE_TICK => Some(format!(
            "the scheduler has not ticked for {} s",
            (now - t).num_seconds()
        )),
        Some(_) => None,
    }
}
