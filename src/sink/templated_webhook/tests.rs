use chrono::Utc;

use super::jinja::{BodyTemplate, HeaderTemplate};
use super::secrets::Resolved;
use super::*;
use crate::incident::Roles;
use crate::sink::SinkKind;
use crate::sink::read::tests::parse;
use crate::sink::test_events::test_events;

fn declared() -> Event {
    let [d, _] = test_events("shop", Roles::default(), Utc::now());
    d
}

#[test]
fn values_are_inserted_as_json() {
    let mut e = declared();
    e.incident.title = "a \"quoted\"\nline\\ and </script>".to_owned();
    let t =
        BodyTemplate::compile(r#"{"t": {{ incident.title }}, "n": {{ incident.note }}}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t.render(&e).unwrap()).unwrap();
    assert_eq!(v["t"], e.incident.title.as_str());
    assert!(v["n"].is_null());
}

#[test]
fn quoting_a_value_is_caught_with_a_hint() {
    let p = BodyTemplate::check(r#"{"t": "{{ incident.title }}"}"#).unwrap_err();
    assert!(p.message.contains("the body is not JSON"), "{p:?}");
    assert!(p.help.unwrap().contains("without quotes"));
}

#[test]
fn syntax_errors_and_unknown_names_have_a_position() {
    let p = BodyTemplate::check("{\n  \"t\": {{ incident.title }\n}").unwrap_err();
    assert!(p.message.starts_with("template: syntax error"), "{p:?}");
    assert!(p.range.is_some());
    let p = BodyTemplate::check(r#"{"t": {{ incident.titel }}}"#).unwrap_err();
    assert!(p.message.contains("undefined"), "{p:?}");
    assert_eq!(p.range, Some(9..23));
}

#[test]
fn header_values_cannot_name_secrets_or_break_lines() {
    let t = HeaderTemplate::compile("k={{ incident.title }}; ${secret:TOKEN}").unwrap();
    let mut e = declared();
    e.incident.title = "x\r\ny ${secret:OTHER}".to_owned();
    let secrets = Resolved {
        secrets: [("TOKEN".to_owned(), "t0k".to_owned())].into(),
        ..Resolved::default()
    };
    let v = t.render(&e, &secrets).unwrap();
    assert_eq!(v.to_str().unwrap(), "k=x  y ${secret:OTHER}; t0k");
}

#[test]
fn a_template_makes_a_templated_webhook() {
    let (sinks, diags) = parse(
        r#"
[[sinks]]
name = "tool"
type = "webhook"
url = "https://tool.example.org/hook"
headers = { "idempotency-key" = "{{ event.id }}" }
template = '''
{"title": {{ incident.title }}, "open": {{ incident.status == "open" }}}
'''
"#,
    );
    assert!(diags.is_empty(), "{diags:?}");
    let SinkKind::Template(t) = &sinks[0].kind else {
        panic!("{:?}", sinks[0].kind)
    };
    assert!(
        t.body
            .as_deref()
            .is_some_and(|b| b.contains("incident.title"))
    );
    let (sinks, _) =
        parse("[[sinks]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"https://x.org\"\n");
    assert!(matches!(sinks[0].kind, SinkKind::Webhook(_)));
}

#[test]
fn template_errors_point_into_the_template() {
    let text = "[[sinks]]\nname = \"tool\"\ntype = \"webhook\"\nurl = \"https://x.org\"\ntemplate = '''\n{\n  \"a\": {{ incident.titel }}\n}'''\n";
    let (sinks, diags) = parse(text);
    assert!(sinks.is_empty());
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!((d.line, d.col), (7, 11), "{d:?}");
    assert!(d.message.contains("undefined"), "{}", d.message);

    let text = "[[sinks]]\nname = \"tool\"\ntype = \"webhook\"\nurl = \"https://x.org\"\ntemplate = \"{\\\"a\\\": {% if %}}\"\n";
    let (_, diags) = parse(text);
    assert_eq!((diags[0].line, diags[0].col), (5, 12), "{diags:?}");
    assert!(
        diags[0].message.starts_with("template: syntax error"),
        "{diags:?}"
    );

    let text = "[[sinks]]\nname = \"tool\"\ntype = \"webhook\"\nurl = \"https://x.org\"\ntemplate = '{\"a\": \"{{ incident.key }}\"}'\n";
    let (_, diags) = parse(text);
    assert!(
        diags[0].message.contains("the body is not JSON"),
        "{diags:?}"
    );
    assert!(
        diags[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("without quotes"))
    );

    let text = "[[sinks]]\nname = \"tool\"\ntype = \"webhook\"\nurl = \"https://x.org\"\nheaders = { x-key = \"{{ incident.nope }}\" }\n";
    let (_, diags) = parse(text);
    assert_eq!((diags[0].line, diags[0].col), (5, 21), "{diags:?}");
    assert!(
        diags[0].message.starts_with("header `x-key`: template:"),
        "{diags:?}"
    );
}

#[test]
fn expectations_and_the_previous_incident_are_in_the_context() {
    let source = r#"{
  "expectations": [
{%- for f in incident.evidence.failure_details %}
    {"where": {{ f.query }}, "expected": {{ f.expected }}, "actual": {{ f.actual }}}{% if not loop.last %},{% endif %}
{%- endfor %}
  ],
  "previous": {{ incident.previous_incident }}
}"#;
    BodyTemplate::check(source).unwrap();
    let mut e = declared();
    e.incident
        .evidence
        .failure_details
        .push(crate::check::Failure::new(
            "css \"h1\"",
            "css \"h1\" matched nothing".to_owned(),
        ));
    let t = BodyTemplate::compile(source).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t.render(&e).unwrap()).unwrap();
    assert_eq!(
        v["expectations"],
        serde_json::json!([
            {"where": "test", "expected": "be a test notification", "actual": "[TEST] nothing is wrong"},
            {"where": "css \"h1\"", "expected": null, "actual": null}
        ])
    );
    assert_eq!(
        v["previous"],
        e.incident.previous_incident.as_deref().unwrap()
    );
}

#[test]
fn the_first_expectation_without_a_guard_is_a_load_error() {
    // A check that times out has no expectation: found now, not when its
    // event would be dead-lettered.
    let p =
        BodyTemplate::check(r#"{"expected": {{ incident.evidence.failure_details[0].expected }}}"#)
            .unwrap_err();
    assert!(p.message.contains("undefined"), "{p:?}");
    assert!(p.help.unwrap().contains("no failed expectation"));
    BodyTemplate::check(
        r#"{"expected": {{ incident.evidence.failure_details[0].expected if incident.evidence.failure_details else none }}}"#,
    )
    .unwrap();
}
