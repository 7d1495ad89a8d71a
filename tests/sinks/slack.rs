use std::time::Duration;

use serde_json::json;

use super::support::{Receiver, Secrets, TITLE, at, declared, later, template};
use scarecrow::check::Failure;
use scarecrow::incident::EventKind;
use scarecrow::sink::http::RateLimit;
use scarecrow::sink::slack::{SlackSink, SlackSpec};
use scarecrow::sink::{Attempt, Deliver};

fn sink(url: &str) -> SlackSink {
    let spec = SlackSpec {
        url: template("${secret:SLACK_WEBHOOK_URL}"),
        status_url: Some("https://status.example.org".into()),
        timeout: Duration::from_secs(5),
    };
    let url = format!("{url}/services/T0/B0/x");
    let secrets = Secrets([("SLACK_WEBHOOK_URL", &*url.leak())].into());
    SlackSink::new(&spec, &secrets).unwrap()
}

#[tokio::test]
async fn a_declaration_is_a_readable_message() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink(&rx.url);
    assert_eq!(
        sink.send(&declared()).await,
        Attempt::Delivered { status: 200 }
    );
    let got = rx.got();
    assert_eq!(got[0].path, "/services/T0/B0/x");
    let section = "*Feature:* Customers can order diesel (`diesel-order`)\n\
        *What is wrong:* expected status 200, got 500\n\
        *Since:* <!date^1741083241^{date_short_pretty} {time}|2025-03-04 10:14 UTC> (2 failed runs in a row)\n\
        *Failing step:* `order` (assertion)\n\
        *Declared again:* incident `inc_0192f5a1e2d3` was resolved less than an hour before\n\
        *Owner:* shop-team\n\
        *Roles:* coordinator @alice · operations #shop-ops\n\
        *Runbook:* <https://wiki.example.org/runbooks/diesel>\n\
        *Status page:* <https://status.example.org>\n\
        *Failing URL:* <https://shop.example.org/diesel/order>";
    assert_eq!(
        got[0].json(),
        json!({
            "text": format!("Incident: {TITLE}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": format!("🔴 Incident: {TITLE}"), "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": section}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "*Where:* `status`"},
                    "fields": [
                        {"type": "mrkdwn", "text": "*Expected*\nbe 200"},
                        {"type": "mrkdwn", "text": "*Actual*\n`500`"}
                    ]
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "incident `inc_0192f5a6b7c8` · key `scarecrow:eu-west:diesel-order` · scarecrow"}]}
            ]
        })
    );
}

#[tokio::test]
async fn a_resolution_says_how_and_when() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink(&rx.url);
    let e = later(EventKind::Resolved, at("2025-03-04T10:27:32.250Z"));
    sink.send(&e).await;
    let body = rx.got()[0].json();
    assert_eq!(body["text"], format!("Resolved: {TITLE}"));
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        format!("✅ Resolved: {TITLE}")
    );
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("*Resolved:* the check recovered after 12m 30s\n"),
        "{section}"
    );
    assert!(section.contains("|2025-03-04 10:27 UTC>"), "{section}");
}

#[tokio::test]
async fn the_header_is_cut_at_150_characters_and_text_is_escaped() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink(&rx.url);
    let mut e = declared();
    e.incident.title = format!("{} <b>&", "x".repeat(300));
    e.incident.evidence.message = "<script> & \"quotes\"\nand lines".into();
    sink.send(&e).await;
    let body = rx.got()[0].json();
    let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150, "{header}");
    assert!(header.starts_with("🔴 Incident: xxx") && header.ends_with("x…"));
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("*What is wrong:* &lt;script&gt; &amp; \"quotes\"\nand lines"),
        "{section}"
    );
}

#[tokio::test]
async fn about_one_message_a_second() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink(&rx.url);
    let limit = sink.pace().expect("Slack's rate is known");
    assert_eq!(limit.reserve(), Duration::ZERO);
    let next = limit.reserve();
    assert!(next > Duration::from_millis(900) && next <= Duration::from_secs(1));
    // A limit set through the constructor, and Slack's own 429: throttled,
    // not failed.
    let sink = sink_with_room(&rx.url);
    rx.then(429, "rate_limited");
    let a = sink.send(&declared()).await;
    assert!(
        matches!(a, Attempt::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{a:?}"
    );
}

fn sink_with_room(url: &str) -> SlackSink {
    sink(url).with_rate_limit(RateLimit::new(10, Duration::from_secs(1)))
}

/// Every string under a `text` key, wherever it sits in the message.
fn text_fields(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v.as_str() {
                    Some(s) if k == "text" => out.push(s.to_owned()),
                    _ => text_fields(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| text_fields(v, out)),
        _ => {}
    }
}

/// A page heading of `<!channel>` pinged a whole channel through the
/// fallback `text`: every text field escapes what it quotes.
#[tokio::test]
async fn no_text_field_carries_a_raw_mention() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink_with_room(&rx.url);
    let ping = "<!channel> & co";
    for kind in [EventKind::Declared, EventKind::Resolved] {
        let mut e = later(kind, at("2025-03-04T10:27:32.250Z"));
        let i = &mut e.incident;
        i.id = format!("inc_{ping}");
        i.key = format!("scarecrow:{ping}");
        i.title = format!("Heading {ping}");
        i.feature.check = format!("check {ping}");
        i.feature.description = Some(format!("Feature {ping}"));
        i.feature.owner = Some(ping.into());
        i.evidence.message = ping.into();
        i.evidence.reason = ping.into();
        i.note = Some(ping.into());
        i.previous_incident = Some(format!("inc_{ping}"));
        i.evidence.failure_details = vec![
            Failure::new(format!("css {ping}"), format!("message {ping}"))
                .expected(format!("contain {ping}"))
                .actual(format!("found {ping}")),
            // Nothing found: the section shows the message.
            Failure::new(format!("css {ping}"), format!("message {ping}")),
        ];
        sink.send(&e).await;
    }
    let got = rx.got();
    assert_eq!(got.len(), 2);
    // A resolution shows no expectations.
    for (g, n) in got.iter().zip([8, 4]) {
        let body = g.json();
        let mut texts = Vec::new();
        text_fields(&body, &mut texts);
        assert_eq!(
            texts.len(),
            n,
            "text, header, section, (two expectations: a section with two fields, a section), context: {body}"
        );
        for t in texts {
            assert!(t.contains("&lt;!channel&gt; &amp; co"), "{t}");
            assert!(!t.contains("<!channel>"), "{t}");
        }
    }
}

/// The features that joined the incident are listed in the message.
#[tokio::test]
async fn the_features_that_joined_are_listed() {
    let rx = Receiver::start(200, "ok").await;
    let sink = sink(&rx.url);
    sink.send(&super::support::joined()).await;
    let body = rx.got()[0].json();
    let mut texts = Vec::new();
    text_fields(&body, &mut texts);
    let all = texts.join("\n");
    assert!(all.contains("*Affected features:*\n• weather (connect): step \"open the weather page\": connection refused"), "{all}");
    assert!(
        all.contains("• member-login (connect): ") && all.contains(" (recovered)"),
        "{all}"
    );
}
