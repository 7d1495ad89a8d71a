//! The second fixture site, "barn": a sign-in that works unlike the demo's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub const CSRF: &str = "meta-csrf-5150";
pub const API_TOKEN: &str = "api-tok-xyz";
pub const PASSWORD: &str = "barn-door-42";
/// `ann:barn-door-42`, base64.
const BASIC: &str = "Basic YW5uOmJhcm4tZG9vci00Mg==";

fn text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn has_cookie(headers: &HeaderMap, pair: &str) -> bool {
    text(headers, header::COOKIE).split("; ").any(|c| c == pair)
}

async fn sign_in_form() -> Response {
    let page = format!(
        r#"<html><head><meta name="csrf-token" content="{CSRF}"></head><body><div id="app"></div></body></html>"#
    );
    let cookie = "sid=anon-1; Path=/app; HttpOnly; SameSite=Lax";
    ([(header::SET_COOKIE, cookie)], Html(page)).into_response()
}

async fn sign_in(headers: HeaderMap, body: String) -> Response {
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let ok = text(&headers, header::HeaderName::from_static("x-csrf-token")) == CSRF
        && has_cookie(&headers, "sid=anon-1")
        && json["user"] == "ann"
        && json["password"] == PASSWORD;
    if !ok {
        return (StatusCode::FORBIDDEN, "bad sign-in").into_response();
    }
    let cookie = "sid=auth-42; Path=/app; HttpOnly";
    ([(header::SET_COOKIE, cookie)], Redirect::to("/app/home")).into_response()
}

async fn home(headers: HeaderMap) -> Response {
    if !has_cookie(&headers, "sid=auth-42") {
        return Redirect::to("/app/sign-in").into_response();
    }
    Html(format!(
        r#"<h1>Hello, ann</h1><div id="api" data-token="{API_TOKEN}"></div>"#
    ))
    .into_response()
}

async fn me(headers: HeaderMap) -> Response {
    if text(&headers, header::AUTHORIZATION) != format!("Bearer {API_TOKEN}") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let from = text(&headers, header::HeaderName::from_static("x-came-from"));
    axum::Json(serde_json::json!({ "user": "ann", "from": from })).into_response()
}

async fn upload(headers: HeaderMap) -> Response {
    if text(&headers, header::AUTHORIZATION) != BASIC {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Redirect::temporary("/app/upload/v2").into_response()
}

/// Checks the multipart body by hand: the boundary from the header, both
/// parts, the file's bytes.
async fn upload_v2(headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let ct = text(&headers, header::CONTENT_TYPE);
    let Some(boundary) = ct.strip_prefix("multipart/form-data; boundary=") else {
        return (StatusCode::BAD_REQUEST, format!("content type {ct}")).into_response();
    };
    let body = String::from_utf8_lossy(&body);
    let expected = [
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello 200\r\n"
        ),
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"invoice.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 fake\r\n"
        ),
        format!("--{boundary}--\r\n"),
    ];
    if text(&headers, header::AUTHORIZATION) != BASIC || expected.iter().any(|e| !body.contains(e))
    {
        return (StatusCode::BAD_REQUEST, body.into_owned()).into_response();
    }
    let stored = serde_json::json!({ "stored": "invoice.pdf" });
    (StatusCode::CREATED, axum::Json(stored)).into_response()
}

/// 503 for the first two requests, then ready.
async fn eventually(State(hits): State<Arc<AtomicU32>>) -> Response {
    match hits.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => (StatusCode::SERVICE_UNAVAILABLE, "indexing").into_response(),
        _ => "ready".into_response(),
    }
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

pub fn barn() -> axum::Router {
    axum::Router::new()
        .route("/app/sign-in", get(sign_in_form))
        .route("/app/session", post(sign_in))
        .route("/app/home", get(home))
        .route("/app/api/me", get(me))
        .route("/app/upload", post(upload))
        .route("/app/upload/v2", post(upload_v2))
        .route("/app/eventually", get(eventually))
        .route(
            "/app/down",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/app/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/app/hop",
            get(|Query(q): Query<To>| async move { Redirect::to(&q.to) }),
        )
        .route(
            "/app/echo",
            get(|headers: HeaderMap| async move {
                let auth = headers.get(header::AUTHORIZATION).is_some();
                format!("authorization sent: {auth}")
            }),
        )
        .route(
            "/bad/garbage",
            get(|| async { Html("\u{0}\u{1}<<<>>><div <p>>>></ </") }),
        )
        .route("/bad/empty", get(|| async { "" }))
        .route(
            "/bad/not-json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "<html>oops</html>",
                )
            }),
        )
        .with_state(Arc::new(AtomicU32::new(0)))
}

pub async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, barn()).await });
    url
}
