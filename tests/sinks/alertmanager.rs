use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::support::{PREVIOUS, Receiver, Secrets, TITLE, declared, joined, later, template};
use scarecrow::incident::EventKind;
use scarecrow::sink::alertmanager::{
    AlertmanagerSink, AlertmanagerSpec, DEFAULT_ALERTNAME, Resend,
};
use scarecrow::sink::{Attempt, Deliver};

/// Re-sends every 100 ms: `endsAt` 400 ms ahead, resolutions kept 500 ms.
const EVERY: Duration = Duration::from_millis(100);

fn sink(url: &str, resend: Resend) -> AlertmanagerSink {
    let spec = AlertmanagerSpec {
        url: template(url),
        headers: [(
            "authorization".to_owned(),
            template("Bearer ${secret:AM_TOKEN}"),
        )]
        .into(),
        alertname: DEFAULT_ALERTNAME.into(),
        status_url: None,
        timeout: Duration::from_secs(5),
    };
    let secrets = Secrets([("AM_TOKEN", "t0k3n")].into());
    AlertmanagerSink::new("alertmanager", &spec, &secrets, resend).unwrap()
}

fn ends_at(alert: &serde_json::Value) -> DateTime<Utc> {
    alert["endsAt"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_first_post_has_the_exact_body() {
    let rx = Receiver::start(200, "").await;
    // Re-sending is slow here, so only the event's own post arrives.
    let sink = sink(&rx.url, Resend::default());
    let before = Utc::now();
    assert_eq!(
        sink.send(&declared()).await,
        Attempt::Delivered { status: 200 }
    );
    let after = Utc::now();
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/v2/alerts");
    assert_eq!(got[0].header("authorization"), "Bearer t0k3n");
    let mut body = got[0].json();
    // `endsAt` is four minutes after the post.
    let ends = ends_at(&body[0]);
    let four = chrono::TimeDelta::minutes(4);
    assert!(
        ends >= before + four - chrono::TimeDelta::milliseconds(1) && ends <= after + four,
        "{ends}"
    );
    body[0]["endsAt"] = json!("checked above");
    assert_eq!(
        body,
        json!([{
            "labels": {
                "alertname": "ScarecrowCheckFailing",
                "check": "diesel-order",
                "severity": "critical",
                "owner": "shop-team",
                "instance_group": "eu-west"
            },
            "annotations": {
                "summary": TITLE,
                "description": "Customers can order diesel\nstep \"order\" failed (assertion): expected status 200, got 500",
                "runbook_url": "https://wiki.example.org/runbooks/diesel",
                "query": "status",
                "expected": "be 200",
                "actual": "500",
                "failures": "status: expected it to be 200, got 500",
                "previous_incident": PREVIOUS
            },
            "startsAt": "2025-03-04T10:15:02.250Z",
            "endsAt": "checked above",
            "generatorURL": "https://shop.example.org/diesel/order"
        }])
    );
}

#[tokio::test]
async fn open_alerts_are_re_sent_and_resolutions_end_now_then_stop() {
    let rx = Receiver::start(200, "").await;
    // Re-sent often, but with times that hold on a loaded machine: `endsAt`
    // far ahead of any delay in arrival, resolutions re-sent for long enough
    // that one re-send comes even after a stall.
    let resend = Resend {
        every: EVERY,
        ends_after: Duration::from_secs(20),
        resolved_for: Duration::from_secs(3),
    };
    let sink = sink(&rx.url, resend);
    sink.send(&declared()).await;
    // The event's post, then at least three re-sends, each still firing.
    let got = rx.wait_for(4).await;
    for g in &got {
        let alert = &g.json()[0];
        assert_eq!(alert["labels"]["check"], "diesel-order");
        // `ends_after` past the post, which is a moment before arrival.
        let ends = ends_at(alert);
        assert!(
            ends > g.at + chrono::TimeDelta::seconds(10)
                && ends <= g.at + chrono::TimeDelta::seconds(20),
            "{alert}"
        );
    }
    assert_eq!(sink.kept(), ["scarecrow:eu-west:diesel-order"]);

    let now = Utc::now();
    let resolved = later(EventKind::Resolved, now);
    sink.send(&resolved).await;
    let n = rx.got().len();
    let got = rx.wait_for(n + 2).await;
    // Resolved means `endsAt` = when it was resolved; a re-send of the
    // firing alert may have crossed the resolution.
    let resolved_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    for g in &got[n - 1..] {
        let alert = &g.json()[0];
        assert!(
            alert["endsAt"] == resolved_at.as_str() || ends_at(alert) > now,
            "{alert}"
        );
    }
    assert_eq!(got[got.len() - 1].json()[0]["endsAt"], resolved_at.as_str());
    // Resolutions are re-sent for `resolved_for`, then dropped.
    for _ in 0..300 {
        if sink.kept().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.kept().is_empty(), "{:?}", sink.kept());
    assert!(
        Utc::now() - now >= chrono::TimeDelta::from_std(resend.resolved_for).unwrap(),
        "kept for `resolved_for`"
    );
    // Every post finished before the drop (a re-send awaits its answer);
    // five re-send intervals later, nothing more has come.
    let settled = rx.got().len();
    tokio::time::sleep(EVERY * 5).await;
    assert_eq!(rx.got().len(), settled, "nothing more is sent");
}

#[tokio::test]
async fn open_incidents_given_at_start_are_kept_alive() {
    let rx = Receiver::start(200, "").await;
    let sink = sink(&rx.url, Resend::every(EVERY));
    let mut gone = declared().incident;
    gone.key = "scarecrow:eu-west:weather".into();
    gone.resolved_at = Some(Utc::now());
    sink.resume(&[declared().incident, gone]);
    let got = rx.wait_for(2).await;
    let alerts = got[0].json();
    assert_eq!(alerts.as_array().map(Vec::len), Some(1), "{alerts}");
    assert_eq!(alerts[0]["labels"]["check"], "diesel-order");
    assert!(ends_at(&alerts[0]) > got[0].at);
}

#[tokio::test]
async fn a_refused_alert_is_not_re_sent() {
    let rx = Receiver::start(200, "").await;
    rx.then(400, "bad alert");
    let sink = sink(&rx.url, Resend::every(EVERY));
    let a = sink.send(&declared()).await;
    assert!(matches!(a, Attempt::Rejected { .. }), "{a:?}");
    assert!(sink.kept().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(rx.got().len(), 1);
}

/// The features that joined the incident are an annotation, a line each.
#[tokio::test]
async fn the_features_that_joined_are_an_annotation() {
    let rx = Receiver::start(200, "").await;
    let sink = sink(&rx.url, Resend::default());
    sink.send(&joined()).await;
    let body = rx.got()[0].json();
    let affected = body[0]["annotations"]["affected"]
        .as_str()
        .expect("affected");
    assert_eq!(
        affected,
        "weather (connect): step \"open the weather page\": connection refused\n\
         member-login (connect): step \"open the login form\": connection refused (recovered)"
    );
    assert!(body[0]["labels"].get("affected").is_none(), "never a label");
}
