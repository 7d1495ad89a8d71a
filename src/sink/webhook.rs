//! The generic webhook: a versioned JSON body (see `docs/webhooks.md`),
//! signed per Standard Webhooks so receivers can check who sent it.
//!
//! The body of an event is the same bytes on every attempt; only
//! `webhook-timestamp` and the signatures over it change. `webhook-id` is
//! the event id: the receiver's key for processing each event once.
//! `type = "webhook"` is read by the templated webhook, which calls
//! [`read`] for the keys the two share.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use sha2::Sha256;

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::http::{self as sink_http, Endpoint};
use super::keys;
use super::words::{Expectation, Limits, expectations, time};
use crate::config::Env;
use crate::config::reader::{Ctx, Table};
use crate::incident::{Event, Incident};
use crate::template::{Resolve, Template};

/// The `version` of the body; bumped only for changes that break receivers.
pub const SCHEMA_VERSION: &str = "1";

/// Every failed expectation is sent; each text is cut to this many
/// characters, so a page-sized value found by a query cannot make the body
/// page-sized.
pub const EXPECTATION_CHARS: usize = 1000;

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

/// The webhook keys but `template`.
pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env) -> Option<WebhookSpec> {
    let url = match t.get("url") {
        Some(v) => keys::url(cx, v, env),
        None => {
            cx.error(t.span.clone(), "a webhook sink needs a `url`");
            None
        }
    };
    let mut secrets = Vec::new();
    if let Some(v) = t.get("secrets") {
        for (s, span) in cx.strings(v) {
            secrets.extend(keys::secret_only(cx, s, span, env));
        }
    }
    let headers = keys::headers(cx, t, env);
    let timeout = keys::timeout(cx, t);
    Some(WebhookSpec {
        url: url?,
        secrets,
        headers,
        timeout,
    })
}

/// A `whsec_…` secret, decoded and ready to sign with.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

/// Shows nothing of the key.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Says nothing about where decoding failed: that would show a character.
    #[error("a signing secret is `whsec_` followed by base64, and this one is not base64")]
    NotBase64,
    #[error("the signing secret is empty")]
    Empty,
}

impl SigningKey {
    /// Decodes `whsec_<base64>` (the prefix is optional, as in the
    /// reference libraries).
    pub fn parse(secret: &str) -> Result<SigningKey, SignError> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = BASE64.decode(encoded).map_err(|_| SignError::NotBase64)?;
        if key.is_empty() {
            return Err(SignError::Empty);
        }
        // HMAC takes keys of any length; the error cannot happen.
        Hmac::<Sha256>::new_from_slice(&key)
            .map(SigningKey)
            .map_err(|_| SignError::Empty)
    }

    /// Reads the signing secrets `secrets` refers to.
    pub fn read_all(
        secrets: &[Template],
        resolve: &dyn Resolve,
    ) -> Result<Vec<SigningKey>, String> {
        secrets
            .iter()
            .map(|secret| {
                let value = secret.render(resolve).map_err(|e| e.to_string())?;
                SigningKey::parse(&value).map_err(|e| format!("{secret}: {e}"))
            })
            .collect()
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The Standard Webhooks signature of one message with one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    Ok(SigningKey::parse(secret)?.sign(id, timestamp, body))
}

/// The body of `event`: the same bytes every time it is rendered.
pub fn render(event: &Event) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Body::new(event))
}

/// The Standard Webhooks headers of one attempt to deliver `body`:
/// `webhook-id` (the event's id, the same on every retry),
/// `webhook-timestamp` (this attempt) and one `webhook-signature` entry per
/// key. Shared by every webhook-shaped sink.
pub(super) fn signature_headers(keys: &[SigningKey], event_id: &str, body: &[u8]) -> HeaderMap {
    let timestamp = Utc::now().timestamp();
    let mut headers = HeaderMap::new();
    // Ids, times and signatures are ASCII: every value is a valid header.
    let mut insert = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    insert("webhook-id", event_id.to_owned());
    insert("webhook-timestamp", timestamp.to_string());
    if !keys.is_empty() {
        let signatures: Vec<String> = keys
            .iter()
            .map(|k| k.sign(event_id, timestamp, body))
            .collect();
        insert("webhook-signature", signatures.join(" "));
    }
    headers
}

/// Posts incident events as signed JSON.
pub struct WebhookSink {
    endpoint: Endpoint,
    keys: Vec<SigningKey>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.endpoint.url.as_str())
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Reads the secrets the spec refers to and checks what could not be
    /// checked at load (a URL holding a secret, header values).
    pub fn new(spec: &WebhookSpec, secrets: &dyn Resolve) -> Result<WebhookSink, String> {
        Ok(WebhookSink {
            endpoint: Endpoint::new(&spec.url, &spec.headers, spec.timeout, secrets)?,
            keys: SigningKey::read_all(&spec.secrets, secrets)?,
        })
    }
}

