//! Sinks: where incident events go. Each kind is one file here holding its
//! spec, how its `[[sinks]]` table is read (with spans, for diagnostics)
//! and its sender. [`Sink`] wraps every kind with its name and routing, so
//! a kind's [`Deliver`] holds only what differs; every HTTP kind sends
//! through [`http`]. The incident engine and outbox know [`Sink`] only.
//!
//! A new kind is a file here, a variant of [`SinkKind`], its entry in
//! [`KINDS`] and its arm in [`SinkKind::sender`].

pub mod alertmanager;
mod attempt;
mod deliver;
pub mod http;
mod keys;
pub mod log;
pub mod pagerduty;
pub mod read;
pub mod slack;
pub mod templated_webhook;
mod test_events;
pub mod webhook;
mod words;

use std::collections::BTreeMap;
use std::fmt;

use self::http::RateLimit;
use crate::config::Env;
use crate::config::reader::{Ctx, Table};
use crate::incident::{Event, Feature, Incident};
use crate::template::Resolve;

pub use attempt::Attempt;
pub use deliver::Deliver;
pub use test_events::test_events;

/// One configured sink: its name, its routing, and its kind's sender.
pub struct Sink {
    name: String,
    route: Route,
    deliver: Box<dyn Deliver>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Sink {
    pub fn new(name: &str, route: Route, deliver: Box<dyn Deliver>) -> Sink {
        Sink {
            name: name.to_owned(),
            route,
            deliver,
        }
    }

    /// Unique among the sinks; names it in logs, metrics and the outbox.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this sink wants events about this feature (routing by
    /// criticality, owner, labels).
    pub fn accepts(&self, feature: &Feature, critical: bool) -> bool {
        self.route.matches(feature, critical)
    }

    /// One delivery attempt (`attempt` counts from 1).
    pub async fn send(&self, event: &Event, attempt: u32) -> Attempt {
        tracing::debug!(sink = %self.name, event = %event.id, attempt, "delivering");
        self.deliver.send(event).await
    }

    /// Tells the kind which of the `open` incidents this sink accepts.
    pub fn resume(&self, open: &[Incident]) {
        // Only critical checks declare incidents, so routing takes them as such.
        let accepted: Vec<Incident> = open
            .iter()
            .filter(|i| self.accepts(&i.feature, true))
            .cloned()
            .collect();
        self.deliver.resume(&accepted);
    }

    pub fn pace(&self) -> Option<&RateLimit> {
        self.deliver.pace()
    }
}

/// Routing rule shared by all sink kinds. Empty lists and maps match
/// everything; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub critical_only: bool,
    /// The feature's owner is one of these.
    pub owners: Vec<String>,
    /// The feature carries every one of these labels with these values.
    pub labels: BTreeMap<String, String>,
}

impl Route {
    pub fn matches(&self, feature: &Feature, critical: bool) -> bool {
        (critical || !self.critical_only)
            && (self.owners.is_empty()
                || feature
                    .owner
                    .as_ref()
                    .is_some_and(|o| self.owners.contains(o)))
            && self
                .labels
                .iter()
                .all(|(k, v)| feature.labels.get(k) == Some(v))
    }
}

/// One configured sink, as data. Parsing is pure: secrets stay
/// placeholders until the sink is built ([`build`]), so a secret is never
/// written in the config and never held by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// Unique, `[a-z0-9_-]`; names the sink in logs, metrics and the outbox.
    pub name: String,
    pub kind: SinkKind,
    pub route: Route,
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

/// The spec of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// The daemon's own log.
    Log,
    /// A generic JSON webhook, signed per Standard Webhooks.
    Webhook(webhook::WebhookSpec),
    /// The generic webhook with a body template and/or header templates.
    Template(templated_webhook::TemplateSpec),
    /// PagerDuty Events API v2.
    PagerDuty(pagerduty::PagerDutySpec),
    /// Prometheus Alertmanager API v2.
    Alertmanager(alertmanager::AlertmanagerSpec),
    /// A Slack incoming webhook.
    Slack(slack::SlackSpec),
}

