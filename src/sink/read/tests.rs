//! Reading `[[sinks]]`: what every sink has, and the helpers the tests of
//! each kind read their examples with.

use std::time::Duration;

use super::super::alertmanager::DEFAULT_ALERTNAME;
use super::super::pagerduty::{PAGERDUTY_URL, PagerDutySeverity};
use super::super::{Route, SinkKind, SinkSpec};
use super::read_sinks;
use crate::config::reader::Ctx;
use crate::config::{Diagnostic, Source};

fn env(name: &str) -> Option<String> {
    match name {
        "HOOK_HOST" => Some("hooks.example.org".into()),
        "SCARECROW_WEBHOOK_SECRET" => Some("whsec_AAAA".into()),
        "PD_ROUTING_KEY" | "SLACK_URL" => Some("set".into()),
        "TEAM" => Some("shop".into()),
        _ => None,
    }
}

/// The sinks of `text`, a `config.toml`, and every diagnostic.
pub(in crate::sink) fn parse(text: &str) -> (Vec<SinkSpec>, Vec<Diagnostic>) {
    let src = Source::new("config.toml", text.to_owned());
    let mut cx = Ctx::new(&src);
    let root = toml::de::DeTable::parse(text).unwrap();
    let sinks = match root.get_ref().get("sinks") {
        Some(v) => read_sinks(&mut cx, v, &env),
        None => Vec::new(),
    };
    (sinks, cx.diags)
}

/// The errors of `text` as `line:col: message`.
pub(in crate::sink) fn errors(text: &str) -> Vec<String> {
    let (_, diags) = parse(text);
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect()
}

const FULL: &str = r#"
[[sinks]]
name = "incident-webhook"
type = "webhook"
url = "https://${env:HOOK_HOST}/scarecrow"
secrets = ["${secret:SCARECROW_WEBHOOK_SECRET}", "${file:/run/secrets/old}"]
headers = { "X-Team" = "ops", "authorization" = "Bearer ${secret:SCARECROW_WEBHOOK_SECRET}" }
timeout = "5s"
critical_only = false
owners = ["shop-team"]
labels = { site = "shop" }

[[sinks]]
name = "log"
type = "log"
"#;

#[test]
fn a_full_config_parses() {
    let (sinks, diags) = parse(FULL);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(sinks.len(), 2);
    let hook = &sinks[0];
    assert_eq!(hook.name, "incident-webhook");
    assert!(!hook.route.critical_only);
    assert_eq!(hook.route.owners, ["shop-team"]);
    assert_eq!(
        hook.route.labels.get("site").map(String::as_str),
        Some("shop")
    );
    let SinkKind::Webhook(w) = &hook.kind else {
        panic!("{:?}", hook.kind)
    };
    assert_eq!(
        w.url.as_literal(),
        Some("https://hooks.example.org/scarecrow")
    );
    assert_eq!(w.secrets.len(), 2);
    assert_eq!(w.timeout, Duration::from_secs(5));
    assert_eq!(
        w.headers.keys().collect::<Vec<_>>(),
        ["authorization", "x-team"]
    );
    assert_eq!(
        sinks[1],
        SinkSpec {
            route: Route {
                critical_only: true,
                ..Route::default()
            },
            ..SinkSpec::log("log")
        }
    );
}

#[test]
fn a_literal_secret_is_an_error() {
    let errs = errors(
        "[[sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"https://x.org\"\nsecrets = [\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"]\n",
    );
    assert_eq!(
        errs,
        ["5:12: secrets come from the environment or files, never from the config"]
    );
    let (_, diags) = parse(
        "[[sinks]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"https://x.org\"\nsecrets = \"${env:SCARECROW_WEBHOOK_SECRET}\"\n",
    );
    assert!(
        diags[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("${secret:NAME}")),
        "{diags:?}"
    );
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let (_, diags) = parse("[[sinks]]\nname = \"a\"\ntype = \"log\"\ncritical_onyl = false\n");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].message, "unknown key `critical_onyl` in [[sinks]]");
    assert_eq!(
        diags[0].help.as_deref(),
        Some("did you mean `critical_only`?")
    );
    let (_, diags) = parse("[sinks]\nname = \"a\"\ntype = \"log\"\n");
    assert_eq!(diags[0].message, "`sinks` is a list of tables");
    let (_, diags) = parse("[[sinks]]\nname = \"a\"\ntype = \"webhok\"\n");
    assert_eq!(diags[0].message, "unknown sink type \"webhok\"");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean \"webhook\"?"));
}

#[test]
fn bad_urls_names_and_duplicates_are_errors() {
    let errs = errors(
        r#"
[[sinks]]
name = "Hook 1"
type = "webhook"
url = "not a url"

[[sinks]]
name = "a"
type = "webhook"
url = "ftp://x.org/"

[[sinks]]
name = "a"
type = "webhook"

[[sinks]]
name = "a"
type = "log"
url = "https://x.org"
"#,
    );
    assert_eq!(errs.len(), 7, "{errs:#?}");
    assert!(errs[0].starts_with("3:8: sink name \"Hook 1\" may only use"));
    assert!(errs[1].starts_with("5:7: invalid URL \"not a url\""));
    assert_eq!(
        errs[2],
        "10:7: a webhook URL is http or https, found \"ftp\""
    );
    // Every sink reusing a name is reported, also when it has other errors.
    assert_eq!(errs[3], "12:1: a webhook sink needs a `url`");
    assert_eq!(errs[4], "13:8: sink `a` is defined twice");
    assert_eq!(
        errs[5],
        "19:1: `url` applies only to webhook, pagerduty, alertmanager and slack sinks"
    );
    assert_eq!(errs[6], "17:8: sink `a` is defined twice");
}

#[test]
fn headers_may_not_replace_the_signature_and_must_be_valid() {
    let errs = errors(
        r#"
[[sinks]]
name = "a"
type = "webhook"
url = "https://x.org"
headers = { "webhook-signature" = "v1,x", "bad header" = "x", "x-a" = "${capture:csrf}" }
"#,
    );
    assert_eq!(
        errs,
        [
            "6:13: `webhook-signature` is set by scarecrow itself",
            "6:43: \"bad header\" is not a valid header name",
            "6:71: `${capture:…}` exists only within a check run",
        ]
    );
}

#[test]
fn missing_name_type_and_unset_secrets() {
    let (sinks, diags) = parse(
        "[[sinks]]\nurl = \"https://x.org\"\n\n[[sinks]]\nname = \"b\"\ntype = \"webhook\"\nurl = \"https://x.org\"\nsecrets = [\"${secret:NOT_SET}\"]\n",
    );
    let msgs: Vec<_> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs[..2],
        ["a sink needs a `name`", "a sink needs a `type`"]
    );
    assert!(
        msgs[2].starts_with("secret `NOT_SET` is not set"),
        "{msgs:?}"
    );
    assert!(!diags[2].is_error());
    assert_eq!(sinks.len(), 1);
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
