//! Delivery that loses nothing: the outbox worker sends pending items to
//! their sinks, in order per incident and sink, retrying with backoff until
//! the retry period ends. A receiver's rate limit is not a failure: sends
//! are paced to the limits sinks know, and a 429 holds back the sink's
//! sends until its `Retry-After`, neither counting as a failed attempt. Sending never holds up the scheduler, and the
//! store never holds up sending: each outcome is queued to the store's
//! writer while the next event goes out.
//!
//! The worker sends only what it has claimed in the store (see
//! [`Store::claim`]): what the engine's commits claimed for it, and what it
//! claims itself, at start and every third of its lease, which also renews
//! its claims. An item whose claim another worker took is dropped; at the
//! end the worker releases its claims, so the next one takes over at once.

mod saves;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::store::{Claimer, DeliveryState, OutboxItem, Store, StoreError};
use crate::sink::{Attempt, Sink};

/// First retry after about this long, doubling per attempt.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
/// Sends in flight at once to one sink: a slow receiver holds up its own
/// events only.
const MAX_IN_FLIGHT: usize = 8;
/// How soon writes the store refused are queued again.
const SAVE_RETRY: Duration = Duration::from_secs(5);
/// How long a sink that answered 429 without a `Retry-After` is left alone.
const THROTTLED_FOR: Duration = Duration::from_secs(5);
/// How long the ids of settled items are kept: a claim or commit read
/// before the outcome was written may still hand the item back as pending,
/// and must not have it sent again. Answers take seconds at most.
const SETTLED_FOR: Duration = Duration::from_secs(300);
/// How long a worker whose store says it may not deliver now (a leader
/// not sure of its lease) waits before it asks again.
const HOLD: TimeDelta = TimeDelta::seconds(1);

/// What the worker reports, for metrics and logs.
pub trait DeliveryObserver: Send + Sync + 'static {
    fn attempted(&self, item: &OutboxItem, result: &'static str);
    /// A send held back by the receiver's rate limit: its 429, or a slot of
    /// the sink's known rate not yet come.
    fn throttled(&self, item: &OutboxItem);
    fn backlog(&self, pending: usize, oldest: Option<DateTime<Utc>>);
}

/// A send in flight and, once done, the item it was for and its outcome.
type Sending = Pin<Box<dyn Future<Output = (OutboxItem, Attempt)> + Send>>;

/// An item's place in `pending`: oldest first.
type Key = (DateTime<Utc>, String);

/// A claim on the store's outbox in flight.
type Claiming = Pin<Box<dyn Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send>>;

pub struct Worker<S> {
    store: Arc<S>,
    sinks: HashMap<String, Arc<Sink>>,
    observer: Arc<dyn DeliveryObserver>,
    /// How long an event is retried before it is dead-lettered.
    retry_for: Duration,
    pending: BTreeMap<Key, OutboxItem>,
    /// Ids of the items being sent. They stay in `pending` until settled,
    /// so the later events of their incident and sink wait behind them.
    sending: HashSet<String>,
    /// Sends in flight per sink.
    in_flight: HashMap<String, usize>,
    /// Sinks that answered 429: nothing is sent to them before then.
    throttled_until: HashMap<String, DateTime<Utc>>,
    /// Ids of the items that hold a slot of their sink's rate limit: sent
    /// when it comes, without reserving another.
    slotted: HashSet<String>,
    disabled: HashSet<String>,
    saves: saves::Saves,
    claimer: Claimer,
    /// At most one claim at a time.
    claims: FuturesUnordered<Claiming>,
    /// Ids of the items settled lately, and when.
    settled: HashMap<String, Instant>,
    /// Ids of the items for sinks not configured (any more).
    unknown: HashSet<String>,
}

impl<S: Store> Worker<S> {
    pub fn new(
        store: Arc<S>,
        sinks: Vec<Arc<Sink>>,
        observer: Arc<dyn DeliveryObserver>,
        retry_for: Duration,
        claimer: Claimer,
    ) -> Self {
        Worker {
            store,
            sinks: sinks
                .into_iter()
                .map(|s| (s.name().to_owned(), s))
                .collect(),
            observer,
            retry_for,
            pending: BTreeMap::new(),
            sending: HashSet::new(),
            in_flight: HashMap::new(),
            throttled_until: HashMap::new(),
            slotted: HashSet::new(),
            disabled: HashSet::new(),
            saves: saves::Saves::default(),
            claimer,
            claims: FuturesUnordered::new(),
            settled: HashMap::new(),
            unknown: HashSet::new(),
        }
    }

