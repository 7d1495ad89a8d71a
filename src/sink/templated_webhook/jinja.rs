//! The templated webhook's templates: minijinja over the generic webhook's
//! body, compiled and checked against the test events when the config
//! loads, rendered per event when sent.

use std::ops::Range;

use chrono::Utc;
use http::HeaderValue;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::secrets::Resolved;
use crate::incident::{Event, EventKind, Roles};
use crate::sink::test_events::test_events;
use crate::sink::webhook;
use crate::template::Template;

/// A template that does not compile, or does not render a test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: Option<String>,
    /// Bytes of the template source the problem is at, when known.
    pub range: Option<Range<usize>>,
}

impl Problem {
    /// A problem with no hint and no place in the template.
    fn plain(message: String) -> Problem {
        Problem {
            message,
            help: None,
            range: None,
        }
    }

    /// The problem with `help`, unless it has a hint of its own.
    fn or_help(mut self, help: Option<&str>) -> Problem {
        if self.help.is_none() {
            self.help = help.map(str::to_owned);
        }
        self
    }

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

/// What a template is checked against at load, each with the hint for a
/// problem only it shows: the test events, whose failure has an
/// expectation, a value and a previous incident, and the declaration again
/// as a failure that has none of these (a timeout, say), so that
/// `failure_details[0]` without a guard is a load error, not an event
/// dead-lettered when a check first times out.
fn samples() -> [(Event, Option<&'static str>); 3] {
    let [declared, resolved] = test_events("default", Roles::default(), Utc::now());
    let mut bare = declared.clone();
    bare.incident.evidence.failure_details.clear();
    bare.incident.previous_incident = None;
    let help = "an incident may have no failed expectation (a timeout, a refused connection) \
                and no previous incident: loop over `incident.evidence.failure_details` \
                (`{% for f in … %}`), or test it first (`… if incident.evidence.failure_details else none`)";
    [(declared, None), (resolved, None), (bare, Some(help))]
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

    /// Compiles and renders the sample events: what the config loader runs.
    pub fn check(source: &str) -> Result<(), Problem> {
        let t = BodyTemplate::compile(source)?;
        samples()
            .into_iter()
            .try_for_each(|(e, help)| t.render(&e).map(drop).map_err(|p| p.or_help(help)))
    }

    /// The body for `event`, which is valid JSON.
    pub fn render(&self, event: &Event) -> Result<String, Problem> {
        let ctx = context(event).map_err(Problem::plain)?;
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
        for (e, help) in samples() {
            let out = t.render_text(&e).map_err(|p| p.or_help(help))?;
            Template::parse(&out, |_| None)
                .map_err(|e| Problem::plain(format!("template: {}", e.message)))?;
        }
        Ok(())
    }

    /// The value with its placeholders still in it.
    fn render_text(&self, event: &Event) -> Result<String, Problem> {
        let ctx = context(event).map_err(Problem::plain)?;
        self.env
            .get_template("header")
            .and_then(|t| t.render(ctx))
            .map_err(|e| Problem::jinja(&e, Some(event.kind)))
    }

    pub(super) fn render(&self, event: &Event, secrets: &Resolved) -> Result<HeaderValue, String> {
        let text = self.render_text(event).map_err(|p| p.message)?;
        let filled = Template::parse(&text, |_| None).map_err(|e| e.message)?;
        let value = filled.render(secrets).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "a header value may not hold control characters".to_owned())?;
        value.set_sensitive(true);
        Ok(value)
    }
}
