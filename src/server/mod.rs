//! The daemon's HTTP endpoints: `/metrics` for Prometheus and `/healthz` for
//! whatever supervises the process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::metrics::{self, Metrics};

/// What the server may ask the daemon to do. The daemon (`app`) owns the
/// engine; the server only sends requests through this.
pub trait Actions: Send + Sync + 'static {
    /// Resolves an open incident by hand; the answer is the resolution event.
    fn resolve_incident(&self, id: String, note: Option<String>) -> ActionFuture;
}

pub type ActionFuture =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, ActionError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    NotFound(String),
    Unavailable(String),
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    actions: Arc<dyn Actions>,
}

impl FromRef<AppState> for Metrics {
    fn from_ref(s: &AppState) -> Metrics {
        s.metrics.clone()
    }
}

/// Every endpoint, with its state.
pub fn router(metrics: Metrics, actions: Arc<dyn Actions>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/api/v1/incidents/{id}/resolve", post(resolve_incident))
        .with_state(AppState { metrics, actions })
}

#[derive(Debug, Default, serde::Deserialize)]
struct ResolveBody {
    note: Option<String>,
}

async fn resolve_incident(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<ResolveBody>>,
) -> Response {
    let note = body.and_then(|Json(b)| b.note);
    match s.actions.resolve_incident(id, note).await {
        Ok(event) => Json(event).into_response(),
        Err(ActionError::NotFound(m)) => error(StatusCode::NOT_FOUND, &m),
        Err(ActionError::Unavailable(m)) => error(StatusCode::SERVICE_UNAVAILABLE, &m),
    }
}

/// Errors are JSON with a message.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Rendering thousands of checks takes milliseconds of CPU: it runs on the
/// blocking pool so it never stalls the workers that drive the scheduler.
async fn render_metrics(State(metrics): State<Metrics>) -> Response {
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves a fresh router on a loopback port; the returned sender stops it.
    async fn start(metrics: Metrics) -> (String, tokio::sync::oneshot::Sender<()>, ServerTask) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router(metrics, Arc::new(Nothing)), async {
            let _ = stopped.await;
        }));
        (url, stop, task)
    }

    type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

    struct Nothing;
    impl Actions for Nothing {
        fn resolve_incident(&self, id: String, _: Option<String>) -> ActionFuture {
            Box::pin(async move { Err(ActionError::NotFound(format!("no open incident {id}"))) })
        }
    }

    #[tokio::test]
    async fn api_errors_are_json_with_a_message() {
        let (url, stop, task) = start(Metrics::new()).await;
        let resp = reqwest::Client::new()
            .post(format!("{url}/api/v1/incidents/inc_x/resolve"))
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), 404);
        let body: serde_json::Value =
            serde_json::from_str(&resp.text().await.expect("body")).expect("json");
        assert_eq!(body["error"], "no open incident inc_x");
        let _ = stop.send(());
        let _ = task.await;
    }

    #[tokio::test]
    async fn metrics_are_served_as_text_format_0_0_4() {
        let (url, stop, task) = start(Metrics::new()).await;
        let resp = reqwest::get(format!("{url}/metrics"))
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let body = resp.text().await.expect("body");
        assert!(body.contains("\nscarecrow_checks_loaded 0\n"), "{body}");

        let _ = stop.send(());
        task.await
            .expect("server task")
            .expect("server ends cleanly");
    }

    #[tokio::test]
    async fn healthz_says_ok_and_unknown_paths_are_404() {
        let (url, _stop, _task) = start(Metrics::new()).await;
        let resp = reqwest::get(format!("{url}/healthz"))
            .await
            .expect("GET /healthz");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.expect("body"), "ok\n");
        let resp = reqwest::get(format!("{url}/nope"))
            .await
            .expect("GET /nope");
        assert_eq!(resp.status(), 404);
    }
}
