use super::super::{SinkKind, SinkSpec, parse_sinks};
use super::*;
use crate::config::{Diagnostic, Source};

fn env(name: &str) -> Option<String> {
    match name {
        "PD_ROUTING_KEY" | "SLACK_URL" => Some("set".into()),
        "TEAM" => Some("shop".into()),
        _ => None,
    }
}

fn parse(text: &str) -> (Vec<SinkSpec>, Vec<Diagnostic>) {
    let src = Source::new("config.toml", text.to_owned());
    let mut cx = Ctx::new(&src);
    let root = toml::de::DeTable::parse(text).unwrap();
    let sinks = match root.get_ref().get("sinks") {
        Some(v) => parse_sinks(&mut cx, v, &env),
        None => Vec::new(),
    };
    (sinks, cx.diags)
}

fn errors(text: &str) -> Vec<String> {
    let (_, diags) = parse(text);
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect()
}

#[test]
fn every_kind_parses_with_its_defaults() {
    let (sinks, diags) = parse(
        r#"
[[sinks]]
name = "pd"
type = "pagerduty"
routing_key = "${secret:PD_ROUTING_KEY}"

[[sinks]]
name = "pd-full"
type = "pagerduty"
url = "http://127.0.0.1:9/v2/enqueue"
routing_key = "${file:/run/secrets/pd}"
source = "${env:TEAM}-prod"
severity = "warning"
status_url = "https://status.example.org"
timeout = "3s"

[[sinks]]
name = "am"
type = "alertmanager"
url = "http://alertmanager:9093"
headers = { authorization = "Bearer ${secret:AM_TOKEN}" }

[[sinks]]
name = "chat"
type = "slack"
url = "${secret:SLACK_URL}"
critical_only = false
"#,
    );
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let SinkKind::PagerDuty(pd) = &sinks[0].kind else {
        panic!("{:?}", sinks[0].kind)
    };
    assert_eq!(pd.url.as_literal(), Some(PAGERDUTY_URL));
    assert_eq!(pd.routing_key.to_string(), "${secret:PD_ROUTING_KEY}");
    assert_eq!((pd.source.as_deref(), pd.severity), (None, None));
    let SinkKind::PagerDuty(full) = &sinks[1].kind else {
        panic!()
    };
    assert_eq!(full.source.as_deref(), Some("shop-prod"));
    assert_eq!(full.severity, Some(PagerDutySeverity::Warning));
    assert_eq!(
        full.status_url.as_deref(),
        Some("https://status.example.org")
    );
    assert_eq!(full.timeout, Duration::from_secs(3));
    let SinkKind::Alertmanager(am) = &sinks[2].kind else {
        panic!()
    };
    assert_eq!(am.alertname, DEFAULT_ALERTNAME);
    assert_eq!(am.headers.len(), 1);
    let SinkKind::Slack(slack) = &sinks[3].kind else {
        panic!()
    };
    assert_eq!(slack.url.to_string(), "${secret:SLACK_URL}");
    assert!(!sinks[3].route.critical_only);
}

#[test]
fn credentials_are_placeholders_only() {
    let errs = errors(
        r#"
[[sinks]]
name = "pd"
type = "pagerduty"
routing_key = "R0UT1NGKEY"

[[sinks]]
name = "chat"
type = "slack"
url = "https://hooks.slack.com/services/T0/B0/xyz"

[[sinks]]
name = "pd2"
type = "pagerduty"
"#,
    );
    assert_eq!(
        errs,
        [
            "5:15: secrets come from the environment or files, never from the config",
            "10:7: secrets come from the environment or files, never from the config",
            "12:1: a pagerduty sink needs a `routing_key`",
        ]
    );
}

#[test]
fn keys_of_other_kinds_and_bad_values_are_reported() {
    let errs = errors(
        r#"
[[sinks]]
name = "am"
type = "alertmanager"
url = "http://am:9093"
routing_key = "${secret:X}"
alertname = "scarecrow failing"

[[sinks]]
name = "pd"
type = "pagerduty"
routing_key = "${secret:PD_ROUTING_KEY}"
severity = "high"
status_url = "ftp://x"
template = "{}"
"#,
    );
    assert_eq!(
        errs,
        [
            "6:1: `routing_key` applies only to pagerduty sinks",
            "7:13: alertname \"scarecrow failing\" may only use letters, digits and `_`",
            "15:1: `template` applies only to webhook sinks",
            "13:12: severity is one of critical, error, warning, info, found \"high\"",
            "14:14: status_url \"ftp://x\" is not an http(s) URL",
        ]
    );
    let (_, diags) = parse("[[sinks]]\nname = \"a\"\ntype = \"slak\"\nurl = \"x\"\n");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean \"slack\"?"));
    let (_, diags) = parse("[[sinks]]\nname = \"a\"\ntype = \"pagerduty\"\nroutng_key = \"x\"\n");
    assert_eq!(diags[1].message, "unknown key `routng_key` in [[sinks]]");
    assert_eq!(
        diags[1].help.as_deref(),
        Some("did you mean `routing_key`?")
    );
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
