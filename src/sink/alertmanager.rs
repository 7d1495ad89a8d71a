//! Prometheus Alertmanager API v2. Alertmanager forgets an alert once its
//! `endsAt` passes and keeps nothing across its own restarts, so a client
//! has to keep telling it, the way Prometheus does.
//!
//! Each event is posted once through the outbox like any other. Besides,
//! the sink keeps the alerts it has told about in memory (open ones, and
//! resolved ones for a few minutes) and a task it starts when it is built
//! re-posts them every [`Resend::every`], with `endsAt` = now + 4 intervals
//! while open and the resolution time once resolved. The outbox holds one
//! row per event, never one per re-send. The set is seeded from the events
//! the sink sends and, after a restart, from the open incidents
//! [`Deliver::resume`] is given, which are re-posted at once: Alertmanager may
//! have let them end meanwhile.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::http::{self as sink_http, Endpoint};
use super::keys;
use super::words::{
    Limits, affected_lines, expectations, failing_locations, instance_group, location_lines, time,
};
use crate::config::Env;
use crate::config::reader::{Ctx, Table};
use crate::incident::{Event, EventKind, Incident};
use crate::template::{Resolve, Template};

/// The `alertname` label of Alertmanager alerts unless `alertname` says otherwise.
pub const DEFAULT_ALERTNAME: &str = "ScarecrowCheckFailing";

/// What the annotations show of the failed expectations: annotations are
/// read in Alertmanager's UI and in the notifications its receivers
/// template, so a few lines, each short.
const EXPECTATIONS: Limits = Limits {
    count: 10,
    chars: 300,
};

/// The keys of `type = "alertmanager"`.
pub(super) const KEYS: &[&str] = &["url", "headers", "alertname", "status_url", "timeout"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerSpec {
    /// Alertmanager's base URL (`/api/v2/alerts` is added) or the full
    /// alerts URL.
    pub url: Template,
    /// Extra headers, e.g. `authorization` for a proxy in front of it.
    pub headers: BTreeMap<String, Template>,
    pub alertname: String,
    /// Each alert's `generatorURL`; the failing URL when not given.
    pub status_url: Option<String>,
    pub timeout: Duration,
}

pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env) -> Option<AlertmanagerSpec> {
    let url = match t.get("url") {
        Some(v) => keys::url(cx, v, env),
        None => {
            cx.error(
                t.span.clone(),
                "an alertmanager sink needs a `url`, e.g. \"http://alertmanager:9093\"",
            );
            None
        }
    };
    let headers = keys::headers(cx, t, env);
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
    let status_url = keys::status_url(cx, t, env);
    Some(AlertmanagerSpec {
        url: url?,
        headers,
        alertname: alertname?,
        status_url: status_url.ok()?,
        timeout: keys::timeout(cx, t),
    })
}

fn valid_label_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How often alerts are re-posted, and how long they last at Alertmanager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resend {
    pub every: Duration,
    /// `endsAt` of an open alert is this far ahead of each post.
    pub ends_after: Duration,
    /// A resolved alert is re-posted this long after its resolution.
    pub resolved_for: Duration,
}

impl Default for Resend {
    /// Prometheus' own rhythm: every minute, `endsAt` four intervals ahead;
    /// resolutions repeated for five minutes (Alertmanager's
    /// `resolve_timeout`).
    fn default() -> Self {
        Resend::every(Duration::from_secs(60))
    }
}

impl Resend {
    /// Re-posts every `every`, with the other times scaled to it.
    pub fn every(every: Duration) -> Resend {
        Resend {
            every,
            ends_after: every * 4,
            resolved_for: every * 5,
        }
    }
}

/// Sends incidents to Alertmanager as alerts, and keeps them there.
pub struct AlertmanagerSink {
    shared: Arc<Shared>,
    resender: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    sink: String,
    endpoint: Endpoint,
    alertname: String,
    status_url: Option<String>,
    resend: Resend,
    /// By incident key (the alert's identity): the latest state of each
    /// alert being kept alive.
    alerts: Mutex<BTreeMap<String, Incident>>,
    /// Re-post now rather than at the next tick.
    now: tokio::sync::Notify,
}

