//! What every endpoint shares: the server's state, the actions it may ask
//! the daemon for, and the JSON error answer. Its own file so that the
//! endpoints import it and not the module that routes to them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::throttle;
use crate::live::View;
use crate::metrics::Metrics;

/// What the server may ask the daemon to do. The daemon (`app`) owns the
/// engine; the server only sends requests through this.
pub trait Actions: Send + Sync + 'static {
    /// Resolves an open incident by hand; the answer is the resolution event.
    fn resolve_incident(&self, id: String, note: Option<String>) -> ActionFuture;
    /// Runs a check now (or waits for the run in progress) and answers its
    /// result; it counts like a scheduled run.
    fn run_check(&self, name: String) -> ActionFuture;
}

pub type ActionFuture =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, ActionError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    NotFound(String),
    Unavailable(String),
}

/// What every endpoint reads from and asks through. Holds secrets: it is
/// deliberately not `Debug`.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: Metrics,
    pub view: View,
    pub actions: Arc<dyn Actions>,
    /// The store, read per request; without it, incident history and
    /// recent runs answer 503 and the status page shows what the view has.
    pub store: Option<crate::store::Backend>,
    /// When set, every `/api` call must carry `Authorization: Bearer` it.
    pub api_token: Option<String>,
    /// When set, `/metrics` asks for these credentials.
    pub metrics_auth: Option<MetricsCredentials>,
    /// The server listens beyond loopback: without an API token, the API
    /// then refuses every call rather than serve anyone who reaches the port.
    pub exposed: bool,
    /// Run-now, one at a time per check and spaced.
    pub run_now: throttle::RunNow,
    /// Where browser steps keep their screenshots (`[browser] screenshots`).
    pub screenshots: std::path::PathBuf,
}

/// The credentials `/metrics` asks for, with their secrets read.
#[derive(Clone)]
pub enum MetricsCredentials {
    Bearer(String),
    Basic { username: String, password: String },
}

/// Errors are JSON with a message.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
