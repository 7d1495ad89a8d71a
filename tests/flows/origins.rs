//! Redirects between two loopback sites (two ports, so two origins): what
//! came from a credential stays with the origin it was written for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use scarecrow::check::{Outcome, Reason};

use crate::{check, failure, run, workdir};

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

/// A site that redirects where it is told (`/hop` with 302, `/repost` with
/// 307), says which headers reached `/echo`, and counts every request.
struct Site {
    url: String,
    hits: Arc<AtomicUsize>,
}

async fn site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/hop",
            get(|Query(q): Query<To>| async move { Redirect::to(&q.to) }),
        )
        .route(
            "/repost",
            axum::routing::post(|Query(q): Query<To>| async move { Redirect::temporary(&q.to) }),
        )
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let seen = |name: &str| match headers.get(name).and_then(|v| v.to_str().ok()) {
                    Some(v) if name == "x-key" && !v.is_empty() => "sent".to_owned(),
                    Some(v) => v.to_owned(),
                    None => "none".to_owned(),
                };
                format!("x-key: {}; x-plain: {}", seen("x-key"), seen("x-plain"))
            })
            .post(|| async { "posted" }),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hits),
            |State(hits): State<Arc<AtomicUsize>>,
             req: axum::extract::Request,
             next: axum::middleware::Next| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Site { url, hits }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_from_a_secret_stays_with_its_origin_and_a_plain_one_follows() {
    let (a, b) = (site().await, site().await);
    let dir = workdir();
    let hop = |to: &str, expected: &str| {
        let text = format!(
            r#"
[[step]]
url = "{a}/hop"
query = {{ to = "{to}/echo" }}
headers = {{ x-key = "key ${{secret:BARN_PASSWORD}}", x-plain = "visible" }}

[step.expect]
body_contains = "{expected}"
"#,
            a = a.url
        );
        check(dir.path(), "hop", &text)
    };
    let same = run(&hop(&a.url, "x-key: sent; x-plain: visible")).await;
    assert_eq!(same.outcome, Outcome::Success, "{same:#?}");

    let away = run(&hop(&b.url, "x-key: none; x-plain: visible")).await;
    assert_eq!(away.outcome, Outcome::Success, "{away:#?}");
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
}

fn repost(dir: &std::path::Path, from: &str, to: &str) -> scarecrow::check::Check {
    let text = format!(
        r#"
[[step]]
method = "POST"
url = "{from}/repost"
query = {{ to = "{to}/echo" }}
form = {{ user = "ann", password = "${{secret:BARN_PASSWORD}}" }}

[step.expect]
body_contains = "posted"
"#
    );
    check(dir, "repost", &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_307_does_not_re_post_a_secret_to_another_origin() {
    let (a, b) = (site().await, site().await);
    let dir = workdir();
    let r = run(&repost(dir.path(), &a.url, &b.url)).await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Redirects);
    assert!(
        message.contains(&format!(
            "307 to {} would re-send the form holding a secret to another origin",
            b.url
        )),
        "{message}"
    );
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);

    let same = run(&repost(dir.path(), &a.url, &a.url)).await;
    assert_eq!(same.outcome, Outcome::Success, "{same:#?}");
    let http = same.steps[0].http().expect("an HTTP step");
    assert_eq!(http.redirects.len(), 1);
    assert_eq!(http.redirects[0].status, 307);
}
