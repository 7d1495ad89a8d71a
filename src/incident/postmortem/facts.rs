//! What a post-mortem draft is made of: the facts the caller gathers from
//! the store and the check files.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::check::{Assertion, Check, Predicate, RunRecord, Schedule};
use crate::incident::store::OutboxItem;
use crate::incident::{EventKind, Incident};

/// Everything a draft is made of.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub incident: Incident,
    /// Earlier incidents of the same outage, oldest first: each one resolved
    /// less than an hour before the next one began (`previous_incident`).
    pub earlier: Vec<Incident>,
    /// Runs from the outage's first failure to its end, oldest first.
    pub runs: Vec<RunRecord>,
    /// The events of the outage's incidents.
    pub events: Vec<Happened>,
    /// Their notifications, with each attempt.
    pub notifications: Vec<OutboxItem>,
    /// What the check looks at now; none when it is gone.
    pub coverage: Option<Coverage>,
    /// Incidents in the last 90 days: this check, the whole instance group.
    pub check_90d: u64,
    pub group_90d: u64,
    /// The organisation's aim: at most this many incidents per 90 days.
    pub budget_90d: u64,
}

/// An event on an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Happened {
    pub id: String,
    pub incident: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
}

/// What the check (as loaded now) looks at, for the follow-ups: absent when
/// the check is gone from the check files.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// The check's interval in seconds; none for a cron schedule.
    pub every_seconds: Option<f64>,
    pub failure_threshold: u32,
    /// It asserts the age of a date the page shows (`max_age`).
    pub asserts_freshness: bool,
    /// It asserts what the page says (text, elements, JSON), not only how
    /// the server answered (status, time, size, certificate).
    pub asserts_content: bool,
}

impl Coverage {
    pub fn of(check: &Check) -> Coverage {
        let assertions = || check.steps.iter().flat_map(|s| &s.assertions);
        Coverage {
            every_seconds: match &check.schedule {
                Schedule::Every(d) => Some(d.as_secs_f64()),
                Schedule::Cron(_) => None,
            },
            failure_threshold: check.incidents.failure_threshold,
            asserts_freshness: assertions()
                .any(|a| matches!(a, Assertion::Pick(_, Predicate::Fresh(_)))),
            asserts_content: assertions()
                .any(|a| matches!(a, Assertion::Body(_) | Assertion::Pick(..))),
        }
    }
}