impl fmt::Debug for AlertmanagerSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerSink")
            .field("sink", &self.shared.sink)
            .field("url", &self.shared.endpoint.url.as_str())
            .finish_non_exhaustive()
    }
}

impl AlertmanagerSink {
    /// Builds the sink and, inside a Tokio runtime, starts its re-sender,
    /// which stops when the sink is dropped.
    pub fn new(
        name: &str,
        spec: &AlertmanagerSpec,
        secrets: &dyn Resolve,
        resend: Resend,
    ) -> Result<AlertmanagerSink, String> {
        let mut endpoint = Endpoint::new(&spec.url, &spec.headers, spec.timeout, secrets)?;
        if !endpoint.url.path().ends_with("/api/v2/alerts") {
            let path = format!(
                "{}/api/v2/alerts",
                endpoint.url.path().trim_end_matches('/')
            );
            endpoint.url.set_path(&path);
        }
        let shared = Arc::new(Shared {
            sink: name.to_owned(),
            endpoint,
            alertname: spec.alertname.clone(),
            status_url: spec.status_url.clone(),
            resend,
            alerts: Mutex::default(),
            now: tokio::sync::Notify::new(),
        });
        let resender = match tokio::runtime::Handle::try_current() {
            Ok(rt) => Some(rt.spawn(resend_loop(shared.clone()))),
            Err(_) => {
                tracing::warn!(sink = name, "no async runtime: alerts are not re-sent");
                None
            }
        };
        Ok(AlertmanagerSink { shared, resender })
    }

    /// The JSON array posted for `incidents` at `now`.
    pub fn body(&self, incidents: &[Incident], now: DateTime<Utc>) -> Result<Vec<u8>, String> {
        self.shared.body(incidents, now)
    }

    /// Keys of the alerts being kept alive.
    pub fn kept(&self) -> Vec<String> {
        self.shared.lock().keys().cloned().collect()
    }

    async fn deliver(&self, event: &Event) -> Attempt {
        let now = Utc::now();
        self.shared.track(event);
        let body = self.shared.body(std::slice::from_ref(&event.incident), now);
        let result = self.shared.post(body).await;
        if matches!(result, Attempt::Rejected { .. } | Attempt::Gone { .. }) {
            // Re-sending what was refused would only be refused again.
            self.shared.lock().remove(&event.incident.key);
        }
        result
    }
}

impl Drop for AlertmanagerSink {
    fn drop(&mut self) {
        if let Some(task) = &self.resender {
            task.abort();
        }
    }
}

