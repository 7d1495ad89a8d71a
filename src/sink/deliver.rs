//! The one trait a sink kind implements: how an event reaches its receiver.

use std::future::Future;
use std::pin::Pin;

use super::attempt::Attempt;
use super::http::RateLimit;
use crate::incident::{Event, Incident};

/// What differs between sink kinds: how an event reaches the receiver.
/// The name and the routing are [`Sink`]'s.
pub trait Deliver: Send + Sync + 'static {
    /// One delivery attempt. Sending the same event again must be safe:
    /// receivers dedupe on the event id.
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;
    /// Told at start-up which open incidents this sink accepts, for kinds
    /// that keep state at the receiver alive (Alertmanager forgets alerts
    /// not re-sent).
    fn resume(&self, _open: &[Incident]) {}
    /// The receiver's known rate limit (Slack, PagerDuty): the outbox waits
    /// for a slot before each send rather than have it refused.
    fn pace(&self) -> Option<&RateLimit> {
        None
    }
}
