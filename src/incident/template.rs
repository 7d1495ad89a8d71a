//! The templated webhook, for tools without a sink of their own (incident.io,
//! FireHydrant, Grafana IRM, Opsgenie, Teams …): a minijinja body template
//! and header templates over the generic webhook's schema.
//!
//! Every value a body template prints is inserted **as JSON** (auto-escaping
//! `Json`): `"title": {{ incident.title }}` yields a quoted, escaped string,
//! so quotes and newlines in a value cannot break the document. Header
//! values print as text, with control characters turned into spaces.
//! Templates are compiled and rendered for the test events of `scarecrow
//! notify --test` when the config loads, so a syntax error, an unknown
//! variable or a body that is not JSON stops the load.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::sink::{self, Attempt, BuildError, Route, Sink, classify};
use super::webhook::{self, SigningKey};
use super::{Event, EventKind, Evidence, Feature, Incident, Roles};
use crate::config::sinks::TemplateSpec;
use crate::template::{Resolve, Template};
use secrets::{Recorder, Resolved};

/// A template that does not compile, or does not render a test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: Option<String>,
    /// Bytes of the template source the problem is at, when known.
    pub range: Option<Range<usize>>,
}

impl Problem {
    fn jinja(e: &minijinja::Error, event: Option<EventKind>) -> Problem {
        let what = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        Problem {
            message: match event {
                Some(k) => format!("template: {what} (rendering a test {} event)", k.as_str()),
                None => format!("template: {what}"),
            },
            help: None,
            range: e.range(),
        }
    }
}

/// Whether a string uses template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// What templates see: `event` (`type`, `id`, `timestamp`, `version`) and
/// `incident` (the `data` of the generic webhook body, every key present).
pub fn context(event: &Event) -> Result<Value, String> {
    let body = webhook::render(event).map_err(|e| format!("cannot render the event: {e}"))?;
    let mut event: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| format!("cannot render the event: {e}"))?;
    let incident = event.remove("data").unwrap_or_default();
    let mut ctx = serde_json::Map::new();
    ctx.insert("event".to_owned(), serde_json::Value::Object(event));
    ctx.insert("incident".to_owned(), incident);
    Ok(Value::from(minijinja::value::Serde(ctx)))
}

/// A compiled body template.
pub struct BodyTemplate {
    env: Environment<'static>,
}

impl BodyTemplate {
    pub fn compile(source: &str) -> Result<BodyTemplate, Problem> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned("body", source.to_owned())
            .map_err(|e| Problem::jinja(&e, None))?;
        Ok(BodyTemplate { env })
    }

    /// Compiles and renders the test events: what the config loader runs.
    pub fn check(source: &str) -> Result<(), Problem> {
        let t = BodyTemplate::compile(source)?;
        test_events("default", Roles::default(), Utc::now())
            .iter()
            .try_for_each(|e| t.render(e).map(drop))
    }

    /// The body for `event`, which is valid JSON.
    pub fn render(&self, event: &Event) -> Result<String, Problem> {
        let ctx = context(event).map_err(|message| Problem {
            message,
            help: None,
            range: None,
        })?;
        let out = self
            .env
            .get_template("body")
            .and_then(|t| t.render(ctx))
            .map_err(|e| Problem::jinja(&e, Some(event.kind)))?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out) {
            return Err(Problem {
                message: format!(
                    "template: the body is not JSON ({e} of the output, rendering a test {} event)",
                    event.kind.as_str()
                ),
                help: Some("values are inserted as JSON: write `\"title\": {{ incident.title }}`, without quotes around `{{ … }}`".to_owned()),
                range: None,
            });
        }
        Ok(out)
    }
}

/// A compiled header value template. It is rendered before its `${secret:…}`
/// placeholders are filled, with `${` in values escaped, so a value can
/// never name a secret.
pub struct HeaderTemplate {
    env: Environment<'static>,
}

