//! `[[sinks]]` in `config.toml`: where incident events are delivered.
//!
//! Parsing is pure: secrets stay placeholders here and are read when the
//! sink is built (`crate::incident::sink::build`), so a secret is never
//! written in the config and never held by it. The keys of the PagerDuty,
//! Alertmanager, Slack and templated-webhook kinds are read in `kinds`.

mod kinds;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use super::diagnostic::did_you_mean;
use super::reader::{Ctx, Env, Table, Value, inner_span, valid_name};
use crate::incident::sink::Route;
use crate::template::Template;

pub use kinds::{
    AlertmanagerSpec, DEFAULT_ALERTNAME, PAGERDUTY_URL, PagerDutySeverity, PagerDutySpec,
    SlackSpec, TemplateSpec,
};

const KINDS: [&str; 5] = ["webhook", "log", "pagerduty", "alertmanager", "slack"];
const KINDS_HELP: &str =
    "a sink's type is \"webhook\", \"pagerduty\", \"alertmanager\", \"slack\" or \"log\"";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers scarecrow sets itself; a sink's `headers` may not replace them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// One configured sink, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// Unique, `[a-z0-9_-]`; names the sink in logs, metrics and the outbox.
    pub name: String,
    pub kind: SinkKind,
    pub route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// The daemon's own log.
    Log,
    /// A generic JSON webhook, signed per Standard Webhooks.
    Webhook(WebhookSpec),
    /// The generic webhook with a body template and/or header templates.
    Template(TemplateSpec),
    /// PagerDuty Events API v2.
    PagerDuty(PagerDutySpec),
    /// Prometheus Alertmanager API v2.
    Alertmanager(AlertmanagerSpec),
    /// A Slack incoming webhook.
    Slack(SlackSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// Validated at load when it has no `${secret:…}`/`${file:…}`; otherwise
    /// when the sink is built.
    pub url: Template,
    /// `whsec_…` signing secrets, as placeholders. Several sign every
    /// message with each, for key rotation; none sends unsigned.
    pub secrets: Vec<Template>,
    /// Extra headers, names in lower case.
    pub headers: BTreeMap<String, Template>,
    pub timeout: Duration,
}

impl SinkSpec {
    /// A sink that writes incidents to the daemon log, for every feature.
    pub fn log(name: &str) -> SinkSpec {
        SinkSpec {
            name: name.to_owned(),
            kind: SinkKind::Log,
            route: Route::default(),
        }
    }
}

