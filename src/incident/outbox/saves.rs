//! The outbox's writes to the store. Each is queued at once and never
//! waited for before the next send: delivery is bounded by the receiver,
//! not by the store's writer. The writer takes an item's writes in the
//! order they were queued; a write that failed is queued again later,
//! unless a newer write of the same item has superseded it. Until an
//! outcome is written the store still holds the item as pending, so a
//! crash can only send it again, never lose it. A write the store refused
//! because another worker took the item's claim is not retried: the item
//! is that worker's.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt as _};

use crate::incident::store::{Claimer, OutboxItem, Store, StoreError};

type Answer = Pin<Box<dyn Future<Output = (u64, OutboxItem, Result<bool, StoreError>)> + Send>>;

#[derive(Default)]
pub(super) struct Saves {
    next: u64,
    /// The sequence number of each item's latest write not yet answered.
    latest: HashMap<String, u64>,
    answers: FuturesUnordered<Answer>,
    /// Items whose latest write failed, to write again.
    failed: HashMap<String, OutboxItem>,
}

impl Saves {
    /// Queues a write of `item` as it now is.
    pub fn queue<S: Store>(&mut self, store: &S, claimer: &Claimer, item: OutboxItem) {
        self.failed.remove(&item.id);
        self.next += 1;
        let seq = self.next;
        self.latest.insert(item.id.clone(), seq);
        let write = store.update_delivery(claimer, item.clone());
        self.answers
            .push(Box::pin(async move { (seq, item, write.await) }));
    }

    /// Whether writes failed and wait to be queued again.
    pub fn any_failed(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Queues again every write that failed.
    pub fn retry<S: Store>(&mut self, store: &S, claimer: &Claimer) {
        for (_, item) in std::mem::take(&mut self.failed) {
            self.queue(store, claimer, item);
        }
    }

    /// The store's next answer, once there is one; never when none is
    /// awaited. Names the item if the store refused its latest write: its
    /// claim is lost.
    pub async fn answered(&mut self) -> Option<String> {
        match self.answers.next().await {
            Some((seq, item, result)) => self.note(seq, item, result),
            None => std::future::pending().await,
        }
    }

    /// At shutdown: what failed is queued once more, and every answer awaited.
    pub async fn finish<S: Store>(&mut self, store: &S, claimer: &Claimer) {
        self.retry(store, claimer);
        while let Some((seq, item, result)) = self.answers.next().await {
            if let Some(id) = self.note(seq, item, result) {
                tracing::info!(item = %id, "another delivery worker holds this notification now");
            }
        }
        if !self.failed.is_empty() {
            tracing::warn!(
                notifications = self.failed.len(),
                "delivery outcomes not recorded; those notifications may be sent again after a restart"
            );
        }
    }

    fn note(
        &mut self,
        seq: u64,
        item: OutboxItem,
        result: Result<bool, StoreError>,
    ) -> Option<String> {
        let latest = self.latest.get(&item.id) == Some(&seq);
        if latest {
            self.latest.remove(&item.id);
        }
        match result {
            Ok(true) => None,
            Ok(false) => Some(item.id),
            Err(e) if latest => {
                tracing::warn!("cannot record delivery of {}: {e}; will retry", item.id);
                self.failed.insert(item.id.clone(), item);
                None
            }
            // A newer write of this item was queued after it: that one counts.
            Err(_) => None,
        }
    }
}