impl HeaderTemplate {
    /// `text` is the header value as written (`Template`'s display form).
    pub fn compile(text: &str) -> Result<HeaderTemplate, Problem> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(|out, _, value| {
            let text = if value.is_none() || value.is_undefined() {
                String::new()
            } else {
                value.to_string()
            };
            let flat: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out.write_str(&flat.replace("${", "$${"))
                .map_err(minijinja::Error::from)
        });
        env.add_template_owned("header", text.to_owned())
            .map_err(|e| Problem::jinja(&e, None))?;
        Ok(HeaderTemplate { env })
    }

    pub fn check(text: &str) -> Result<(), Problem> {
        let t = HeaderTemplate::compile(text)?;
        for e in test_events("default", Roles::default(), Utc::now()) {
            let out = t.render_text(&e)?;
            Template::parse(&out, |_| None).map_err(|e| Problem {
                message: format!("template: {}", e.message),
                help: None,
                range: None,
            })?;
        }
        Ok(())
    }

    /// The value with its placeholders still in it.
    fn render_text(&self, event: &Event) -> Result<String, Problem> {
        let ctx = context(event).map_err(|message| Problem {
            message,
            help: None,
            range: None,
        })?;
        self.env
            .get_template("header")
            .and_then(|t| t.render(ctx))
            .map_err(|e| Problem::jinja(&e, Some(event.kind)))
    }

    fn render(&self, event: &Event, secrets: &Resolved) -> Result<HeaderValue, String> {
        let text = self.render_text(event).map_err(|p| p.message)?;
        let filled = Template::parse(&text, |_| None).map_err(|e| e.message)?;
        let value = filled.render(secrets).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "a header value may not hold control characters".to_owned())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The generic webhook with templates: same URL, signing and delivery rules.
pub struct TemplateSink {
    name: String,
    route: Route,
    url: reqwest::Url,
    keys: Vec<SigningKey>,
    body: Option<BodyTemplate>,
    headers: HeaderMap,
    templated: Vec<(HeaderName, HeaderTemplate)>,
    secrets: Resolved,
    client: reqwest::Client,
}

impl fmt::Debug for TemplateSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSink")
            .field("name", &self.name)
            .field("templated_body", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

impl TemplateSink {
    pub fn new(
        name: &str,
        route: Route,
        spec: &TemplateSpec,
        secrets: &dyn Resolve,
    ) -> Result<TemplateSink, BuildError> {
        let err = |message: String| BuildError {
            sink: name.to_owned(),
            message,
        };
        let w = &spec.webhook;
        let url = sink::http_url(&w.url, secrets).map_err(err)?;
        let mut keys = Vec::with_capacity(w.secrets.len());
        for secret in &w.secrets {
            let value = secret.render(secrets).map_err(|e| err(e.to_string()))?;
            keys.push(SigningKey::parse(&value).map_err(|e| err(format!("{secret}: {e}")))?);
        }
        let body = match &spec.body {
            Some(source) => Some(BodyTemplate::compile(source).map_err(|p| err(p.message))?),
            None => None,
        };
        // Secrets are read now, so a missing one stops the start, and kept
        // for the header templates that are filled in per event.
        let recorded = Recorder::new(secrets);
        let mut headers = HeaderMap::new();
        let mut templated = Vec::new();
        for (header, template) in &w.headers {
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| err(format!("{header:?} is not a valid header name")))?;
            let value = template.render(&recorded).map_err(|e| err(e.to_string()))?;
            let text = template.to_string();
            if is_template(&text) {
                let t = HeaderTemplate::compile(&text)
                    .map_err(|p| err(format!("header `{header}`: {}", p.message)))?;
                templated.push((name, t));
                continue;
            }
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| err(format!("header `{header}` may not hold control characters")))?;
            value.set_sensitive(template.as_literal().is_none());
            headers.insert(name, value);
        }
        Ok(TemplateSink {
            name: name.to_owned(),
            route,
            url,
            keys,
            body,
            headers,
            templated,
            secrets: recorded.finish(),
            client: sink::http_client(w.timeout).map_err(err)?,
        })
    }

    /// The body and the templated headers for `event`.
    pub fn render(&self, event: &Event) -> Result<(Vec<u8>, HeaderMap), String> {
        let body = match &self.body {
            Some(t) => t.render(event).map_err(|p| p.message)?.into_bytes(),
            None => webhook::render(event).map_err(|e| format!("cannot render the event: {e}"))?,
        };
        let mut headers = self.headers.clone();
        for (name, t) in &self.templated {
            let value = t
                .render(event, &self.secrets)
                .map_err(|e| format!("header `{name}`: {e}"))?;
            headers.insert(name.clone(), value);
        }
        Ok((body, headers))
    }

    async fn deliver(&self, event: &Event, attempt: u32) -> Attempt {
        let (body, headers) = match self.render(event) {
            Ok(r) => r,
            Err(error) => return Attempt::Rejected { error },
        };
        let req = webhook::signed_post(
            &self.client,
            &self.url,
            headers,
            &self.keys,
            &event.id,
            body,
        );
        tracing::debug!(sink = %self.name, event = %event.id, attempt, "posting templated webhook");
        classify(req.send().await).await
    }
}