/// Reads the `sinks` array of `config.toml` (`[[sinks]]` tables).
pub fn parse_sinks(cx: &mut Ctx, v: &Value, env: Env) -> Vec<SinkSpec> {
    if v.get_ref().as_table().is_some() {
        let d = cx.src.diagnostic(
            super::Severity::Error,
            v.span(),
            "`sinks` is a list of tables".to_owned(),
        );
        cx.push(d.with_help("write `[[sinks]]`, with two brackets, above each sink"));
        return Vec::new();
    }
    let Some(items) = cx.array(v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for item in items {
        let Some(t) = cx.table(item, "[[sinks]]") else {
            continue;
        };
        let (name, spec) = sink(cx, &t, env);
        t.finish(cx);
        // Checked even when the sink has other errors, so all are reported.
        if let Some((name, span)) = name {
            if seen.contains_key(&name) {
                cx.error(span, format!("sink `{name}` is defined twice"));
                continue;
            }
            seen.insert(name, span);
        }
        out.extend(spec);
    }
    out
}

/// One `[[sinks]]` table: its name (and where it is written) when valid,
/// and the sink when all of it is.
fn sink(cx: &mut Ctx, t: &Table, env: Env) -> (Option<(String, Range<usize>)>, Option<SinkSpec>) {
    let name = match t.get("name") {
        Some(v) => cx.str(v).and_then(|s| match valid_name(s) {
            true => Some((s.to_owned(), v.span())),
            false => {
                cx.error(
                    v.span(),
                    format!("sink name {s:?} may only use a-z, 0-9, `_` and `-`"),
                );
                None
            }
        }),
        None => {
            cx.error(t.span.clone(), "a sink needs a `name`");
            None
        }
    };
    let kind = match t.get("type") {
        Some(v) => match cx.str(v) {
            Some(k) if KINDS.contains(&k) => Some(k),
            Some(k) => {
                let mut d = cx.src.diagnostic(
                    super::Severity::Error,
                    v.span(),
                    format!("unknown sink type {k:?}"),
                );
                d = match did_you_mean(k, KINDS) {
                    Some(s) => d.with_help(format!("did you mean \"{s}\"?")),
                    None => d.with_help(KINDS_HELP),
                };
                cx.push(d);
                None
            }
            None => None,
        },
        None => {
            let d = cx.src.diagnostic(
                super::Severity::Error,
                t.span.clone(),
                "a sink needs a `type`".to_owned(),
            );
            cx.push(d.with_help(KINDS_HELP));
            None
        }
    };
    let route = route(cx, t);
    let kind = kinds::read(cx, t, env, kind);
    let spec = match (&name, kind) {
        (Some((name, _)), Some(kind)) => Some(SinkSpec {
            name: name.clone(),
            kind,
            route,
        }),
        _ => None,
    };
    (name, spec)
}

fn route(cx: &mut Ctx, t: &Table) -> Route {
    let mut route = Route {
        critical_only: true,
        ..Route::default()
    };
    if let Some(v) = t.get("critical_only") {
        route.critical_only = cx.bool(v).unwrap_or(true);
    }
    if let Some(v) = t.get("owners") {
        route.owners = cx
            .strings(v)
            .into_iter()
            .map(|(s, _)| s.to_owned())
            .collect();
    }
    if let Some(v) = t.get("labels")
        && let Some(labels) = cx.table(v, "sink labels")
    {
        for (key, span, value) in labels.entries() {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                cx.error(
                    span,
                    format!("label name {key:?} may only use letters, digits and `_`"),
                );
            } else if let Some(s) = cx.str(value) {
                route.labels.insert(key.to_owned(), s.to_owned());
            }
        }
    }
    route
}

/// The webhook keys (`kinds::read` has told other kinds they don't apply).
fn webhook(cx: &mut Ctx, t: &Table, env: Env) -> Option<WebhookSpec> {
    let url = t.get("url");
    let secrets = t.get("secrets");
    let headers = t.get("headers");
    let timeout = t.get("timeout");
    let url = match url {
        Some(v) => webhook_url(cx, v, env),
        None => {
            cx.error(t.span.clone(), "a webhook sink needs a `url`");
            None
        }
    };
    let secrets = secrets.map_or_else(Vec::new, |v| signing_secrets(cx, v, env));
    let headers = headers.map_or_else(BTreeMap::new, |v| extra_headers(cx, v, env));
    let timeout = timeout.map_or(Some(DEFAULT_TIMEOUT), |v| cx.duration(v));
    Some(WebhookSpec {
        url: url?,
        secrets,
        headers,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
    })
}

fn webhook_url(cx: &mut Ctx, v: &Value, env: Env) -> Option<Template> {
    let s = cx.str(v)?;
    let t = sink_template(cx, v, s, env)?;
    let Some(text) = t.as_literal() else {
        // Holds a secret (a token in the path, say): checked when built.
        return Some(t);
    };
    match url::Url::parse(text) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            cx.error(
                v.span(),
                format!("a webhook URL is http or https, found {:?}", u.scheme()),
            );
            None
        }
        Ok(u) if u.password().is_some() => {
            cx.error(
                v.span(),
                "secrets come from the environment or files: write the password as `${secret:NAME}`",
            );
            None
        }
        Ok(_) => Some(t),
        Err(e) => {
            cx.error(
                v.span(),
                format!(
                    "invalid URL {text:?}: {e} (write e.g. \"https://hooks.example.org/scarecrow\")"
                ),
            );
            None
        }
    }
}