impl SinkKind {
    /// The kind's sender, its secrets read now.
    fn sender(&self, name: &str, secrets: &dyn Resolve) -> Result<Box<dyn Deliver>, String> {
        Ok(match self {
            SinkKind::Log => Box::new(log::LogSink),
            SinkKind::Webhook(s) => Box::new(webhook::WebhookSink::new(s, secrets)?),
            SinkKind::Template(s) => {
                Box::new(templated_webhook::TemplatedWebhookSink::new(s, secrets)?)
            }
            SinkKind::PagerDuty(s) => Box::new(pagerduty::PagerDutySink::new(s, secrets)?),
            SinkKind::Alertmanager(s) => Box::new(alertmanager::AlertmanagerSink::new(
                name,
                s,
                secrets,
                alertmanager::Resend::default(),
            )?),
            SinkKind::Slack(s) => Box::new(slack::SlackSink::new(s, secrets)?),
        })
    }
}

/// A kind as `type = "…"` names it: the keys it takes besides `name`,
/// `type` and the routing keys, and the reader of its table.
struct Registered {
    name: &'static str,
    keys: &'static [&'static str],
    read: fn(&mut Ctx, &Table, Env) -> Option<SinkKind>,
}

/// The registry of kinds, in the order help texts list them. `webhook` is
/// read by the templated webhook, which is the generic one unless a
/// template is given.
const KINDS: [Registered; 5] = [
    Registered {
        name: "webhook",
        keys: templated_webhook::KEYS,
        read: |cx, t, env| templated_webhook::read(cx, t, env).map(SinkKind::from),
    },
    Registered {
        name: "pagerduty",
        keys: pagerduty::KEYS,
        read: |cx, t, env| pagerduty::read(cx, t, env).map(SinkKind::PagerDuty),
    },
    Registered {
        name: "alertmanager",
        keys: alertmanager::KEYS,
        read: |cx, t, env| alertmanager::read(cx, t, env).map(SinkKind::Alertmanager),
    },
    Registered {
        name: "slack",
        keys: slack::KEYS,
        read: |cx, t, env| slack::read(cx, t, env).map(SinkKind::Slack),
    },
    Registered {
        name: "log",
        keys: &[],
        read: |_, _, _| Some(SinkKind::Log),
    },
];

impl From<templated_webhook::Webhook> for SinkKind {
    fn from(w: templated_webhook::Webhook) -> SinkKind {
        match w {
            templated_webhook::Webhook::Plain(spec) => SinkKind::Webhook(spec),
            templated_webhook::Webhook::Templated(spec) => SinkKind::Template(spec),
        }
    }
}

/// Why a sink could not be built: a secret that cannot be read, a URL or
/// header that is not valid once its placeholders are filled in. Shows the
/// message only; the caller names the sink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    pub sink: String,
    pub message: String,
}

/// Builds a sink, reading its secrets from the environment and files now,
/// so that a missing one stops startup instead of every delivery.
pub fn build(spec: &SinkSpec) -> Result<Sink, BuildError> {
    build_with(spec, &crate::secret::Secrets::default())
}

/// Like [`build`], with secrets coming from `secrets`.
pub fn build_with(spec: &SinkSpec, secrets: &dyn Resolve) -> Result<Sink, BuildError> {
    let deliver = spec
        .kind
        .sender(&spec.name, secrets)
        .map_err(|message| BuildError {
            sink: spec.name.clone(),
            message,
        })?;
    Ok(Sink::new(&spec.name, spec.route.clone(), deliver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_criticality_owner_and_labels() {
        let mut f = Feature {
            check: "diesel".into(),
            owner: Some("shop-team".into()),
            ..Feature::default()
        };
        f.labels.insert("site".into(), "shop".into());
        assert!(Route::default().matches(&f, false));
        let critical = Route {
            critical_only: true,
            ..Route::default()
        };
        assert!(critical.matches(&f, true) && !critical.matches(&f, false));
        let owners = Route {
            owners: vec!["web-team".into(), "shop-team".into()],
            ..Route::default()
        };
        assert!(owners.matches(&f, false));
        assert!(!owners.matches(&Feature::default(), false));
        let mut labels = Route::default();
        labels.labels.insert("site".into(), "shop".into());
        assert!(labels.matches(&f, false));
        labels.labels.insert("env".into(), "prod".into());
        assert!(!labels.matches(&f, false));
    }
}
