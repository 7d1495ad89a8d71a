//! The router on loopback, with a view filled by hand and no store.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::check::{Check, Outcome, Reason, Redacted, RunResult};
use crate::config::{Defaults, Source, read_check};
use crate::live::View;
use crate::metrics::Metrics;

/// Serves a fresh router on a loopback port; the returned token stops it.
async fn start(state: ServerState) -> (String, CancellationToken, ServerTask) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let stop = CancellationToken::new();
    let limits = Limits {
        idle_timeout: Duration::from_secs(30),
        max_connections: 64,
        grace: Duration::from_secs(2),
    };
    let task = tokio::spawn(serve(listener, router(state), limits, stop.clone()));
    (url, stop, task)
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

fn state(view: View) -> ServerState {
    ServerState {
        metrics: Metrics::new(),
        view,
        actions: Arc::new(Nothing),
        store: None,
        api_token: None,
        metrics_auth: None,
        exposed: false,
        run_now: Default::default(),
        screenshots: std::path::PathBuf::from("screenshots"),
    }
}

struct Nothing;
impl Actions for Nothing {
    fn resolve_incident(&self, id: String, _: Option<String>) -> ActionFuture {
        Box::pin(async move { Err(ActionError::NotFound(format!("no open incident {id}"))) })
    }
    fn run_check(&self, name: String) -> ActionFuture {
        Box::pin(async move { Err(ActionError::Unavailable(format!("cannot run {name} now"))) })
    }
}

fn check(name: &str, keys: &str) -> Check {
    let text = format!("{keys}\n[[step]]\nurl = \"https://shop.test/\"\n");
    let src = Source::new(format!("checks/{name}.toml"), text);
    let (check, diags) = read_check(&src, &Defaults::default(), &|_| None);
    check.unwrap_or_else(|| panic!("{diags:?}"))
}

fn failed(check: &str, step: &str, message: &str) -> Redacted<RunResult> {
    Redacted::vouched(RunResult {
        check: check.to_owned(),
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(12),
        outcome: Outcome::Failure {
            reason: Reason::Assertion,
            step: Some(step.to_owned()),
            message: message.to_owned(),
        },
        steps: Vec::new(),
    })
}

async fn json(resp: reqwest::Response) -> serde_json::Value {
    serde_json::from_str(&resp.text().await.expect("body")).expect("json")
}

#[tokio::test]
async fn api_errors_are_json_with_a_message() {
    let (url, stop, task) = start(state(View::default())).await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{url}/api/v1/incidents/inc_x/resolve"))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 404);
    assert_eq!(json(resp).await["error"], "no open incident inc_x");

    let resp = client
        .get(format!("{url}/api/v1/nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 404);
    assert_eq!(json(resp).await["error"], "no such endpoint: /api/v1/nope");

    let resp = client
        .delete(format!("{url}/api/v1/checks"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), 405);
    assert!(json(resp).await["error"].is_string());

    let resp = client
        .post(format!("{url}/api/v1/checks/ghost/run"))
        .send()
        .await
        .expect("POST run");
    assert_eq!(resp.status(), 404);

    // Without a store, what needs one is unavailable rather than empty.
    let resp = client
        .get(format!("{url}/api/v1/incidents"))
        .send()
        .await
        .expect("GET incidents");
    assert_eq!(resp.status(), 503);
    assert_eq!(json(resp).await["error"], "this server has no store");
    stop.cancel();
    let _ = task.await;
}

#[tokio::test]
async fn the_token_guards_every_api_call_and_nothing_else() {
    let mut s = state(View::default());
    s.api_token = Some("t0ken".into());
    s.metrics_auth = Some(MetricsCredentials::Basic {
        username: "prom".into(),
        password: "scrape".into(),
    });
    let (url, _stop, _task) = start(s).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{url}/api/v1/checks"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"scarecrow\""
    );
    assert!(json(resp).await["error"].is_string());
    let resp = client
        .get(format!("{url}/api/v1/nope"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401, "unknown paths reveal nothing either");
    let resp = client
        .get(format!("{url}/api/v1/checks"))
        .bearer_auth("t0ken")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(json(resp).await["checks"], serde_json::json!([]));

    let resp = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic ")
    );
    let resp = client
        .get(format!("{url}/metrics"))
        .basic_auth("prom", Some("scrape"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    for public in ["/", "/healthz"] {
        let resp = client
            .get(format!("{url}{public}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 200, "{public}");
    }
}

#[tokio::test]
async fn the_status_page_escapes_what_checks_and_responses_say() {
    let view = View::default();
    let c = check(
        "order",
        r#"description = "Orders <b>work</b>"
critical = true"#,
    );
    view.upsert_check(&Arc::new(c));
    view.upsert_check(&Arc::new(check("news", "critical = false")));
    view.run_finished(&failed(
        "order",
        "open <the> form",
        r#"expected "<script>alert(1)</script>""#,
    ));
    let (url, _stop, _task) = start(state(view)).await;
    let resp = reqwest::get(format!("{url}/")).await.expect("GET /");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let page = resp.text().await.expect("body");
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<b>work</b>"), "{page}");
    assert!(page.contains("Orders &lt;b&gt;work&lt;/b&gt;"), "{page}");
    assert!(page.contains("open &lt;the&gt; form"), "{page}");
    assert!(page.contains(r#"<meta http-equiv="refresh" content="30">"#));
    assert!(page.contains("1 critical feature is down"), "{page}");
    let order = page.find(r#"data-check="order""#).expect("order shown");
    let news = page.find(r#"data-check="news""#).expect("news shown");
    assert!(order < news, "critical first");
    assert!(page.contains("The incident history is not available"));
}

#[tokio::test]
async fn metrics_are_served_as_text_format_0_0_4() {
    let (url, stop, task) = start(state(View::default())).await;
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

    stop.cancel();
    task.await
        .expect("server task")
        .expect("server ends cleanly");
}

#[tokio::test]
async fn healthz_says_ok_and_unknown_paths_are_404() {
    let (url, _stop, _task) = start(state(View::default())).await;
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

/// Ready while the scheduler ticks; a scheduler stalled past 30 s is not
/// (no outside way stalls it without stalling the server too).
#[test]
fn readiness_ends_when_the_scheduler_stalls() {
    let tick = chrono::Utc::now();
    let at = |secs| tick + chrono::TimeDelta::seconds(secs);
    assert_eq!(not_ready(true, Some(tick), at(1)), None);
    assert_eq!(not_ready(true, Some(tick), at(30)), None);
    assert_eq!(
        not_ready(true, Some(tick), at(31)).as_deref(),
        Some("the scheduler has not ticked for 31 s")
    );
    assert_eq!(
        not_ready(true, None, at(0)).as_deref(),
        Some("the scheduler has not started")
    );
    assert_eq!(
        not_ready(false, Some(tick), at(1)).as_deref(),
        Some("the checks are not loaded yet")
    );
}
