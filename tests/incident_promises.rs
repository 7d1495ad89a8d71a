//! Promises of the README and docs/webhooks.md about incidents and their
//! delivery, held end to end through a daemon on loopback: a maintenance
//! window that ends while the check fails; a changed check keeping its open
//! incident; `Retry-After` longer than the backoff; a 410 disabling the sink
//! for later events; `notify_retry_for` dead-lettering.

mod common;
mod fixture;
mod running;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixture::{Daemon, Fixture};
use running::eventually;
use tokio::time::Instant;

/// One request the hook got: when, and the event's type.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    kind: String,
}

/// Status and `Retry-After` seconds of each answer to come.
type Answers = Arc<Mutex<VecDeque<(u16, Option<u64>)>>>;

/// A webhook receiver answering from a queue of `(status, Retry-After)`,
/// then 200, recording each request.
#[derive(Clone, Default)]
struct Hook {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Answers,
}

impl Hook {
    async fn start(answers: &[(u16, Option<u64>)]) -> Hook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hook = Hook {
            url: format!("http://{}/hook", listener.local_addr().expect("addr")),
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            ..Hook::default()
        };
        let h = hook.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| async move {
                let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                h.hits.lock().expect("hits").push(Hit {
                    at: Instant::now(),
                    kind: event["type"].as_str().unwrap_or("").to_owned(),
                });
                let (status, retry_after) = h
                    .answers
                    .lock()
                    .expect("answers")
                    .pop_front()
                    .unwrap_or((200, None));
                let mut headers = axum::http::HeaderMap::new();
                if let Some(secs) = retry_after {
                    headers.insert("retry-after", secs.into());
                }
                let status = axum::http::StatusCode::from_u16(status).expect("status");
                (status, headers, "")
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        hook
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    fn kinds(&self) -> Vec<String> {
        self.hits().into_iter().map(|h| h.kind).collect()
    }
}

/// `[incidents]` with thresholds of one, `extra` and a webhook sink `hook`.
fn config(hook: &str, extra: &str) -> String {
    format!(
        "[incidents]\nfailure_threshold = 1\nsuccess_threshold = 1\n{extra}\n[[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
    )
}

/// A critical check of `path` on the fixture site, every second.
fn check(site: &Fixture, path: &str, extra: &str) -> String {
    format!(
        "critical = true\nevery = \"1s\"\n{extra}\n[[step]]\nurl = \"{}{path}\"\n",
        site.url
    )
}

async fn api(d: &Daemon, path: &str) -> Option<serde_json::Value> {
    let text = reqwest::get(format!("{}/api/v1{path}", d.url))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// The incidents the API lists, newest first.
async fn incidents(d: &Daemon) -> Vec<serde_json::Value> {
    api(d, "/incidents")
        .await
        .and_then(|b| b["incidents"].as_array().cloned())
        .unwrap_or_default()
}

/// A failed run counted in `/metrics`: the check's failures so far.
async fn failures(d: &Daemon, check: &str) -> f64 {
    let series = format!("scarecrow_check_runs_total{{check=\"{check}\",result=\"failure\"}}");
    d.metric(&series).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_maintenance_window_that_ends_while_failing_declares_after_it() {
    let site = Fixture::start().await;
    let hook = Hook::start(&[]).await;
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Time enough for several failing runs inside, on a loaded machine too.
    let now = chrono::Utc::now();
    // Whole seconds, as the config gets it.
    let end: chrono::DateTime<chrono::Utc> = fmt(now + chrono::TimeDelta::seconds(12))
        .parse()
        .expect("end");
    let window = format!(
        "[[maintenance]]\nname = \"deploy\"\nstart = \"{}\"\nend = \"{}\"\n",
        fmt(now - chrono::TimeDelta::minutes(1)),
        fmt(end)
    );
    let d = Daemon::start(
        "maintenance-end",
        &config(&hook.url, &window),
        &[("down", &check(&site, "/fail", ""))],
    )
    .await;
    eventually("two failing runs in the window", 30, async || {
        (failures(&d, "down").await >= 2.0).then_some(())
    })
    .await;
    if chrono::Utc::now() < end {
        assert!(incidents(&d).await.is_empty(), "declared in the window");
    }
    let declared = eventually("a declaration after the window", 60, async || {
        incidents(&d).await.into_iter().next()
    })
    .await;
    let declared_at: chrono::DateTime<chrono::Utc> = declared["declared_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("declared_at");
    assert!(
        declared_at >= end,
        "declared at {declared_at}, the window ended {end}"
    );
    eventually("the declaration delivered", 30, async || {
        (hook.kinds() == ["incident.declared"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_check_keeps_its_open_incident() {
    let site = Fixture::start().await;
    let hook = Hook::start(&[]).await;
    let d = Daemon::start(
        "changed-keeps-incident",
        &config(&hook.url, ""),
        &[("down", &check(&site, "/fail", ""))],
    )
    .await;
    let first = eventually("an open incident", 30, async || {
        incidents(&d).await.into_iter().next()
    })
    .await;
    let changed = check(&site, "/fail", "description = \"Now described\"");
    std::fs::write(d.dir.path().join("checks/down.toml"), changed).expect("edit");
    eventually("the new definition", 30, async || {
        let c = api(&d, "/checks/down").await?;
        (c["description"] == "Now described").then_some(())
    })
    .await;
    // A few failing runs of the new definition.
    let before = failures(&d, "down").await;
    eventually("three more failing runs", 30, async || {
        (failures(&d, "down").await >= before + 3.0).then_some(())
    })
    .await;
    let now = incidents(&d).await;
    assert_eq!(now.len(), 1, "not declared again: {now:?}");
    assert_eq!(now[0]["id"], first["id"]);
    assert_eq!(now[0]["open"], true, "{now:?}");
    let c = api(&d, "/checks/down").await.expect("check");
    assert_eq!(c["open_incident"]["id"], first["id"], "{c}");
    assert_eq!(hook.kinds(), ["incident.declared"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_longer_than_the_backoff_is_honoured() {
    let site = Fixture::start().await;
    // The first retry's backoff is 4–6 s; the receiver asks for 9.
    let hook = Hook::start(&[(503, Some(9))]).await;
    let _d = Daemon::start(
        "retry-after",
        &config(&hook.url, ""),
        &[("down", &check(&site, "/fail", ""))],
    )
    .await;
    let hits = eventually("the retried declaration", 60, async || {
        let hits = hook.hits();
        (hits.len() >= 2).then_some(hits)
    })
    .await;
    assert_eq!(hits[0].kind, "incident.declared");
    assert_eq!(hits[1].kind, "incident.declared");
    let waited = hits[1].at - hits[0].at;
    assert!(waited >= Duration::from_secs(9), "retried after {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_disables_the_sink_for_later_events() {
    let site = Fixture::start().await;
    let gone = Hook::start(&[(410, None)]).await;
    let healthy = Hook::start(&[]).await;
    let sinks = format!(
        "[[sinks]]\nname = \"healthy\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        healthy.url
    );
    let d = Daemon::start(
        "gone",
        &config(&gone.url, &sinks),
        &[("flaky", &check(&site, "/flaky", ""))],
    )
    .await;
    // `/flaky` fails every other run: incidents are declared and resolved
    // in turn. The healthy sink sees them; the gone one only the first.
    eventually("two incidents at the healthy sink", 60, async || {
        (healthy.kinds().len() >= 4).then_some(())
    })
    .await;
    assert_eq!(gone.kinds(), ["incident.declared"]);
    let first = incidents(&d).await.pop().expect("the first incident");
    let id = first["id"].as_str().expect("id");
    let detail = api(&d, &format!("/incidents/{id}")).await.expect("detail");
    let states: Vec<(&str, &str)> = detail["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["sink"] == "hook")
        .map(|n| {
            (
                n["kind"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        states.contains(&("incident.declared", "disabled")),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_retry_for_dead_letters_an_event_it_cannot_deliver() {
    let site = Fixture::start().await;
    let hook = Hook::start(&[(503, None), (503, None), (503, None)]).await;
    let d = Daemon::start(
        "dead-letter",
        &config(&hook.url, "notify_retry_for = \"3s\"\n"),
        &[("down", &check(&site, "/fail", ""))],
    )
    .await;
    let id = eventually("an incident", 30, async || {
        let i = incidents(&d).await.into_iter().next()?;
        i["id"].as_str().map(str::to_owned)
    })
    .await;
    // The first retry would come after 4–6 s, past the 3 s: the event is
    // dead after its first attempt.
    let notification = eventually("the declaration dead-lettered", 30, async || {
        let detail = api(&d, &format!("/incidents/{id}")).await?;
        let n = detail["notifications"]
            .as_array()?
            .iter()
            .find(|n| n["sink"] == "hook" && n["state"] != "pending")?
            .clone();
        Some(n)
    })
    .await;
    assert_eq!(notification["state"], "dead", "{notification}");
    assert_eq!(notification["attempts"], 1, "{notification}");
    assert_eq!(hook.kinds(), ["incident.declared"]);
    let metrics = reqwest::get(format!("{}/metrics", d.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    let dead = metrics.lines().find(|l| {
        l.starts_with("scarecrow_notifications_total{")
            && [
                r#"sink="hook""#,
                r#"event="incident.declared""#,
                r#"result="dead""#,
            ]
            .iter()
            .all(|label| l.contains(label))
    });
    assert_eq!(
        dead.and_then(|l| l.rsplit(' ').next()),
        Some("1"),
        "{metrics}"
    );
}
