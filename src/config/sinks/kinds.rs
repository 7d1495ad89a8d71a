//! The keys of each sink kind beyond the generic webhook: PagerDuty,
//! Alertmanager, Slack, and the webhook's body and header templates.

use std::ops::Range;
use std::time::Duration;

use super::super::Severity;
use super::super::reader::{Ctx, Env, Table, Value};
use super::super::values::template_text;
use super::{DEFAULT_TIMEOUT, SinkKind, WebhookSpec};
use crate::incident::template as jinja;
use crate::template::Template;

/// Where PagerDuty events go unless `url` says otherwise.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The `alertname` label of Alertmanager alerts unless `alertname` says otherwise.
pub const DEFAULT_ALERTNAME: &str = "ScarecrowCheckFailing";

/// The keys each kind takes besides `name`, `type` and the routing keys.
const KEYS: [(&str, &[&str]); 5] = [
    (
        "webhook",
        &["url", "secrets", "headers", "timeout", "template"],
    ),
    (
        "pagerduty",
        &[
            "url",
            "routing_key",
            "source",
            "severity",
            "status_url",
            "timeout",
        ],
    ),
    (
        "alertmanager",
        &["url", "headers", "alertname", "status_url", "timeout"],
    ),
    ("slack", &["url", "status_url", "timeout"]),
    ("log", &[]),
];
const ALL_KEYS: [&str; 10] = [
    "url",
    "secrets",
    "headers",
    "timeout",
    "template",
    "routing_key",
    "source",
    "severity",
    "status_url",
    "alertname",
];

/// The generic webhook with templates (see `crate::incident::template`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// URL, secrets, timeout; header values may hold `{{ … }}`.
    pub webhook: WebhookSpec,
    /// The body template's source, checked at load; `None` sends the
    /// generic body.
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutySpec {
    /// The Events API v2 endpoint, [`PAGERDUTY_URL`] by default.
    pub url: Template,
    /// The integration key, always a `${secret:…}` or `${file:…}`.
    pub routing_key: Template,
    /// `payload.source`; by default the instance group, or the host name
    /// for the `default` group.
    pub source: Option<String>,
    /// Overrides the severity mapped from the incident.
    pub severity: Option<PagerDutySeverity>,
    /// Linked from every alert, e.g. the status page.
    pub status_url: Option<String>,
    pub timeout: Duration,
}

/// `payload.severity` of a PagerDuty event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagerDutySeverity {
    Critical,
    Error,
    Warning,
    Info,
}

