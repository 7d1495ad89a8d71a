//! The daemon's HTTP endpoints: `/metrics` for Prometheus and `/healthz` for
//! whatever supervises the process.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::{self, Metrics};

/// Every endpoint, with its state. Routes added later (JSON API, status
/// page) take their state from here too.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(metrics)
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
        let task = tokio::spawn(serve(listener, router(metrics), async {
            let _ = stopped.await;
        }));
        (url, stop, task)
    }

    type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

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
