//! The storage interface incidents need: the engine's and the delivery
//! worker's atomic operations, not tables. `crate::store::Store` implements
//! it over each backend; nothing outside that module speaks SQL. Run
//! history is not here: runs go to the store by their own path.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Event;
use super::machine::CheckState;
use crate::check::FastHash;

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
    /// The latest attempts and what came of each, oldest first, for the
    /// post-mortem; at most [`OutboxItem::TRIES_KEPT`] (`attempts` counts all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tries: Vec<Try>,
}

/// One attempt at delivering an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Try {
    pub at: DateTime<Utc>,
    /// `delivered`, `retry`, `throttled`, `rejected`, `gone` or `dead`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
            tries: Vec::new(),
        }
    }

    /// Attempts remembered per item: a receiver down for a day is retried
    /// about fifty times, and the last ones say how it ended.
    pub const TRIES_KEPT: usize = 20;

    /// Remembers an attempt made at `at` and its outcome, with the item's
    /// last error.
    pub fn tried(&mut self, at: DateTime<Utc>, outcome: &str) {
        if self.tries.len() >= Self::TRIES_KEPT {
            self.tries.remove(0);
        }
        self.tries.push(Try {
            at,
            outcome: outcome.to_owned(),
            error: self.last_error.clone(),
        });
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

/// What a restart resumes from. Pending notifications are not in it: a
/// delivery worker claims them ([`Store::claim`]).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub states: HashMap<String, CheckState, FastHash>,
}

/// A delivery worker, as its claims on outbox items name it. A claim lasts
/// `lease` from when it was taken or last renewed; after that another
/// worker may take the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimer {
    pub id: String,
    pub lease: std::time::Duration,
}

impl Claimer {
    /// A claimer of its own (`worker_…`), e.g. one per process.
    pub fn new(lease: std::time::Duration) -> Claimer {
        Claimer {
            id: super::new_id("worker"),
            lease,
        }
    }

    /// When a claim taken or renewed at `now` runs out.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        chrono::TimeDelta::from_std(self.lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Durable state for incidents. Every method that writes is one atomic
/// operation of the domain, so a backend can fence it in one transaction;
/// those that wait are async, so that no caller blocks an async worker on
/// I/O.
///
/// Outbox items are delivered in order per incident and sink (a *pair*):
/// a worker holds a pair's pending items by claiming them, and a claim names
/// the worker and expires ([`Claimer`]), so a pair is sent by one worker at
/// a time and a stopped worker's pairs pass to another.
pub trait Store: Send + Sync + 'static {
    /// Check states, to resume after a restart.
    fn load(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;
    /// Writes the incident, the check's state, the timeline event and the
    /// outbox rows in one transaction, durably, before returning, and in it
    /// claims for `claimer` the pairs of the new rows that no other live
    /// claim holds. Returns the pending items of those pairs, oldest first
    /// (older ones included, so they go out before the new ones): what
    /// `claimer` is to deliver. Committing the same transition again (a
    /// reconcile after an outage) is harmless. Queued at the call, not when
    /// the future is first polled: commits are written in the order they
    /// were made, and the caller need not wait for one before the next.
    fn commit(
        &self,
        t: Transition,
        claimer: &Claimer,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send + 'static;
    /// Queues a check's state after a run to be written with the next batch
    /// and returns at once. Failures show in [`Store::healthy`].
    fn queue_state(&self, check: &str, state: &CheckState) -> Result<(), StoreError>;
    /// Whether the last write succeeded.
    fn healthy(&self) -> bool;
    /// Whether this process may send notifications now. With replicas, only
    /// while it surely holds the leader's lease (renewed within its life,
    /// by its own clock): a leader that was paused or cut off sends nothing
    /// it had in hand until it knows it still leads.
    fn may_deliver(&self) -> bool {
        true
    }
    /// Claims for `claimer`, until `now` plus its lease, every pending item
    /// of the pairs that no other live claim holds and whose oldest pending
    /// item is due by `now`, and renews the claims it holds. Returns every
    /// pending item `claimer` now holds, oldest first.
    fn claim(
        &self,
        claimer: &Claimer,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send;
    /// Queues a delivery attempt's outcome (the item as it now is) to be
    /// written after everything queued before it, and returns at once: the
    /// future only tells whether it was written, and dropping it cancels
    /// nothing. Delivery does not wait for the store between sends. The
    /// write renews `claimer`'s claim; it is refused, and the future yields
    /// `false`, when another worker has taken the item's claim (or settled
    /// it) since: the item is that worker's now.
    fn update_delivery(
        &self,
        claimer: &Claimer,
        item: OutboxItem,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static;
    /// Lets go of `claimer`'s claims on pending items (it stops), so another
    /// worker takes them at once rather than when they expire.
    fn release(&self, claimer: &Claimer) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Drops a check's state (it was removed and its incident resolved).
    fn forget_check(&self, check: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many incidents of each check were declared since `since`.
    fn incident_counts(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<BTreeMap<String, u64>, StoreError>> + Send;
}