impl Deliver for WebhookSink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        let body = sink_http::json(render(event));
        let headers = body
            .as_ref()
            .map(|b| signature_headers(&self.keys, &event.id, b))
            .unwrap_or_default();
        Box::pin(self.endpoint.post(body, headers))
    }
}

/// The documented body. Its own types, not the incident's, so that a change
/// inside scarecrow cannot change what receivers see by accident. Every key
/// is always present (but for `data.evidence.locations`, left out for a
/// check in one location); unknown values are `null`.
#[derive(Serialize)]
struct Body<'a> {
    version: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    incident: &'a str,
    key: &'a str,
    title: &'a str,
    severity: &'a str,
    status: &'static str,
    check: &'a str,
    description: Option<&'a str>,
    owner: Option<&'a str>,
    runbook: Option<&'a str>,
    labels: &'a BTreeMap<String, String>,
    roles: Roles<'a>,
    first_failure_at: String,
    detected_at: String,
    declared_at: String,
    resolved_at: Option<String>,
    duration_seconds: Option<i64>,
    resolution: Option<&'a str>,
    note: Option<&'a str>,
    /// The check's incident resolved less than an hour before this one
    /// began: the same outage, declared again.
    previous_incident: Option<&'a str>,
    /// Checks that depend on this one and joined its incident.
    affected: Vec<Affected<'a>>,
    evidence: Evidence<'a>,
}

#[derive(Serialize)]
struct Affected<'a> {
    check: &'a str,
    description: Option<&'a str>,
    at: String,
    reason: &'a str,
    step: Option<&'a str>,
    message: &'a str,
    recovered_at: Option<String>,
}

#[derive(Serialize)]
struct Roles<'a> {
    coordinator: Option<&'a str>,
    operations: Option<&'a str>,
    communications: Option<&'a str>,
}

#[derive(Serialize)]
struct Evidence<'a> {
    run_id: &'a str,
    at: String,
    reason: &'a str,
    step: Option<&'a str>,
    message: &'a str,
    failures: &'a [String],
    /// Each failure as where it looked, what it expected, what it found.
    failure_details: Vec<Expectation<'a>>,
    status: Option<u16>,
    url: Option<&'a str>,
    phases_ms: &'a BTreeMap<String, f64>,
    duration_ms: f64,
    consecutive_failures: u32,
    excerpt: Option<&'a str>,
    /// The failing browser step's screenshot, when it kept one: its name,
    /// and its link when `external_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    screenshot: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    screenshot_url: Option<&'a str>,
    /// Each location's last result, when the check runs in several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location<'a>>,
}

#[derive(Serialize)]
struct Location<'a> {
    location: &'a str,
    /// `failing`, `passing` or `stale`.
    state: &'static str,
    run_id: &'a str,
    at: String,
    consecutive_failures: u32,
    reason: Option<&'a str>,
    step: Option<&'a str>,
    message: Option<&'a str>,
}

