//! The built-in demo site that scarecrow's shipped checks monitor: a weather
//! forecast (and its JavaScript widget), a member login and a diesel order form, each of which can be
//! broken and fixed on demand through `/_demo/break/{feature}` and
//! `/_demo/fix/{feature}`; `site` takes the whole site down at once.

mod csrf;
mod diesel;
mod layout;
mod login;
mod shared;
#[cfg(test)]
mod tests;
mod weather;
mod widget;

use std::future::Future;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use csrf::Tokens;
use diesel::Diesel;
use login::Login;
pub use login::{DEMO_PASSWORD, DEMO_USER};
use weather::{Weather, WeatherFault};
use widget::Widget;

/// The demo site: each feature's own state, composed. Clones share the same
/// switches, sessions and orders.
#[derive(Clone, Default)]
pub struct DemoSite {
    weather: Weather,
    widget: Widget,
    login: Login,
    diesel: Diesel,
    tokens: Tokens,
    /// The whole site answers 503, as when its server is down.
    down: shared::Shared<bool>,
}

impl FromRef<DemoSite> for Weather {
    fn from_ref(site: &DemoSite) -> Self {
        site.weather.clone()
    }
}

impl FromRef<DemoSite> for Widget {
    fn from_ref(site: &DemoSite) -> Self {
        site.widget.clone()
    }
}

impl FromRef<DemoSite> for Login {
    fn from_ref(site: &DemoSite) -> Self {
        site.login.clone()
    }
}

impl FromRef<DemoSite> for Diesel {
    fn from_ref(site: &DemoSite) -> Self {
        site.diesel.clone()
    }
}

impl FromRef<DemoSite> for Tokens {
    fn from_ref(site: &DemoSite) -> Self {
        site.tokens.clone()
    }
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
            .route("/weather/widget", get(widget::show))
            .route("/weather/widget/data", get(widget::data))
            .route("/login", get(login::form).post(login::submit))
            .route("/members", get(login::members))
            .route("/logout", post(login::logout))
            .route("/diesel/order", get(diesel::form).post(diesel::submit))
            .route("/_demo/status", get(status))
            .route("/_demo/orders", get(diesel::recent))
            .route("/_demo/break/{feature}", post(break_feature))
            .route("/_demo/fix/{feature}", post(fix_feature))
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                site_down,
            ))
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
}

/// While the site is down every page is a 503; the switches still work.
async fn site_down(
    State(site): State<DemoSite>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if site.down.get() && !request.uri().path().starts_with("/_demo/") {
        let body =
            "<h1>Service unavailable</h1>\n<p>The member site is down. Please try again later.</p>";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            layout::page("Service unavailable", body),
        )
            .into_response();
    }
    next.run(request).await
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
        crate::text::EscapeHtml(uri.path())
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
    match (feature.as_str(), mode) {
        ("weather", _) => match WeatherFault::from_mode(mode) {
            Some(fault) => site.weather.fault.set(Some(fault)),
            None => return bad_mode(&feature),
        },
        ("widget", None) => site.widget.broken.set(true),
        ("login", None) => site.login.broken.set(true),
        ("diesel", None) => site.diesel.broken.set(true),
        ("site", None) => site.down.set(true),
        ("widget" | "login" | "diesel" | "site", Some(_)) => return bad_mode(&feature),
        _ => return unknown_feature(&feature),
    }
    tracing::info!(feature, mode, "demo feature broken");
    status_json(&site).into_response()
}

async fn fix_feature(State(site): State<DemoSite>, Path(feature): Path<String>) -> Response {
    match feature.as_str() {
        "weather" => site.weather.fault.set(None),
        "widget" => site.widget.broken.set(false),
        "login" => site.login.broken.set(false),
        "diesel" => site.diesel.broken.set(false),
        "site" => site.down.set(false),
        _ => return unknown_feature(&feature),
    }
    tracing::info!(feature, "demo feature fixed");
    status_json(&site).into_response()
}

async fn status(State(site): State<DemoSite>) -> Json<Value> {
    status_json(&site)
}

fn unknown_feature(feature: &str) -> Response {
    let error =
        format!("unknown feature {feature:?}; expected weather, widget, login, diesel or site");
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
fn status_json(site: &DemoSite) -> Json<Value> {
    let weather = match site.weather.fault.get() {
        Some(fault) => json!({ "broken": true, "mode": fault.mode() }),
        None => json!({ "broken": false }),
    };
    Json(json!({
        "weather": weather,
        "widget": { "broken": site.widget.broken.get() },
        "login": { "broken": site.login.broken.get() },
        "diesel": { "broken": site.diesel.broken.get() },
        "site": { "broken": site.down.get() },
    }))
}