fn signing_secrets(cx: &mut Ctx, v: &Value, env: Env) -> Vec<Template> {
    let mut out = Vec::new();
    for (s, span) in cx.strings(v) {
        out.extend(secret_only(cx, s, span, env));
    }
    out
}

/// A string that must hold a `${secret:…}` or `${file:…}` placeholder: a
/// secret written in the config, or copied into it by `${env:…}`, is an error.
fn secret_only(cx: &mut Ctx, s: &str, span: Range<usize>, env: Env) -> Option<Template> {
    // `${env:…}` would put the secret's value into the config itself.
    let used_env = std::cell::Cell::new(false);
    let flag_env = |name: &str| {
        used_env.set(true);
        env(name)
    };
    let parsed = match Template::parse(s, flag_env) {
        Ok(t) => t,
        Err(e) => {
            cx.error(inner_span(cx, span, e.offset, e.len), e.message);
            return None;
        }
    };
    if parsed.as_literal().is_some() {
        let mut d = cx.src.diagnostic(
            super::Severity::Error,
            span,
            "secrets come from the environment or files, never from the config".to_owned(),
        );
        d = d.with_help(match used_env.get() {
            true => "`${env:…}` is resolved into the config; write `${secret:NAME}`, read when the sink starts",
            false => "write `${secret:NAME}` (an environment variable) or `${file:/run/secrets/…}`",
        });
        cx.push(d);
        return None;
    }
    if captures_used(cx, &parsed, span.clone()) {
        return None;
    }
    warn_unset(cx, &parsed, span, env);
    Some(parsed)
}

fn extra_headers(cx: &mut Ctx, v: &Value, env: Env) -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    let Some(t) = cx.table(v, "sink headers") else {
        return out;
    };
    for (key, key_span, value) in t.entries() {
        let Ok(name) = http::HeaderName::from_bytes(key.as_bytes()) else {
            cx.error(key_span, format!("{key:?} is not a valid header name"));
            continue;
        };
        let name = name.as_str().to_owned();
        if RESERVED_HEADERS.contains(&name.as_str()) {
            cx.error(key_span, format!("`{name}` is set by scarecrow itself"));
            continue;
        }
        if out.contains_key(&name) {
            cx.error(
                key_span,
                format!("header `{name}` is given twice (names ignore case)"),
            );
            continue;
        }
        let Some(s) = cx.str(value) else {
            continue;
        };
        let Some(template) = sink_template(cx, value, s, env) else {
            continue;
        };
        if let Some(text) = template.as_literal()
            && http::HeaderValue::from_str(text).is_err()
        {
            cx.error(
                value.span(),
                "a header value may not hold control characters",
            );
            continue;
        }
        warn_unset(cx, &template, value.span(), env);
        out.insert(name, template);
    }
    out
}

/// A string with `env:` resolved now and `secret:`/`file:` kept for build.
fn sink_template(cx: &mut Ctx, v: &Value, s: &str, env: Env) -> Option<Template> {
    match Template::parse(s, env) {
        Ok(t) if captures_used(cx, &t, v.span()) => None,
        Ok(t) => Some(t),
        Err(e) => {
            cx.error(inner_span(cx, v.span(), e.offset, e.len), e.message);
            None
        }
    }
}

fn captures_used(cx: &mut Ctx, t: &Template, span: Range<usize>) -> bool {
    let used = t.captures().next().is_some();
    if used {
        cx.error(span, "`${capture:…}` exists only within a check run");
    }
    used
}

/// A secret that is not set yet is worth a warning at load: the sink will
/// not start until it is.
fn warn_unset(cx: &mut Ctx, t: &Template, span: Range<usize>, env: Env) {
    let unset: Vec<String> = t
        .secrets()
        .filter(|n| env(n).is_none())
        .map(str::to_owned)
        .collect();
    for name in unset {
        cx.warning(
            span.clone(),
            format!("secret `{name}` is not set in the environment; this sink will not start until it is"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostic, Source};

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_HOST" => Some("hooks.example.org".into()),
            "SCARECROW_WEBHOOK_SECRET" => Some("whsec_AAAA".into()),
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
}
