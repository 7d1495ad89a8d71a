//! A store that keeps nothing: for a replica that declares on its own
//! while the shared store is unreachable (`store_down = "alone"`). Its
//! engine's memory is the only record, every commit succeeds at once and
//! hands delivery every notification, and what is sent is never written:
//! at least once, deduplicated by the receivers on the incident key.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use super::machine::CheckState;
use super::store::{Claimer, OutboxItem, Snapshot, Store, StoreError, Transition};

#[derive(Debug, Default)]
pub struct Memory;

impl Store for Memory {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }

    fn commit(
        &self,
        t: Transition,
        _: &Claimer,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, StoreError>> + Send + 'static {
        std::future::ready(Ok(t.outbox))
    }

    fn queue_state(&self, _: &str, _: &CheckState) -> Result<(), StoreError> {
        Ok(())
    }

    fn healthy(&self) -> bool {
        true
    }

    async fn claim(&self, _: &Claimer, _: DateTime<Utc>) -> Result<Vec<OutboxItem>, StoreError> {
        // Nothing outlives the process: delivery has every item from its
        // commit.
        Ok(Vec::new())
    }

    fn update_delivery(
        &self,
        _: &Claimer,
        _: OutboxItem,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        std::future::ready(Ok(true))
    }

    async fn release(&self, _: &Claimer) -> Result<(), StoreError> {
        Ok(())
    }

    async fn forget_check(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn incident_counts(&self, _: DateTime<Utc>) -> Result<BTreeMap<String, u64>, StoreError> {
        Ok(BTreeMap::new())
    }
}
