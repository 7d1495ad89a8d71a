//! PagerDuty Events API v2: a declaration triggers an alert whose
//! `dedup_key` is the incident key, updates and reminders trigger again with
//! the same key (PagerDuty dedupes them into the open alert), and the
//! resolution resolves it. The integration allows about 120 events a minute;
//! the outbox paces sends to that ([`Deliver::pace`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::http::{self as sink_http, Endpoint, RateLimit};
use super::keys;
use super::words::{
    Expectation, Limits, affected_lines, expectations, instance_group, location_lines, time,
    truncate,
};
use crate::config::Env;
use crate::config::reader::{Ctx, Table};
use crate::incident::{Event, EventKind, Incident, Roles};
use crate::template::{Resolve, Template};
use crate::text::excerpt;

/// Where PagerDuty events go unless `url` says otherwise.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limit per integration key.
pub const EVENTS_PER_MINUTE: u32 = 120;
const SUMMARY_CHARS: usize = 1024;
const DEDUP_KEY_CHARS: usize = 255;
/// What `custom_details` shows of the failed expectations, and of each
/// message: far inside the 512 KB an event may take, since a query may
/// find a page-sized value and an event PagerDuty refuses is never paged.
const DETAILS: Limits = Limits {
    count: 20,
    chars: 1000,
};

/// The keys of `type = "pagerduty"`.
pub(super) const KEYS: &[&str] = &[
    "url",
    "routing_key",
    "source",
    "severity",
    "status_url",
    "timeout",
];

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

pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env) -> Option<PagerDutySpec> {
    let url = match t.get("url") {
        Some(v) => keys::url(cx, v, env),
        None => Some(Template::literal(PAGERDUTY_URL)),
    };
    let routing_key = keys::credential(
        cx,
        t,
        "routing_key",
        env,
        "a pagerduty sink needs a `routing_key`",
        "the integration key of an Events API v2 integration, as `${secret:NAME}` or `${file:PATH}`",
    );
    let source = t.get("source").and_then(|v| keys::plain_text(cx, v, env));
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
    let status_url = keys::status_url(cx, t, env);
    Some(PagerDutySpec {
        url: url?,
        routing_key: routing_key?,
        source,
        severity: severity.ok()?,
        status_url: status_url.ok()?,
        timeout: keys::timeout(cx, t),
    })
}

/// Sends incidents to one PagerDuty integration.
pub struct PagerDutySink {
    endpoint: Endpoint,
    routing_key: String,
    source: Option<String>,
    severity: Option<PagerDutySeverity>,
    status_url: Option<String>,
    /// The routing key's budget: one sink, one key.
    limit: RateLimit,
}

impl fmt::Debug for PagerDutySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutySink")
            .field("url", &self.endpoint.url.as_str())
            .finish_non_exhaustive()
    }
}

impl PagerDutySink {
    /// Reads the routing key now, so a missing one stops the start.
    pub fn new(spec: &PagerDutySpec, secrets: &dyn Resolve) -> Result<PagerDutySink, String> {
        let routing_key = spec
            .routing_key
            .render(secrets)
            .map_err(|e| e.to_string())?
            .trim()
            .to_owned();
        if routing_key.is_empty() {
            return Err(format!("routing key {} is empty", spec.routing_key));
        }
        Ok(PagerDutySink {
            endpoint: Endpoint::new(&spec.url, &Default::default(), spec.timeout, secrets)?,
            routing_key,
            source: spec.source.clone(),
            severity: spec.severity,
            status_url: spec.status_url.clone(),
            limit: RateLimit::new(EVENTS_PER_MINUTE, Duration::from_secs(60)),
        })
    }

    /// Replaces the budget of [`EVENTS_PER_MINUTE`].
    pub fn with_rate_limit(mut self, limit: RateLimit) -> PagerDutySink {
        self.limit = limit;
        self
    }

