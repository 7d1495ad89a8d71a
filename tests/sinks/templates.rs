use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::support::{PREVIOUS, Receiver, Secrets, declared, template};
use scarecrow::sink::templated_webhook::TemplateSpec;
use scarecrow::sink::webhook::WebhookSpec;
use scarecrow::sink::{Attempt, Route, SinkKind, SinkSpec, build_with};

const BODY: &str = r#"{
  "type": {{ event.type }},
  "id": {{ event.id }},
  "title": {{ "[" ~ incident.check ~ "] " ~ incident.title }},
  "message": {{ incident.evidence.message }},
  "note": {{ incident.note }},
  "labels": {{ incident.labels }},
  "failures": {{ incident.evidence.failures|length }},
  "expectations": [
{%- for f in incident.evidence.failure_details %}
    {"where": {{ f.query }}, "expected": {{ f.expected }}, "actual": {{ f.actual }}}{% if not loop.last %},{% endif %}
{%- endfor %}
  ],
  "previous_incident": {{ incident.previous_incident }}
}"#;

fn spec(url: &str, body: Option<&str>) -> SinkSpec {
    SinkSpec {
        name: "tool".into(),
        kind: SinkKind::Template(TemplateSpec {
            webhook: WebhookSpec {
                url: template(&format!("{url}/alerts")),
                secrets: vec![template("${secret:SIGNING}")],
                headers: BTreeMap::from([
                    (
                        "authorization".to_owned(),
                        template("Bearer ${secret:TOKEN}"),
                    ),
                    (
                        "x-dedup".to_owned(),
                        template("{{ incident.key }}/{{ incident.evidence.message }}"),
                    ),
                ]),
                timeout: Duration::from_secs(5),
            },
            body: body.map(str::to_owned),
        }),
        route: Route::default(),
    }
}

fn secrets() -> Secrets {
    Secrets(
        [
            ("TOKEN", "s3cret"),
            ("SIGNING", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        ]
        .into(),
    )
}

#[tokio::test]
async fn quotes_and_newlines_in_values_still_make_valid_json() {
    let rx = Receiver::start(202, "").await;
    let sink = build_with(&spec(&rx.url, Some(BODY)), &secrets()).unwrap();
    let mut e = declared();
    let nasty = "he said \"stop\"\nthen: {{ x }} \\ ${secret:TOKEN} </script>";
    e.incident.evidence.message = nasty.into();
    assert_eq!(sink.send(&e, 1).await, Attempt::Delivered { status: 202 });
    let got = &rx.got()[0];
    assert_eq!(got.path, "/alerts");
    assert_eq!(
        got.json(),
        json!({
            "type": "incident.declared",
            "id": "msg_0192f5a6b7c8",
            "title": format!("[diesel-order] {}", e.incident.title),
            "message": nasty,
            "note": null,
            "labels": {"site": "shop"},
            "failures": 1,
            "expectations": [{"where": "status", "expected": "be 200", "actual": "500"}],
            "previous_incident": PREVIOUS
        })
    );
    assert_eq!(got.header("authorization"), "Bearer s3cret");
    // A value cannot name a secret, and its line break becomes a space.
    assert_eq!(
        got.header("x-dedup"),
        "scarecrow:eu-west:diesel-order/he said \"stop\" then: {{ x }} \\ ${secret:TOKEN} </script>"
    );
    assert_eq!(got.header("webhook-id"), e.id);
    assert!(got.header("webhook-signature").starts_with("v1,"));
}

#[tokio::test]
async fn without_a_body_template_the_generic_body_is_sent() {
    let rx = Receiver::start(204, "").await;
    let sink = build_with(&spec(&rx.url, None), &secrets()).unwrap();
    sink.send(&declared(), 1).await;
    let got = &rx.got()[0];
    let body = got.json();
    assert_eq!(body["version"], "1");
    assert_eq!(body["data"]["key"], "scarecrow:eu-west:diesel-order");
    assert!(
        got.header("x-dedup")
            .starts_with("scarecrow:eu-west:diesel-order/")
    );
}