    /// Delivers what it claims and what arrives on `incoming` until
    /// `shutdown`, or until `incoming` is closed and nothing it holds is
    /// pending; the deliveries in flight then finish and are recorded, and
    /// its claims released.
    pub async fn run(
        mut self,
        mut incoming: mpsc::UnboundedReceiver<OutboxItem>,
        shutdown: CancellationToken,
    ) {
        let mut sends: FuturesUnordered<Sending> = FuturesUnordered::new();
        let mut open = true;
        let mut next_claim = Instant::now();
        loop {
            if self.claims.is_empty() && Instant::now() >= next_claim {
                self.claim();
                next_claim = Instant::now() + self.claimer.lease / 3;
            }
            let next = self.start_due(&mut sends, Utc::now());
            self.report();
            if !open && self.pending.is_empty() && self.claims.is_empty() {
                break;
            }
            let mut wait = next.map_or(Duration::from_secs(60), |at| {
                (at - Utc::now()).to_std().unwrap_or_default()
            });
            wait = wait.min(next_claim.saturating_duration_since(Instant::now()));
            if self.saves.any_failed() {
                wait = wait.min(SAVE_RETRY);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some((item, attempt)) = sends.next(), if !sends.is_empty() => {
                    self.settle(item, attempt);
                }
                Some(claimed) = self.claims.next(), if !self.claims.is_empty() => {
                    self.claimed(claimed);
                }
                lost = self.saves.answered() => {
                    if let Some(id) = lost {
                        self.lost(&id);
                    }
                }
                item = incoming.recv(), if open => match item {
                    Some(item) => self.add(item),
                    None => open = false,
                },
                () = tokio::time::sleep(wait) => self.saves.retry(&*self.store, &self.claimer),
            }
        }
        while let Some((item, attempt)) = sends.next().await {
            self.settle(item, attempt);
        }
        self.report();
        self.saves.finish(&*self.store, &self.claimer).await;
        if let Err(e) = self.store.release(&self.claimer).await {
            tracing::warn!(
                "releasing the outbox claims: {e}; another worker takes them when they expire"
            );
        }
    }

    /// Claims what is due in the store and renews what it holds.
    fn claim(&mut self) {
        let now = Instant::now();
        self.settled
            .retain(|_, at| now.duration_since(*at) < SETTLED_FOR);
        let store = Arc::clone(&self.store);
        let claimer = self.claimer.clone();
        self.claims.push(Box::pin(
            async move { store.claim(&claimer, Utc::now()).await },
        ));
    }

    fn claimed(&mut self, claimed: Result<Vec<OutboxItem>, StoreError>) {
        match claimed {
            Ok(items) => {
                for item in items {
                    self.add(item);
                }
            }
            Err(e) => tracing::warn!("claiming outbox items: {e}"),
        }
    }

    /// Another worker took `id`'s claim: it is that worker's to send now.
    fn lost(&mut self, id: &str) {
        if self.sending.contains(id) {
            return;
        }
        self.pending.retain(|(_, i), _| i != id);
        self.slotted.remove(id);
        tracing::info!(item = %id, "another delivery worker holds this notification now");
    }

    /// Takes an item to deliver, unless it has it already (its copy is as
    /// new or newer) or settled it lately.
    fn add(&mut self, item: OutboxItem) {
        if item.state != DeliveryState::Pending || self.settled.contains_key(&item.id) {
            return;
        }
        if !self.sinks.contains_key(&item.sink) {
            // Claimed again at every claim: told once.
            if self.unknown.insert(item.id.clone()) {
                tracing::warn!(sink = %item.sink, event = %item.event.id, "notification for a sink that is no longer configured; dropping it");
            }
            return;
        }
        self.pending
            .entry((item.created_at, item.id.clone()))
            .or_insert(item);
    }

