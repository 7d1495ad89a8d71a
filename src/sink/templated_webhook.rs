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

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::http::{self as sink_http, Endpoint};
use super::keys;
use super::webhook::{self, SigningKey, WebhookSpec};
use crate::config::Env;
use crate::config::reader::inner_span;
use crate::config::reader::{Ctx, Table, Value};
use crate::incident::Event;
use crate::template::Resolve;
use jinja::{BodyTemplate, HeaderTemplate, is_template};
use secrets::{Recorder, Resolved};

mod jinja;
mod secrets;

/// What a `type = "webhook"` table turned out to be.
pub enum Webhook {
    Plain(WebhookSpec),
    Templated(TemplateSpec),
}

/// The keys of `type = "webhook"`, templated or not.
pub(super) const KEYS: &[&str] = &["url", "secrets", "headers", "timeout", "template"];

/// The generic webhook with templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// URL, secrets, timeout; header values may hold `{{ … }}`.
    pub webhook: WebhookSpec,
    /// The body template's source, checked at load; `None` sends the
    /// generic body.
    pub body: Option<String>,
}

/// A webhook, templated when it has a `template` or a header holds `{{`.
pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env) -> Option<Webhook> {
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
    let spec = webhook::read(cx, t, env)?;
    let mut templated = t.get("template").is_some();
    for (name, value) in &spec.headers {
        let text = value.to_string();
        if !is_template(&text) {
            continue;
        }
        templated = true;
        if let Err(e) = HeaderTemplate::check(&text) {
            let span = header_spans
                .iter()
                .find(|(n, _)| n == name)
                .map_or(t.span.clone(), |(_, s)| s.clone());
            cx.error(span, format!("header `{name}`: {}", e.message));
        }
    }
    if !templated {
        return Some(Webhook::Plain(spec));
    }
    if t.get("template").is_some() && body.is_none() {
        return None;
    }
    Some(Webhook::Templated(TemplateSpec {
        webhook: spec,
        body,
    }))
}

/// The body template, compiled and rendered for sample events now, so a
/// syntax error or a body that is not JSON is a load error at its position.
fn body_template(cx: &mut Ctx, v: &Value) -> Option<String> {
    let source = cx.str(v)?;
    match BodyTemplate::check(source) {
        Ok(()) => Some(source.to_owned()),
        Err(e) => {
            let span = e
                .range
                .map_or(v.span(), |r| inner_span(cx, v.span(), r.start, r.len()));
            match e.help {
                Some(help) => keys::error_with_help(cx, span, e.message, help),
                None => cx.error(span, e.message),
            }
            None
        }
    }
}

/// The generic webhook with templates: same URL, signing and delivery rules.
pub struct TemplatedWebhookSink {
    /// With the headers that are not templates.
    endpoint: Endpoint,
    keys: Vec<SigningKey>,
    body: Option<BodyTemplate>,
    templated: Vec<(HeaderName, HeaderTemplate)>,
    secrets: Resolved,
}

impl fmt::Debug for TemplatedWebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplatedWebhookSink")
            .field("templated_body", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

impl TemplatedWebhookSink {
    pub fn new(spec: &TemplateSpec, secrets: &dyn Resolve) -> Result<TemplatedWebhookSink, String> {
        let w = &spec.webhook;
        // Secrets are read now, so a missing one stops the start, and kept
        // for the header templates that are filled in per event.
        let recorded = Recorder::new(secrets);
        let (templated, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = w
            .headers
            .clone()
            .into_iter()
            .partition(|(_, template)| is_template(&template.to_string()));
        let endpoint = Endpoint::new(&w.url, &plain, w.timeout, &recorded)?;
        let keys = SigningKey::read_all(&w.secrets, secrets)?;
        let body = match &spec.body {
            Some(source) => Some(BodyTemplate::compile(source).map_err(|p| p.message)?),
            None => None,
        };
        let mut compiled = Vec::with_capacity(templated.len());
        for (header, template) in &templated {
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("{header:?} is not a valid header name"))?;
            // Rendered now only to read the secrets it names.
            template.render(&recorded).map_err(|e| e.to_string())?;
            let t = HeaderTemplate::compile(&template.to_string())
                .map_err(|p| format!("header `{header}`: {}", p.message))?;
            compiled.push((name, t));
        }
        Ok(TemplatedWebhookSink {
            endpoint,
            keys,
            body,
            templated: compiled,
            secrets: recorded.finish(),
        })
    }

    /// The body and the templated headers for `event`.
    pub fn render(&self, event: &Event) -> Result<(Vec<u8>, HeaderMap), String> {
        let body = match &self.body {
            Some(t) => t.render(event).map_err(|p| p.message)?.into_bytes(),
            None => sink_http::json(webhook::render(event))?,
        };
        let mut headers = webhook::signature_headers(&self.keys, &event.id, &body);
        for (name, t) in &self.templated {
            let value: HeaderValue = t
                .render(event, &self.secrets)
                .map_err(|e| format!("header `{name}`: {e}"))?;
            headers.insert(name.clone(), value);
        }
        Ok((body, headers))
    }
}

impl Deliver for TemplatedWebhookSink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        let (body, headers) = match self.render(event) {
            Ok((body, headers)) => (Ok(body), headers),
            Err(error) => (Err(error), HeaderMap::new()),
        };
        Box::pin(self.endpoint.post(body, headers))
    }
}

#[cfg(test)]
mod tests;
