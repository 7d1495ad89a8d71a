//! Incidents: when a critical check keeps failing, declare one, once, and
//! resolve it when the check recovers. The state machine is pure; the store
//! is an interface this module defines; sinks (`crate::sink`) deliver events
//! from an outbox that loses nothing.

pub mod engine;
pub mod key;
pub mod machine;
pub mod memory;
pub mod outage;
pub mod outbox;
pub mod postmortem;
pub mod quorum;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::check::roles::Roles;

/// Failures and passes in a row, counted by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    pub failures: u32,
    pub passes: u32,
}

/// How many runs in a row flip a check's incident state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Failures in a row that declare.
    pub failure: u32,
    /// Passes in a row that resolve.
    pub success: u32,
    /// Re-send the declaration while the incident stays open this long.
    pub remind_every: Option<std::time::Duration>,
}

impl Thresholds {
    pub fn of(rules: &crate::check::IncidentRules) -> Thresholds {
        Thresholds {
            failure: rules.failure_threshold,
            success: rules.success_threshold,
            remind_every: rules.remind_every,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure: 2,
            success: 2,
            remind_every: None,
        }
    }
}

/// What the daemon knows about the check an incident is about, copied into
/// the incident so it can be told even after the check is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub roles: Roles,
}

/// Why the check is failing, as the last failing run showed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub message: String,
    /// Every expectation that did not hold in the failing step.
    pub failures: Vec<String>,
    /// The same, with where the step looked, what it expected and what it
    /// found (`query`, `expected`, `actual`); absent in incidents stored
    /// before these were recorded.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failure_details: Vec<crate::check::Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Phase timings of the failing step, in milliseconds.
    pub phases_ms: BTreeMap<String, f64>,
    pub duration_ms: f64,
    pub consecutive_failures: u32,
    /// The start of the failing response's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// The failing browser step's screenshot: its file name, served by the
    /// API at `/api/v1/screenshots/{name}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub screenshot: Option<String>,
    /// The same as a link, when `external_url` says where the API is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub screenshot_url: Option<String>,
    /// Each location's last result, when the check runs in several (or
    /// has a quorum): which fail, which pass, which went quiet.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub locations: Vec<LocationResult>,
}

/// One location's last result for a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationResult {
    pub location: String,
    pub state: LocationState,
    /// Its latest failing run while it fails, else its latest run.
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

/// Whether a location sees a check failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationState {
    /// Past its failure threshold there.
    Failing,
    Passing,
    /// No run there within two intervals and the timeout: it counts
    /// neither way.
    Stale,
}

impl LocationState {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationState::Failing => "failing",
            LocationState::Passing => "passing",
            LocationState::Stale => "stale",
        }
    }
}

/// One incident of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// `scarecrow:{instance_group}:{check}`: the same for every incident of a
    /// check, so replicas and receivers dedupe on it.
    pub key: String,
    pub title: String,
    pub severity: String,
    pub feature: Feature,
    pub first_failure_at: DateTime<Utc>,
    /// When the run that crossed the failure threshold started.
    pub detected_at: DateTime<Utc>,
    pub declared_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// `recovered`, `check_removed` or `manual`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub evidence: Evidence,
    /// Ids of the failing runs that led here and kept it open.
    pub run_ids: Vec<String>,
    /// The check's incident resolved less than an hour before this one's
    /// first failure: the same outage, declared again.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_incident: Option<String>,
    /// Checks that depend on this one (`depends_on`) and failed with it:
    /// they joined this incident instead of declaring their own.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub affected: Vec<Affected>,
}

/// A dependent feature that failed while this incident's check failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    /// When its failing run that reached its threshold started.
    pub at: DateTime<Utc>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    pub message: String,
    /// When it recovered, for an outage incident that lists it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recovered_at: Option<DateTime<Utc>>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    pub fn duration(&self) -> Option<chrono::TimeDelta> {
        self.resolved_at.map(|r| r - self.declared_at)
    }
}

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "incident.declared")]
    Declared,
    /// The failure reason changed while the incident was open.
    #[serde(rename = "incident.updated")]
    Updated,
    /// The incident is still open after `remind_every`.
    #[serde(rename = "incident.reminder")]
    Reminder,
    #[serde(rename = "incident.resolved")]
    Resolved,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Declared => "incident.declared",
            EventKind::Updated => "incident.updated",
            EventKind::Reminder => "incident.reminder",
            EventKind::Resolved => "incident.resolved",
        }
    }
}

/// One event to deliver: its id is fixed when it is created and stays the
/// same on every retry, so receivers can process it exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    /// The incident as it was when the event happened.
    pub incident: Incident,
}

/// A fresh id with a prefix, e.g. `msg_…` or `inc_…`: time-ordered and unique.
pub fn new_id(prefix: &str) -> String {
    // Every run takes one: encoded straight into the string, without the
    // formatting machinery.
    let mut hex = [0; uuid::fmt::Simple::LENGTH];
    let hex = uuid::Uuid::now_v7().simple().encode_lower(&mut hex);
    let mut id = String::with_capacity(prefix.len() + 1 + hex.len());
    id.push_str(prefix);
    id.push('_');
    id.push_str(hex);
    id
}