impl Sink for TemplateSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, feature: &Feature, critical: bool) -> bool {
        self.route.matches(feature, critical)
    }

    fn send<'a>(
        &'a self,
        event: &'a Event,
        attempt: u32,
    ) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        Box::pin(self.deliver(event, attempt))
    }
}

/// The check every test notification is about.
pub const TEST_CHECK: &str = "scarecrow-test";

/// A clearly marked test declaration and its resolution, as `scarecrow
/// notify --test` sends them (and templates are checked against).
pub fn test_events(instance_group: &str, roles: Roles, now: DateTime<Utc>) -> [Event; 2] {
    let since = now - TimeDelta::minutes(2);
    let mut incident = Incident {
        id: super::new_id("inc"),
        key: format!("scarecrow:{instance_group}:{TEST_CHECK}"),
        title: "[TEST] scarecrow-test is failing: this is a test notification".to_owned(),
        severity: "critical".to_owned(),
        feature: Feature {
            check: TEST_CHECK.to_owned(),
            description: Some(
                "A test notification from `scarecrow notify --test`: nothing is wrong".to_owned(),
            ),
            owner: Some("scarecrow".to_owned()),
            runbook: Some("https://example.org/runbooks/scarecrow-test".to_owned()),
            labels: [("test".to_owned(), "true".to_owned())].into(),
            roles,
        },
        first_failure_at: since,
        detected_at: since + TimeDelta::minutes(1),
        declared_at: now,
        resolved_at: None,
        resolution: None,
        note: None,
        evidence: Evidence {
            run_id: super::new_id("run"),
            at: since + TimeDelta::minutes(1),
            reason: "test".to_owned(),
            step: Some("test".to_owned()),
            message: "[TEST] a test of this notification sink; nothing is wrong".to_owned(),
            failures: vec!["test: expected nothing, saw nothing".to_owned()],
            failure_details: Vec::new(),
            status: Some(200),
            url: Some("https://example.org/scarecrow-test".to_owned()),
            phases_ms: [("ttfb".to_owned(), 1.0)].into(),
            duration_ms: 1.0,
            consecutive_failures: 2,
            excerpt: None,
        },
        run_ids: vec![],
    };
    let declared = Event {
        id: super::new_id("msg"),
        kind: EventKind::Declared,
        at: now,
        incident: incident.clone(),
    };
    incident.resolved_at = Some(now);
    incident.resolution = Some("manual".to_owned());
    incident.note = Some("[TEST] end of the test".to_owned());
    let resolved = Event {
        id: super::new_id("msg"),
        kind: EventKind::Resolved,
        at: now,
        incident,
    };
    [declared, resolved]
}

/// At most `max` characters of `s`, the last one `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if s.chars().count() > max => format!("{}…", &s[..cut]),
        _ => s.to_owned(),
    }
}

/// The instance group an incident's key names (`scarecrow:{group}:{check}`).
pub fn instance_group(incident: &Incident) -> Option<&str> {
    let rest = incident.key.strip_prefix("scarecrow:")?;
    rest.split_once(':').map(|(group, _)| group)
}

/// RFC 3339 in UTC with milliseconds, as in the generic webhook.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

mod secrets;
#[cfg(test)]
mod tests;