impl PagerDutySeverity {
    pub const NAMES: [&'static str; 4] = ["critical", "error", "warning", "info"];

    pub fn parse(s: &str) -> Option<PagerDutySeverity> {
        Some(match s {
            "critical" => PagerDutySeverity::Critical,
            "error" => PagerDutySeverity::Error,
            "warning" => PagerDutySeverity::Warning,
            "info" => PagerDutySeverity::Info,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PagerDutySeverity::Critical => "critical",
            PagerDutySeverity::Error => "error",
            PagerDutySeverity::Warning => "warning",
            PagerDutySeverity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerSpec {
    /// Alertmanager's base URL (`/api/v2/alerts` is added) or the full
    /// alerts URL.
    pub url: Template,
    /// Extra headers, e.g. `authorization` for a proxy in front of it.
    pub headers: std::collections::BTreeMap<String, Template>,
    pub alertname: String,
    /// Each alert's `generatorURL`; the failing URL when not given.
    pub status_url: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSpec {
    /// The incoming-webhook URL: it is the credential, so a placeholder.
    pub url: Template,
    /// Linked from every message, e.g. the status page.
    pub status_url: Option<String>,
    pub timeout: Duration,
}

/// The kind-specific part of one `[[sinks]]` table. Keys of other kinds are
/// reported as not applying; with no valid `type`, they are only marked read.
pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env, kind: Option<&str>) -> Option<SinkKind> {
    let own: &[&str] = KEYS
        .iter()
        .find(|(k, _)| Some(*k) == kind)
        .map_or(&[], |(_, keys)| keys);
    for key in ALL_KEYS.iter().filter(|k| !own.contains(k)) {
        if t.get(key).is_none() || kind.is_none() {
            continue;
        }
        let kinds: Vec<&str> = KEYS
            .iter()
            .filter(|(_, keys)| keys.contains(key))
            .map(|(k, _)| *k)
            .collect();
        if let Some(span) = t.key_span(key) {
            cx.error(
                span,
                format!("`{key}` applies only to {} sinks", and_list(&kinds)),
            );
        }
    }
    match kind? {
        "log" => Some(SinkKind::Log),
        "webhook" => webhook(cx, t, env),
        "pagerduty" => pagerduty(cx, t, env).map(SinkKind::PagerDuty),
        "alertmanager" => alertmanager(cx, t, env).map(SinkKind::Alertmanager),
        "slack" => slack(cx, t, env).map(SinkKind::Slack),
        _ => None,
    }
}

/// A webhook, templated when it has a `template` or a header holds `{{`.
fn webhook(cx: &mut Ctx, t: &Table, env: Env) -> Option<SinkKind> {
    let body = t.get("template").and_then(|v| body_template(cx, v));
    let header_spans: Vec<(String, Range<usize>)> = t
        .get("headers")
        .and_then(|v| v.get_ref().as_table())
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.get_ref().to_ascii_lowercase(), v.span()))
                .collect()
        })
        .unwrap_or_default();
    let spec = super::webhook(cx, t, env)?;
    let mut templated = t.get("template").is_some();
    for (name, value) in &spec.headers {
        let text = value.to_string();
        if !jinja::is_template(&text) {
            continue;
        }
        templated = true;
        if let Err(e) = jinja::HeaderTemplate::check(&text) {
            let span = header_spans
                .iter()
                .find(|(n, _)| n == name)
                .map_or(t.span.clone(), |(_, s)| s.clone());
            cx.error(span, format!("header `{name}`: {}", e.message));
        }
    }
    if !templated {
        return Some(SinkKind::Webhook(spec));
    }
    if t.get("template").is_some() && body.is_none() {
        return None;
    }
    Some(SinkKind::Template(TemplateSpec {
        webhook: spec,
        body,
    }))
}

/// The body template, compiled and rendered for sample events now, so a
/// syntax error or a body that is not JSON is a load error at its position.
fn body_template(cx: &mut Ctx, v: &Value) -> Option<String> {
    let source = cx.str(v)?;
    match jinja::BodyTemplate::check(source) {
        Ok(()) => Some(source.to_owned()),
        Err(e) => {
            let span = e.range.map_or(v.span(), |r| inner_range(cx, v.span(), r));
            let d = cx.src.diagnostic(Severity::Error, span, e.message);
            cx.push(match e.help {
                Some(h) => d.with_help(h),
                None => d,
            });
            None
        }
    }
}

/// Where byte range `r` of a TOML string's value is in the file: exact for
/// literal strings and for basic strings without escapes, else the whole value.
fn inner_range(cx: &Ctx, span: Range<usize>, r: Range<usize>) -> Range<usize> {
    let raw = cx.src.text.get(span.clone()).unwrap_or("");
    let triple = raw.starts_with("'''") || raw.starts_with("\"\"\"");
    let mut skip = if triple { 3 } else { 1 };
    if triple {
        // TOML drops a newline right after the opening quotes.
        let rest = &raw[3..];
        skip += if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        };
    }
    if raw.starts_with('"') && raw.contains('\\') {
        return span;
    }
    let start = (span.start + skip + r.start).min(span.end);
    start..(span.start + skip + r.end).clamp(start, span.end)
}