impl Deliver for AlertmanagerSink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        Box::pin(self.deliver(event))
    }

    fn resume(&self, open: &[Incident]) {
        let mut alerts = self.shared.lock();
        let mut resumed = false;
        for i in open.iter().filter(|i| i.is_open()) {
            alerts.entry(i.key.clone()).or_insert_with(|| i.clone());
            resumed = true;
        }
        if resumed {
            // The permit is kept if the re-sender has not started yet.
            self.shared.now.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Incident>> {
        self.alerts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the event's alert alive, unless it is an older incident of the
    /// same check resolving after a newer one opened.
    fn track(&self, event: &Event) {
        let i = &event.incident;
        let mut alerts = self.lock();
        let newer_open = alerts.get(&i.key).is_some_and(|kept| {
            kept.id != i.id && kept.is_open() && kept.declared_at > i.declared_at
        });
        if event.kind == EventKind::Resolved && newer_open {
            return;
        }
        alerts.insert(i.key.clone(), i.clone());
    }

    /// The alerts to re-post now; resolved ones past `resolved_for` are dropped.
    fn due(&self, now: DateTime<Utc>) -> Vec<Incident> {
        let keep = TimeDelta::from_std(self.resend.resolved_for).unwrap_or(TimeDelta::MAX);
        let mut alerts = self.lock();
        alerts.retain(|_, i| i.resolved_at.is_none_or(|at| now - at < keep));
        alerts.values().cloned().collect()
    }

    fn body(&self, incidents: &[Incident], now: DateTime<Utc>) -> Result<Vec<u8>, String> {
        let ahead = TimeDelta::from_std(self.resend.ends_after).unwrap_or(TimeDelta::MAX);
        let alerts: Vec<Alert> = incidents
            .iter()
            .map(|i| self.alert(i, now, ahead))
            .collect();
        sink_http::json(serde_json::to_vec(&alerts))
    }

    fn alert<'a>(&'a self, i: &'a Incident, now: DateTime<Utc>, ahead: TimeDelta) -> Alert<'a> {
        let f = &i.feature;
        let mut labels = BTreeMap::from([
            ("alertname", self.alertname.as_str()),
            ("check", f.check.as_str()),
            ("severity", i.severity.as_str()),
        ]);
        if let Some(owner) = &f.owner {
            labels.insert("owner", owner);
        }
        if let Some(group) = instance_group(i) {
            labels.insert("instance_group", group);
        }
        let e = &i.evidence;
        let what = match &e.step {
            Some(step) => format!("step \"{step}\" failed ({}): {}", e.reason, e.message),
            None => format!("{}: {}", e.reason, e.message),
        };
        let mut annotations = BTreeMap::from([
            ("summary", i.title.clone()),
            (
                "description",
                match &f.description {
                    Some(d) => format!("{d}\n{what}"),
                    None => what,
                },
            ),
        ]);
        if let Some(runbook) = &f.runbook {
            annotations.insert("runbook_url", runbook.clone());
        }
        annotations.extend(expectation_annotations(e));
        if let Some(previous) = &i.previous_incident {
            annotations.insert("previous_incident", previous.clone());
        }
        let (affected, left_out) = affected_lines(i, 10, 300);
        if !affected.is_empty() {
            let mut lines = affected.join("\n");
            if left_out > 0 {
                lines.push_str(&format!("\n… and {left_out} more"));
            }
            annotations.insert("affected", lines);
        }
        annotations.extend(location_annotations(i));
        Alert {
            labels,
            annotations,
            starts_at: time(i.declared_at),
            ends_at: time(i.resolved_at.unwrap_or(now + ahead)),
            generator_url: self.status_url.as_deref().or(e.url.as_deref()),
        }
    }

    async fn post(&self, body: Result<Vec<u8>, String>) -> Attempt {
        self.endpoint.post(body, Default::default()).await
    }
}

/// The failed expectations as annotations (values are strings): `query`,
/// `expected` and `actual` of the first, and `failures` with one line for
/// each (`status: expected it to be 200, got 500`). None for a failure that
/// is not about an expectation (a timeout, a refused connection).
fn expectation_annotations(e: &crate::incident::Evidence) -> Vec<(&'static str, String)> {
    let (shown, left_out) = expectations(e, EXPECTATIONS);
    let Some(first) = shown.first() else {
        return Vec::new();
    };
    let mut lines: Vec<String> = shown.iter().map(|x| x.line()).collect();
    if left_out > 0 {
        lines.push(format!("… and {left_out} more"));
    }
    let mut annotations = vec![
        ("query", first.query.to_string()),
        ("failures", lines.join("\n")),
    ];
    if let Some(expected) = &first.expected {
        annotations.push(("expected", expected.to_string()));
    }
    if let Some(actual) = &first.actual {
        annotations.push(("actual", actual.to_string()));
    }
    annotations
}

/// `locations`, one line per location when the check runs in several,
/// and, once resolved while some still fail, `still_failing` naming them:
/// a resolved alert would otherwise read as fine everywhere.
fn location_annotations(i: &Incident) -> Vec<(&'static str, String)> {
    let (shown, left_out) = location_lines(i, 10, 300);
    if shown.is_empty() {
        return Vec::new();
    }
    let mut lines = shown.join("\n");
    if left_out > 0 {
        lines.push_str(&format!("\n… and {left_out} more"));
    }
    let mut annotations = vec![("locations", lines)];
    let still = failing_locations(i);
    if i.resolved_at.is_some() && !still.is_empty() {
        annotations.push(("still_failing", still.join(", ")));
    }
    annotations
}

/// Re-posts the kept alerts every `resend.every`, all in one request, and
/// when told to at once.
async fn resend_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.resend.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.now.notified() => tick.reset(),
        }
        let now = Utc::now();
        let due = shared.due(now);
        if due.is_empty() {
            continue;
        }
        let attempt = shared.post(shared.body(&due, now)).await;
        match attempt {
            Attempt::Delivered { .. } => {
                tracing::debug!(sink = %shared.sink, alerts = due.len(), "alerts re-sent")
            }
            other => {
                tracing::warn!(sink = %shared.sink, alerts = due.len(), "re-sending alerts: {other}")
            }
        }
    }
}