impl<'a> Body<'a> {
    fn new(event: &'a Event) -> Body<'a> {
        let i: &Incident = &event.incident;
        let f = &i.feature;
        let e = &i.evidence;
        Body {
            version: SCHEMA_VERSION,
            kind: event.kind.as_str(),
            id: &event.id,
            timestamp: time(event.at),
            data: Data {
                incident: &i.id,
                key: &i.key,
                title: &i.title,
                severity: &i.severity,
                status: if i.is_open() { "open" } else { "resolved" },
                check: &f.check,
                description: f.description.as_deref(),
                owner: f.owner.as_deref(),
                runbook: f.runbook.as_deref(),
                labels: &f.labels,
                roles: Roles {
                    coordinator: f.roles.coordinator.as_deref(),
                    operations: f.roles.operations.as_deref(),
                    communications: f.roles.communications.as_deref(),
                },
                first_failure_at: time(i.first_failure_at),
                detected_at: time(i.detected_at),
                declared_at: time(i.declared_at),
                resolved_at: i.resolved_at.map(time),
                duration_seconds: i.duration().map(|d| d.num_seconds()),
                resolution: i.resolution.as_deref(),
                note: i.note.as_deref(),
                previous_incident: i.previous_incident.as_deref(),
                affected: i
                    .affected
                    .iter()
                    .map(|a| Affected {
                        check: &a.check,
                        description: a.description.as_deref(),
                        at: time(a.at),
                        reason: &a.reason,
                        step: a.step.as_deref(),
                        message: &a.message,
                        recovered_at: a.recovered_at.map(time),
                    })
                    .collect(),
                evidence: Evidence {
                    run_id: &e.run_id,
                    at: time(e.at),
                    reason: &e.reason,
                    step: e.step.as_deref(),
                    message: &e.message,
                    failures: &e.failures,
                    failure_details: expectations(
                        e,
                        Limits {
                            count: usize::MAX,
                            chars: EXPECTATION_CHARS,
                        },
                    )
                    .0,
                    status: e.status,
                    url: e.url.as_deref(),
                    phases_ms: &e.phases_ms,
                    duration_ms: e.duration_ms,
                    consecutive_failures: e.consecutive_failures,
                    excerpt: e.excerpt.as_deref(),
                    screenshot: e.screenshot.as_deref(),
                    screenshot_url: e.screenshot_url.as_deref(),
                    locations: e
                        .locations
                        .iter()
                        .map(|l| Location {
                            location: &l.location,
                            state: l.state.as_str(),
                            run_id: &l.run_id,
                            at: time(l.at),
                            consecutive_failures: l.consecutive_failures,
                            reason: l.reason.as_deref(),
                            step: l.step.as_deref(),
                            message: l.message.as_deref(),
                        })
                        .collect(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Feature;
    use chrono::DateTime;

    #[test]
    fn the_spec_test_vector_signs() {
        let sig = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Ok("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=")
        );
    }

    #[test]
    fn bad_secrets_are_errors_not_panics() {
        assert!(matches!(
            SigningKey::parse("whsec_not base64!"),
            Err(SignError::NotBase64)
        ));
        assert_eq!(SigningKey::parse("whsec_").err(), Some(SignError::Empty));
        assert_eq!(
            format!("{:?}", SigningKey::parse("whsec_AAAA")),
            "Ok(SigningKey(…))"
        );
    }

    fn event(kind: crate::incident::EventKind, resolved: bool) -> Event {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut incident = Incident {
            id: "inc_1".into(),
            key: "scarecrow:default:diesel-order".into(),
            title: "diesel-order is failing: no price".into(),
            severity: "critical".into(),
            feature: Feature {
                check: "diesel-order".into(),
                ..Feature::default()
            },
            first_failure_at: at("2025-01-02T03:04:00Z"),
            detected_at: at("2025-01-02T03:04:59Z"),
            declared_at: at("2025-01-02T03:05:00.5Z"),
            resolved_at: None,
            resolution: None,
            note: None,
            evidence: crate::incident::Evidence {
                at: at("2025-01-02T03:04:59Z"),
                ..Default::default()
            },
            run_ids: vec![],
            previous_incident: None,
            affected: Vec::new(),
        };
        if resolved {
            incident.resolved_at = Some(at("2025-01-02T03:17:30.5Z"));
            incident.resolution = Some("recovered".into());
        }
        Event {
            id: "msg_1".into(),
            kind,
            at: at("2025-01-02T03:05:00.5Z"),
            incident,
        }
    }

    #[test]
    fn bodies_are_deterministic_and_complete() {
        let e = event(crate::incident::EventKind::Declared, false);
        let body = render(&e).unwrap();
        assert_eq!(body, render(&e.clone()).unwrap());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["version"], "1");
        assert_eq!(v["type"], "incident.declared");
        assert_eq!(v["timestamp"], "2025-01-02T03:05:00.500Z");
        assert_eq!(v["data"]["status"], "open");
        assert_eq!(v["data"]["detected_at"], "2025-01-02T03:04:59.000Z");
        assert!(v["data"]["owner"].is_null() && v["data"]["roles"]["coordinator"].is_null());
        assert!(v["data"]["duration_seconds"].is_null());
        assert!(v["data"]["previous_incident"].is_null());
        assert_eq!(
            v["data"]["evidence"]["failure_details"],
            serde_json::json!([])
        );

        let r = event(crate::incident::EventKind::Resolved, true);
        let v: serde_json::Value = serde_json::from_slice(&render(&r).unwrap()).unwrap();
        assert_eq!(v["type"], "incident.resolved");
        assert_eq!(v["data"]["status"], "resolved");
        assert_eq!(v["data"]["duration_seconds"], 750);
        assert_eq!(v["data"]["resolution"], "recovered");
    }

    #[test]
    fn expectations_have_every_key_and_long_values_are_cut() {
        let mut e = event(crate::incident::EventKind::Declared, false);
        e.incident.previous_incident = Some("inc_0".into());
        e.incident.evidence.failure_details = vec![
            crate::check::Failure::new("jsonpath \"$.items\"", "expected a list".into())
                .expected("have 3 items")
                .actual("[1,".repeat(1000)),
            crate::check::Failure::new("css \"h1\"", "css \"h1\" matched nothing".into()),
        ];
        let v: serde_json::Value = serde_json::from_slice(&render(&e).unwrap()).unwrap();
        assert_eq!(v["data"]["previous_incident"], "inc_0");
        let details = &v["data"]["evidence"]["failure_details"];
        assert_eq!(details[0]["expected"], "have 3 items");
        let actual = details[0]["actual"].as_str().unwrap();
        assert_eq!(actual.chars().count(), EXPECTATION_CHARS + 1);
        assert!(actual.ends_with("[1,[…"), "{actual}");
        assert_eq!(
            details[1],
            serde_json::json!({
                "message": "css \"h1\" matched nothing",
                "query": "css \"h1\"",
                "expected": null,
                "actual": null
            })
        );
    }
}