    /// The request body for `event`: deterministic, so equal events give
    /// equal bytes.
    pub fn body(&self, event: &Event) -> Result<Vec<u8>, serde_json::Error> {
        let i = &event.incident;
        let dedup_key = truncate(&i.key, DEDUP_KEY_CHARS);
        let (action, payload) = match event.kind {
            EventKind::Resolved => ("resolve", None),
            EventKind::Declared | EventKind::Updated | EventKind::Reminder => {
                ("trigger", Some(self.payload(event)))
            }
        };
        let mut links = Vec::new();
        if payload.is_some() {
            if let Some(runbook) = &i.feature.runbook {
                links.push(Link {
                    href: runbook,
                    text: "Runbook",
                });
            }
            if let Some(status) = &self.status_url {
                links.push(Link {
                    href: status,
                    text: "Status page",
                });
            }
        }
        serde_json::to_vec(&Enqueue {
            routing_key: &self.routing_key,
            event_action: action,
            dedup_key: &dedup_key,
            client: payload.as_ref().map(|_| "scarecrow"),
            client_url: payload.as_ref().and(self.status_url.as_deref()),
            payload,
            links,
        })
    }

    fn payload<'a>(&'a self, event: &'a Event) -> Payload<'a> {
        let i = &event.incident;
        let f = &i.feature;
        let e = &i.evidence;
        Payload {
            summary: truncate(&i.title, SUMMARY_CHARS),
            source: self.source(i),
            severity: self.severity.unwrap_or_else(|| severity(i)).as_str(),
            timestamp: time(i.detected_at),
            component: &f.check,
            group: f.owner.as_deref(),
            class: &e.reason,
            custom_details: {
                let (failure_details, left_out) = expectations(e, DETAILS);
                Details {
                    event: event.kind.as_str(),
                    incident: &i.id,
                    previous_incident: i.previous_incident.as_deref(),
                    affected: affected_lines(i, DETAILS.count, DETAILS.chars).0,
                    locations: location_lines(i, DETAILS.count, DETAILS.chars).0,
                    description: f.description.as_deref(),
                    owner: f.owner.as_deref(),
                    roles: &f.roles,
                    labels: &f.labels,
                    first_failure_at: time(i.first_failure_at),
                    step: e.step.as_deref(),
                    message: excerpt(&e.message, DETAILS.chars),
                    failures: e
                        .failures
                        .iter()
                        .take(DETAILS.count)
                        .map(|m| excerpt(m, DETAILS.chars))
                        .collect(),
                    failure_details,
                    failure_details_left_out: left_out,
                    status: e.status,
                    url: e.url.as_deref(),
                    excerpt: e.excerpt.as_deref(),
                    consecutive_failures: e.consecutive_failures,
                    run_id: &e.run_id,
                }
            },
        }
    }

    /// `source` as configured; else the instance group, unless it is the
    /// unnamed `default` one, then this host.
    fn source(&self, i: &Incident) -> String {
        if let Some(s) = &self.source {
            return s.clone();
        }
        match instance_group(i) {
            Some(g) if g != "default" => g.to_owned(),
            _ => hostname(),
        }
    }
}

impl Deliver for PagerDutySink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        Box::pin(
            self.endpoint
                .post(sink_http::json(self.body(event)), Default::default()),
        )
    }

    fn pace(&self) -> Option<&RateLimit> {
        Some(&self.limit)
    }
}

/// PagerDuty's severity for an incident: `critical` stays critical; the
/// usual words of other scales map to the nearest; anything else is an error.
pub fn severity(i: &Incident) -> PagerDutySeverity {
    match i.severity.to_ascii_lowercase().as_str() {
        "critical" | "sev1" | "sev-1" | "p1" | "fatal" => PagerDutySeverity::Critical,
        "warning" | "warn" | "minor" | "low" => PagerDutySeverity::Warning,
        "info" | "informational" => PagerDutySeverity::Info,
        _ => PagerDutySeverity::Error,
    }
}

/// This machine's name, for `payload.source`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "scarecrow".to_owned())
}

#[derive(Serialize)]
struct Enqueue<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link<'a>>,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: String,
    source: String,
    severity: &'static str,
    timestamp: String,
    component: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    class: &'a str,
    custom_details: Details<'a>,
}