fn pagerduty(cx: &mut Ctx, t: &Table, env: Env) -> Option<PagerDutySpec> {
    let url = match t.get("url") {
        Some(v) => super::webhook_url(cx, v, env),
        None => Some(Template::literal(PAGERDUTY_URL)),
    };
    let routing_key = match t.get("routing_key") {
        Some(v) => cx
            .str(v)
            .and_then(|s| super::secret_only(cx, s, v.span(), env)),
        None => {
            let d = cx.src.diagnostic(
                Severity::Error,
                t.span.clone(),
                "a pagerduty sink needs a `routing_key`".to_owned(),
            );
            cx.push(d.with_help(
                "the integration key of an Events API v2 integration, as `${secret:NAME}` or `${file:PATH}`",
            ));
            None
        }
    };
    let source = t.get("source").and_then(|v| plain_text(cx, v, env));
    let severity = match t.get("severity") {
        Some(v) => match cx.str(v).map(|s| (s, PagerDutySeverity::parse(s))) {
            Some((_, Some(parsed))) => Ok(Some(parsed)),
            Some((s, None)) => {
                cx.error(
                    v.span(),
                    format!(
                        "severity is one of {}, found {s:?}",
                        PagerDutySeverity::NAMES.join(", ")
                    ),
                );
                Err(())
            }
            None => Err(()),
        },
        None => Ok(None),
    };
    let status_url = status_url(cx, t, env);
    Some(PagerDutySpec {
        url: url?,
        routing_key: routing_key?,
        source,
        severity: severity.ok()?,
        status_url: status_url.ok()?,
        timeout: timeout(cx, t),
    })
}

fn alertmanager(cx: &mut Ctx, t: &Table, env: Env) -> Option<AlertmanagerSpec> {
    let url = match t.get("url") {
        Some(v) => super::webhook_url(cx, v, env),
        None => {
            cx.error(
                t.span.clone(),
                "an alertmanager sink needs a `url`, e.g. \"http://alertmanager:9093\"",
            );
            None
        }
    };
    let headers = t
        .get("headers")
        .map_or_else(Default::default, |v| super::extra_headers(cx, v, env));
    let alertname = match t.get("alertname") {
        Some(v) => match cx.str(v) {
            Some(s) if valid_label_value(s) => Some(s.to_owned()),
            Some(s) => {
                cx.error(
                    v.span(),
                    format!("alertname {s:?} may only use letters, digits and `_`"),
                );
                None
            }
            None => None,
        },
        None => Some(DEFAULT_ALERTNAME.to_owned()),
    };
    let status_url = status_url(cx, t, env);
    Some(AlertmanagerSpec {
        url: url?,
        headers,
        alertname: alertname?,
        status_url: status_url.ok()?,
        timeout: timeout(cx, t),
    })
}

fn slack(cx: &mut Ctx, t: &Table, env: Env) -> Option<SlackSpec> {
    let url = match t.get("url") {
        Some(v) => cx
            .str(v)
            .and_then(|s| super::secret_only(cx, s, v.span(), env)),
        None => {
            let d = cx.src.diagnostic(
                Severity::Error,
                t.span.clone(),
                "a slack sink needs a `url`".to_owned(),
            );
            cx.push(d.with_help(
                "the incoming webhook's URL is its credential: write `${secret:SLACK_WEBHOOK_URL}` or `${file:PATH}`",
            ));
            None
        }
    };
    let status_url = status_url(cx, t, env);
    Some(SlackSpec {
        url: url?,
        status_url: status_url.ok()?,
        timeout: timeout(cx, t),
    })
}

/// `status_url`: absent is `Ok(None)`, invalid is `Err` (and reported).
fn status_url(cx: &mut Ctx, t: &Table, env: Env) -> Result<Option<String>, ()> {
    let Some(v) = t.get("status_url") else {
        return Ok(None);
    };
    let text = plain_text(cx, v, env).ok_or(())?;
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(text)),
        _ => {
            cx.error(
                v.span(),
                format!("status_url {text:?} is not an http(s) URL"),
            );
            Err(())
        }
    }
}

/// A string that may use `${env:…}` only.
fn plain_text(cx: &mut Ctx, v: &Value, env: Env) -> Option<String> {
    let s = cx.str(v)?;
    match template_text(s, env) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.error(v.span(), e);
            None
        }
    }
}

fn timeout(cx: &mut Ctx, t: &Table) -> Duration {
    t.get("timeout")
        .and_then(|v| cx.duration(v))
        .unwrap_or(DEFAULT_TIMEOUT)
}

fn valid_label_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