    /// Starts sending the oldest pending item of each incident and sink if
    /// it is due, nothing is being sent for that pair and its sink has room:
    /// later events wait, so a resolution never overtakes its declaration.
    /// Returns when the next item not yet due will be.
    fn start_due(
        &mut self,
        sends: &mut FuturesUnordered<Sending>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !self.store.may_deliver() {
            return Some(now + HOLD);
        }
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        self.throttled_until.retain(|_, until| *until > now);
        for (k, item) in &self.pending {
            let first = seen.insert((item.event.incident.id.as_str(), item.sink.as_str()));
            if !first || self.sending.contains(&item.id) {
                continue;
            }
            let at = match self.throttled_until.get(&item.sink) {
                Some(until) => item.next_attempt_at.max(*until),
                None => item.next_attempt_at,
            };
            if at <= now {
                due.push(k.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for k in due {
            let Some(item) = self.pending.get(&k) else {
                continue;
            };
            let Some(sink) = self.sinks.get(&item.sink) else {
                continue;
            };
            let in_flight = self.in_flight.entry(item.sink.clone()).or_default();
            if *in_flight >= MAX_IN_FLIGHT {
                // Started when one of the sink's sends settles.
                continue;
            }
            if let Some(limit) = sink.pace()
                && !self.slotted.remove(&item.id)
            {
                let wait = limit.reserve();
                if !wait.is_zero() {
                    let at = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
                    tracing::debug!(sink = %item.sink, event = %item.event.id, wait = ?wait, "waiting for the sink's rate limit");
                    self.observer.throttled(item);
                    self.slotted.insert(item.id.clone());
                    next = Some(next.map_or(at, |n| n.min(at)));
                    if let Some(item) = self.pending.get_mut(&k) {
                        item.next_attempt_at = at;
                    }
                    continue;
                }
            }
            *in_flight += 1;
            self.sending.insert(item.id.clone());
            let (sink, item) = (Arc::clone(sink), item.clone());
            sends.push(Box::pin(async move {
                let attempt = sink.send(&item.event, item.attempts + 1).await;
                (item, attempt)
            }));
        }
        next
    }

    fn settle(&mut self, mut item: OutboxItem, attempt: Attempt) {
        self.sending.remove(&item.id);
        if let Some(n) = self.in_flight.get_mut(&item.sink) {
            *n = n.saturating_sub(1);
        }
        let key = (item.created_at, item.id.clone());
        let now = Utc::now();
        item.attempts += 1;
        let result = match attempt {
            Attempt::Delivered { .. } => {
                item.state = DeliveryState::Delivered;
                item.delivered_at = Some(now);
                item.last_error = None;
                "delivered"
            }
            // Its sink was disabled (410) while this was in flight.
            _ if !self.pending.contains_key(&key) => return,
            Attempt::Throttled { error, retry_after } => {
                // Not an attempt that failed: the backoff does not grow.
                item.attempts -= 1;
                let wait = retry_after.unwrap_or(THROTTLED_FOR);
                let until = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
                let sink_until = self
                    .throttled_until
                    .entry(item.sink.clone())
                    .or_insert(until);
                *sink_until = (*sink_until).max(until);
                item.next_attempt_at = until;
                tracing::info!(sink = %item.sink, event = %item.event.id, retry_in = ?wait, "the receiver is throttling: {error}");
                self.observer.throttled(&item);
                item.last_error = Some(error);
                let give_up =
                    item.created_at + TimeDelta::from_std(self.retry_for).unwrap_or(TimeDelta::MAX);
                if until > give_up {
                    item.state = DeliveryState::Dead;
                    tracing::error!(sink = %item.sink, event = %item.event.id, "giving up: retry period over");
                    item.tried(now, "dead");
                    self.observer.attempted(&item, "dead");
                } else {
                    item.tried(now, "throttled");
                }
                self.keep(key, item);
                return;
            }
            Attempt::Retry { error, retry_after } => {
                let wait = backoff(item.attempts).max(retry_after.unwrap_or_default());
                let give_up =
                    item.created_at + TimeDelta::from_std(self.retry_for).unwrap_or(TimeDelta::MAX);
                item.next_attempt_at = now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
                tracing::warn!(sink = %item.sink, event = %item.event.id, attempt = item.attempts, retry_in = ?wait, "delivery failed: {error}");
                item.last_error = Some(error);
                if item.next_attempt_at > give_up {
                    item.state = DeliveryState::Dead;
                    tracing::error!(sink = %item.sink, event = %item.event.id, "giving up: retry period over");
                    "dead"
                } else {
                    "retry"
                }
            }
            Attempt::Rejected { error } => {
                tracing::error!(sink = %item.sink, event = %item.event.id, "receiver rejected the notification; dead-lettered: {error}");
                item.state = DeliveryState::Dead;
                item.last_error = Some(error);
                "rejected"
            }
            Attempt::Gone { error } => {
                tracing::error!(sink = %item.sink, "receiver answered 410 Gone; sink disabled until restart: {error}");
                item.state = DeliveryState::Disabled;
                item.last_error = Some(error);
                self.disable(&item.sink.clone());
                "gone"
            }
        };
        item.tried(now, result);
        self.observer.attempted(&item, result);
        self.keep(key, item);
    }

    /// Keeps a pending item for its next attempt, drops a settled one, and
    /// queues the write of either.
    fn keep(&mut self, key: Key, item: OutboxItem) {
        if item.state == DeliveryState::Pending {
            self.pending.insert(key, item.clone());
        } else {
            self.pending.remove(&key);
            self.settled.insert(item.id.clone(), Instant::now());
        }
        self.saves.queue(&*self.store, &self.claimer, item);
    }

    fn disable(&mut self, sink: &str) {
        self.disabled.insert(sink.to_owned());
        self.sinks.remove(sink);
        let keys: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, i)| i.sink == sink)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(mut item) = self.pending.remove(&k) {
                self.slotted.remove(&item.id);
                item.state = DeliveryState::Disabled;
                item.last_error = Some("sink disabled after 410 Gone".into());
                self.settled.insert(item.id.clone(), Instant::now());
                self.saves.queue(&*self.store, &self.claimer, item);
            }
        }
    }

    fn report(&self) {
        let oldest = self.pending.keys().next().map(|(t, _)| *t);
        self.observer.backlog(self.pending.len(), oldest);
    }
}

/// About 5 s doubling per attempt up to 30 min, with ±20 % jitter so many
/// retries do not hit a recovering receiver at the same moment.
fn backoff(attempts: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(
        1u32.checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX),
    );
    let base = exp.min(BACKOFF_CAP);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 401) as f64 / 1000.0 + 0.8;
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_five_seconds_to_a_thirty_minute_cap_with_jitter() {
        for (attempt, base) in [(1, 5), (2, 10), (3, 20), (4, 40), (10, 1800), (40, 1800)] {
            let d = backoff(attempt);
            let base = Duration::from_secs(base);
            assert!(
                d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2),
                "attempt {attempt}: {d:?}"
            );
        }
    }
}
