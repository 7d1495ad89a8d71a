//! What every backend reads and writes besides the domain's own types:
//! how much history is kept and the rows of an incident's timeline. Its own
//! file so that backends import it without importing `store/mod.rs`, which
//! imports them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::incident::store::OutboxItem;
use crate::incident::{EventKind, Incident};

/// Runs kept per check unless the configuration says otherwise.
pub const DEFAULT_HISTORY: usize = 1000;

/// How much run history is kept. Runs that incidents refer to are kept
/// whatever their age: the post-mortem needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub runs_per_check: usize,
    pub max_age: std::time::Duration,
}

impl Retention {
    /// Runs started before this are past `max_age`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::TimeDelta::from_std(self.max_age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// The last `n` runs per check, whatever their age.
impl From<usize> for Retention {
    fn from(n: usize) -> Retention {
        Retention {
            runs_per_check: n,
            max_age: std::time::Duration::MAX,
        }
    }
}

/// One event on an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub id: String,
    pub incident_id: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
}

/// An incident, its timeline and its notifications with their delivery state.
pub type IncidentDetail = (Incident, Vec<EventRow>, Vec<OutboxItem>);