/// One alert as Alertmanager's API v2 takes it.
#[derive(Serialize)]
struct Alert<'a> {
    labels: BTreeMap<&'static str, &'a str>,
    annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Failure;
    use crate::incident::{Evidence, LocationResult, LocationState, Roles};

    fn location(name: &str, state: LocationState) -> LocationResult {
        let failing = state == LocationState::Failing;
        LocationResult {
            location: name.into(),
            state,
            run_id: "run_1".into(),
            at: "2025-03-04T14:49:02Z".parse().unwrap(),
            consecutive_failures: 3,
            reason: failing.then(|| "assertion".into()),
            step: failing.then(|| "Wetterseite".into()),
            message: failing.then(|| format!("step \"Wetterseite\": {}", "ü".repeat(400))),
        }
    }

    #[test]
    fn locations_are_an_annotation_and_a_resolution_names_those_still_failing() {
        let [declared, resolved] =
            crate::sink::test_events("default", Roles::default(), Utc::now());
        let mut open = declared.incident;
        assert!(location_annotations(&open).is_empty());
        open.evidence.locations = (0..11)
            .map(|n| location(&format!("l{n:02}"), LocationState::Passing))
            .collect();
        open.evidence.locations[0] = location("fra", LocationState::Failing);
        open.evidence.locations[1] = location("ber", LocationState::Stale);
        let a: BTreeMap<_, _> = location_annotations(&open).into_iter().collect();
        let lines: Vec<&str> = a["locations"].lines().collect();
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert!(
            lines[0].starts_with("fra: failing (assertion): step \"Wetterseite\": üü"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[0].chars().count(), 301, "cut, then …");
        assert_eq!(lines[1], "ber: stale (last run 2025-03-04 14:49:02 UTC)");
        assert_eq!(lines[2], "l02: passing");
        assert_eq!(lines[10], "… and 1 more");
        assert!(!a.contains_key("still_failing"), "open: every line says it");

        let mut closed = resolved.incident;
        closed.resolution = Some("recovered".into());
        closed.evidence.locations = vec![
            location("ams", LocationState::Passing),
            location("fra", LocationState::Failing),
        ];
        let a: BTreeMap<_, _> = location_annotations(&closed).into_iter().collect();
        assert_eq!(a["still_failing"], "fra");
        closed.evidence.locations[1].state = LocationState::Passing;
        let a: BTreeMap<_, _> = location_annotations(&closed).into_iter().collect();
        assert_eq!(a["locations"], "ams: passing\nfra: passing");
        assert!(!a.contains_key("still_failing"));
    }

    #[test]
    fn expectations_are_annotations_of_a_few_short_lines() {
        assert!(expectation_annotations(&Evidence::default()).is_empty());
        let mut e = Evidence {
            failure_details: (0..12)
                .map(|n| {
                    Failure::new("status", format!("failure {n}"))
                        .expected("be 200")
                        .actual(format!("50{n}"))
                })
                .collect(),
            ..Evidence::default()
        };
        e.failure_details[0].actual = Some("ü".repeat(1000));
        e.failure_details[1] = Failure::new("css \"h1\"", "css \"h1\" matched nothing".into());
        let a: BTreeMap<_, _> = expectation_annotations(&e).into_iter().collect();
        assert_eq!(a["query"], "status");
        assert_eq!(a["expected"], "be 200");
        assert_eq!(a["actual"], format!("{}…", "ü".repeat(300)));
        let lines: Vec<&str> = a["failures"].lines().collect();
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert!(lines[0].starts_with("status: expected it to be 200, got üü"));
        assert_eq!(lines[1], "css \"h1\" matched nothing");
        assert_eq!(lines[9], "status: expected it to be 200, got 509");
        assert_eq!(lines[10], "… and 2 more");
    }
}
