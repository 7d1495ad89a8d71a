//! Delivery that loses nothing: the outbox worker sends pending items to
//! their sinks, in order per incident and sink, retrying with backoff until
//! the retry period ends. Sending never holds up the scheduler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sink::{Attempt, Sink};
use super::store::{DeliveryState, OutboxItem, Store};

/// First retry after about this long, doubling per attempt.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
/// Sends in flight at once, across sinks.
const MAX_IN_FLIGHT: usize = 8;

/// What the worker reports, for metrics and logs.
pub trait DeliveryObserver: Send + Sync + 'static {
    fn attempted(&self, item: &OutboxItem, result: &'static str);
    fn backlog(&self, pending: usize, oldest: Option<DateTime<Utc>>);
}

pub struct Worker<S> {
    store: Arc<S>,
    sinks: HashMap<String, Arc<dyn Sink>>,
    observer: Arc<dyn DeliveryObserver>,
    /// How long an event is retried before it is dead-lettered.
    retry_for: Duration,
    pending: BTreeMap<(DateTime<Utc>, String), OutboxItem>,
    disabled: HashSet<String>,
    /// Deliveries whose outcome the store has not taken yet (it was down).
    unsaved: Vec<OutboxItem>,
}

impl<S: Store> Worker<S> {
    pub fn new(
        store: Arc<S>,
        sinks: Vec<Arc<dyn Sink>>,
        observer: Arc<dyn DeliveryObserver>,
        retry_for: Duration,
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
            disabled: HashSet::new(),
            unsaved: Vec::new(),
        }
    }

    /// Delivers items that arrive on `incoming` (and those it starts with)
    /// until `shutdown`; the delivery in flight then finishes.
    pub async fn run(
        mut self,
        initial: Vec<OutboxItem>,
        mut incoming: mpsc::UnboundedReceiver<OutboxItem>,
        shutdown: CancellationToken,
    ) {
        for item in initial {
            self.add(item);
        }
        loop {
            self.report();
            let wait = self.next_wake(Utc::now());
            tokio::select! {
                () = shutdown.cancelled() => break,
                item = incoming.recv() => match item {
                    Some(item) => { self.add(item); continue; }
                    None => break,
                },
                () = tokio::time::sleep(wait) => {}
            }
            self.send_due().await;
        }
        self.flush_unsaved().await;
    }

    fn add(&mut self, item: OutboxItem) {
        if item.state != DeliveryState::Pending {
            return;
        }
        if !self.sinks.contains_key(&item.sink) {
            tracing::warn!(sink = %item.sink, event = %item.event.id, "notification for a sink that is no longer configured; dropping it");
            return;
        }
        self.pending
            .insert((item.created_at, item.id.clone()), item);
    }

    /// The oldest pending item of each incident and sink, if it is due:
    /// later events wait, so a resolution never overtakes its declaration.
    fn due(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        for (k, item) in &self.pending {
            if seen.insert((item.event.incident.id.as_str(), item.sink.as_str()))
                && item.next_attempt_at <= now
            {
                due.push(k.clone());
            }
        }
        due
    }

    fn next_wake(&self, now: DateTime<Utc>) -> Duration {
        let retry_unsaved = if self.unsaved.is_empty() {
            Duration::MAX
        } else {
            Duration::from_secs(5)
        };
        self.pending
            .values()
            .map(|i| (i.next_attempt_at - now).to_std().unwrap_or_default())
            .min()
            .unwrap_or(Duration::from_secs(60))
            .min(retry_unsaved)
    }

    async fn send_due(&mut self) {
        self.flush_unsaved().await;
        let due: Vec<_> = self
            .due(Utc::now())
            .into_iter()
            .take(MAX_IN_FLIGHT)
            .collect();
        let sends = due.iter().filter_map(|k| {
            let item = self.pending.get(k)?;
            let sink = self.sinks.get(&item.sink)?.clone();
            let item = item.clone();
            Some(async move {
                let attempt = sink.send(&item.event, item.attempts + 1).await;
                (item, attempt)
            })
        });
        let results = futures_util::future::join_all(sends).await;
        for (item, attempt) in results {
            self.settle(item, attempt).await;
        }
    }

    async fn settle(&mut self, mut item: OutboxItem, attempt: Attempt) {
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
                self.disable(&item.sink.clone()).await;
                "gone"
            }
        };
        self.observer.attempted(&item, result);
        if item.state == DeliveryState::Pending {
            self.pending.insert(key, item.clone());
        } else {
            self.pending.remove(&key);
        }
        self.save(item).await;
    }

    async fn disable(&mut self, sink: &str) {
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
                item.state = DeliveryState::Disabled;
                item.last_error = Some("sink disabled after 410 Gone".into());
                self.save(item).await;
            }
        }
    }

    async fn save(&mut self, item: OutboxItem) {
        if let Err(e) = self.store.update_delivery(item.clone()).await {
            tracing::warn!("cannot record delivery of {}: {e}; will retry", item.id);
            self.unsaved.push(item);
        }
    }

    async fn flush_unsaved(&mut self) {
        let unsaved = std::mem::take(&mut self.unsaved);
        for (i, item) in unsaved.iter().enumerate() {
            if self.store.update_delivery(item.clone()).await.is_err() {
                self.unsaved.extend_from_slice(&unsaved[i..]);
                return;
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
