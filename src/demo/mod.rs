//! The built-in demo site that scarecrow's shipped checks monitor: a weather
//! forecast, a member login and a diesel order form, each of which can be
//! broken and fixed on demand through `/_demo/break/{feature}` and
//! `/_demo/fix/{feature}`.

mod csrf;
mod diesel;
mod layout;
mod login;
#[cfg(test)]
mod tests;
mod weather;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use login::{DEMO_PASSWORD, DEMO_USER};
use weather::WeatherFault;

/// The demo site. Clones share the same switches, sessions and orders.
#[derive(Clone, Default)]
pub struct DemoSite {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    faults: Mutex<Faults>,
    sessions: Mutex<login::Sessions>,
    orders: Mutex<diesel::OrderBook>,
    tokens: AtomicU64,
}

/// Which features are currently broken, and how.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    weather: Option<WeatherFault>,
    login: bool,
    diesel: bool,
}

impl DemoSite {
    /// A site with every feature working and no sessions or orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// The site's routes, sharing this site's state.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/weather", get(weather::show))
            .route("/login", get(login::form).post(login::submit))
            .route("/members", get(login::members))
            .route("/logout", post(login::logout))
            .route("/diesel/order", get(diesel::form).post(diesel::submit))
            .route("/_demo/status", get(status))
            .route("/_demo/orders", get(diesel::recent))
            .route("/_demo/break/{feature}", post(break_feature))
            .route("/_demo/fix/{feature}", post(fix_feature))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Serve until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    fn faults(&self) -> Faults {
        *lock(&self.inner.faults)
    }

    fn new_token(&self) -> String {
        csrf::token(self.inner.tokens.fetch_add(1, Ordering::Relaxed))
    }

    fn sessions(&self) -> MutexGuard<'_, login::Sessions> {
        lock(&self.inner.sessions)
    }

    fn orders(&self) -> MutexGuard<'_, diesel::OrderBook> {
        lock(&self.inner.orders)
    }
}

/// No handler panics while holding a lock, but if one ever did, the demo
/// should keep serving rather than fail every later request.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn home() -> Response {
    layout::page(
        "Home",
        "<h1>Welcome to the Greenfield Farmers' Union</h1>\n\
<p>Everything our members need, in one place.</p>\n\
<ul class=\"features\">\n\
<li><a href=\"/weather\">Weather forecast</a>: the next five days for the valley.</li>\n\
<li><a href=\"/login\">Member login</a>: your membership, invoices and events.</li>\n\
<li><a href=\"/diesel/order\">Order diesel</a>: bulk red or road diesel, delivered to your farm.</li>\n\
</ul>",
    )
    .into_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = format!(
        "<h1>Page not found</h1>\n<p>There is no page at <code>{}</code>. \
<a href=\"/\">Back to the home page</a>.</p>",
        layout::escape(uri.path())
    );
    (StatusCode::NOT_FOUND, layout::page("Page not found", &body)).into_response()
}

#[derive(Deserialize)]
struct BreakQuery {
    mode: Option<String>,
}

async fn break_feature(
    State(site): State<DemoSite>,
    Path(feature): Path<String>,
    Query(query): Query<BreakQuery>,
) -> Response {
    let mode = query.mode.as_deref();
    let mut faults = lock(&site.inner.faults);
    match (feature.as_str(), mode) {
        ("weather", _) => match WeatherFault::from_mode(mode) {
            Some(fault) => faults.weather = Some(fault),
            None => return bad_mode(&feature),
        },
        ("login", None) => faults.login = true,
        ("diesel", None) => faults.diesel = true,
        ("login" | "diesel", Some(_)) => return bad_mode(&feature),
        _ => return unknown_feature(&feature),
    }
    tracing::info!(feature, mode, "demo feature broken");
    status_json(*faults).into_response()
}

async fn fix_feature(State(site): State<DemoSite>, Path(feature): Path<String>) -> Response {
    let mut faults = lock(&site.inner.faults);
    match feature.as_str() {
        "weather" => faults.weather = None,
        "login" => faults.login = false,
        "diesel" => faults.diesel = false,
        _ => return unknown_feature(&feature),
    }
    tracing::info!(feature, "demo feature fixed");
    status_json(*faults).into_response()
}

async fn status(State(site): State<DemoSite>) -> Json<Value> {
    status_json(site.faults())
}

fn unknown_feature(feature: &str) -> Response {
    let error = format!("unknown feature {feature:?}; expected weather, login or diesel");
    (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response()
}

fn bad_mode(feature: &str) -> Response {
    let error = match feature {
        "weather" => "unknown mode; weather supports mode=stale (default) or mode=error",
        _ => "this feature has no modes",
    };
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

/// The body of `GET /_demo/status` and of the break/fix answers.
fn status_json(faults: Faults) -> Json<Value> {
    let weather = match faults.weather {
        Some(fault) => json!({ "broken": true, "mode": fault.mode() }),
        None => json!({ "broken": false }),
    };
    Json(json!({
        "weather": weather,
        "login": { "broken": faults.login },
        "diesel": { "broken": faults.diesel },
    }))
}
