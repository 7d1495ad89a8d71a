//! The storage interface incidents need. `crate::store` implements it with
//! SQLite; nothing outside that module speaks SQL.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Event;
use super::machine::CheckState;
use crate::check::{FastHash, RunResult};

/// One event for one sink, as the delivery worker tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// `{event id}/{sink}`: stable, so memory and store agree without asking.
    pub id: String,
    pub sink: String,
    pub event: Event,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Refused for good (a 4xx other than 408/429) or out of retry time.
    Dead,
    /// The sink answered 410 Gone: it is switched off.
    Disabled,
}

impl OutboxItem {
    pub fn new(event: &Event, sink: &str, now: DateTime<Utc>) -> OutboxItem {
        OutboxItem {
            id: format!("{}/{sink}", event.id),
            sink: sink.to_owned(),
            event: event.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            created_at: now,
            next_attempt_at: now,
            last_error: None,
            delivered_at: None,
        }
    }
}

/// A state change and the notifications it causes: committed together, at once.
#[derive(Debug, Clone)]
pub struct Transition {
    pub check: String,
    pub state: CheckState,
    pub event: Event,
    pub outbox: Vec<OutboxItem>,
}

/// A plain run result and the counters after it; may be written in batches.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub result: RunResult,
    /// `None` when the run left the check's state as it was.
    pub state: Option<CheckState>,
}

/// What a restart resumes from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub states: HashMap<String, CheckState, FastHash>,
    /// Items still pending, oldest first.
    pub outbox: Vec<OutboxItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Durable state for incidents. Every method is async so that no caller
/// blocks an async worker on disk I/O.
pub trait Store: Send + Sync + 'static {
    /// Check states and undelivered notifications, to resume after a restart.
    fn load(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;
    /// Writes the incident, the check's state and the outbox rows in one
    /// transaction, durably, before returning. Committing the same
    /// transition again (a reconcile after an outage) is harmless.
    fn commit(&self, t: Transition) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a run and the check's counters after it; may be batched.
    fn record_run(&self, r: RunRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Queues a run to be recorded with the next batch and returns at once:
    /// the engine must not wait for a transaction per run. Failures show in
    /// [`Store::healthy`].
    fn queue_run(&self, r: RunRecord) -> Result<(), StoreError>;
    /// Whether the last write succeeded.
    fn healthy(&self) -> bool;
    /// Queues a delivery attempt's outcome (the item as it now is) to be
    /// written after everything queued before it, and returns at once: the
    /// future only tells whether it was written, and dropping it cancels
    /// nothing. Delivery does not wait for the store between sends.
    fn update_delivery(
        &self,
        item: OutboxItem,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static;
    /// Drops a check's state (it was removed and its incident resolved).
    fn forget_check(&self, check: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many incidents of each check were declared since `since`.
    fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<BTreeMap<String, u64>, StoreError>> + Send;
}