/// What a responder reads in the alert: the evidence, who owns it, who is
/// called in.
#[derive(Serialize)]
struct Details<'a> {
    event: &'static str,
    incident: &'a str,
    /// The check's incident resolved less than an hour before: the same
    /// outage, declared again.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_incident: Option<&'a str>,
    /// Features that joined this incident, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    affected: Vec<String>,
    /// Each location's state, one line each, when the check runs in several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    roles: &'a Roles,
    labels: &'a BTreeMap<String, String>,
    first_failure_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    message: Cow<'a, str>,
    failures: Vec<Cow<'a, str>>,
    /// Each failure as where it looked, what it expected, what it found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failure_details: Vec<Expectation<'a>>,
    /// Failed expectations beyond the ones shown.
    #[serde(skip_serializing_if = "is_zero")]
    failure_details_left_out: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    /// What the failing response showed a member, redacted, at most 300
    /// characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<&'a str>,
    consecutive_failures: u32,
    run_id: &'a str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct Link<'a> {
    href: &'a str,
    text: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_to_the_nearest() {
        let [mut e, _] =
            super::super::test_events::test_events("default", Roles::default(), chrono::Utc::now());
        for (given, want) in [
            ("critical", "critical"),
            ("SEV1", "critical"),
            ("major", "error"),
            ("warning", "warning"),
            ("info", "info"),
        ] {
            e.incident.severity = given.to_owned();
            assert_eq!(severity(&e.incident).as_str(), want, "{given}");
        }
    }

    fn sink() -> PagerDutySink {
        let spec = PagerDutySpec {
            url: Template::literal("http://127.0.0.1:9/v2/enqueue"),
            routing_key: Template::literal("R0UTINGKEY0123456789abcdef012345"),
            source: None,
            severity: None,
            status_url: None,
            timeout: Duration::from_secs(1),
        };
        PagerDutySink::new(&spec, &crate::secret::Secrets::default()).unwrap()
    }

    #[test]
    fn custom_details_list_each_location_as_a_line() {
        use crate::incident::{LocationResult, LocationState};
        let [mut e, _] =
            super::super::test_events::test_events("default", Roles::default(), chrono::Utc::now());
        let at = "2025-03-04T14:49:02Z".parse().unwrap();
        let details = |e: &Event| {
            let v: serde_json::Value = serde_json::from_slice(&sink().body(e).unwrap()).unwrap();
            v["payload"]["custom_details"].clone()
        };
        assert!(details(&e).get("locations").is_none());
        e.incident.evidence.locations = vec![
            LocationResult {
                location: "fra".into(),
                state: LocationState::Failing,
                run_id: "run_1".into(),
                at,
                consecutive_failures: 3,
                reason: Some("assertion".into()),
                step: Some("Wetterseite".into()),
                message: Some(format!("step \"Wetterseite\": {}", "x".repeat(2000))),
            },
            LocationResult {
                location: "ams".into(),
                state: LocationState::Passing,
                run_id: "run_2".into(),
                at,
                consecutive_failures: 0,
                reason: None,
                step: None,
                message: None,
            },
        ];
        let locations = details(&e)["locations"].clone();
        let fra = locations[0].as_str().unwrap();
        assert!(
            fra.starts_with("fra: failing (assertion): step \"Wetterseite\": xxx"),
            "{fra}"
        );
        assert_eq!(fra.chars().count(), DETAILS.chars + 1, "cut, then …");
        assert_eq!(locations[1], "ams: passing");
        assert_eq!(locations.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn custom_details_stay_far_below_the_event_limit() {
        let sink = sink();
        let [mut e, _] =
            super::super::test_events::test_events("default", Roles::default(), chrono::Utc::now());
        // A query that found a whole page, in each of 30 assertions.
        let page = "<p>Bitte später erneut versuchen</p>".repeat(20_000);
        let evidence = &mut e.incident.evidence;
        evidence.failure_details = (0..30)
            .map(|n| {
                crate::check::Failure::new(format!("css \"#item-{n}\""), format!("got {page}"))
                    .expected("contain \"Bestellt\"")
                    .actual(page.clone())
            })
            .collect();
        evidence.failures = evidence
            .failure_details
            .iter()
            .map(|f| f.message.clone())
            .collect();
        evidence.message = evidence.failures[0].clone();
        let body = sink.body(&e).unwrap();
        assert!(body.len() < 200 * 1024, "{} bytes", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let details = &v["payload"]["custom_details"];
        assert_eq!(
            details["failure_details"].as_array().map(Vec::len),
            Some(20)
        );
        assert_eq!(details["failure_details_left_out"], 10);
        assert_eq!(details["failure_details"][19]["query"], "css \"#item-19\"");
        assert_eq!(
            details["failure_details"][0]["expected"],
            "contain \"Bestellt\""
        );
        let actual = details["failure_details"][0]["actual"].as_str().unwrap();
        assert_eq!(actual.chars().count(), 1001);
        assert!(actual.starts_with("<p>Bitte später") && actual.ends_with('…'));
        assert_eq!(details["message"].as_str().unwrap().chars().count(), 1001);
    }
}
