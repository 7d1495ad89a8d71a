//! The log sink: incidents in the daemon's own log, so that `scarecrow demo`
//! shows one being declared without any receiver set up. It takes no keys
//! of its own.

use std::future::Future;
use std::pin::Pin;

use super::attempt::Attempt;
use super::deliver::Deliver;
use crate::incident::{Event, EventKind};

/// Writes each event as one `tracing` event: a warning while the incident
/// is open, info when it is resolved.
#[derive(Debug, Clone, Copy)]
pub struct LogSink;

impl Deliver for LogSink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        write(event);
        Box::pin(std::future::ready(Attempt::Delivered { status: 200 }))
    }
}

fn write(event: &Event) {
    let i = &event.incident;
    let f = &i.feature;
    let e = &i.evidence;
    let roles = &f.roles;
    match event.kind {
        EventKind::Declared | EventKind::Updated | EventKind::Reminder => tracing::warn!(
            event = event.kind.as_str(),
            incident = %i.id,
            check = %f.check,
            reason = %e.reason,
            step = e.step.as_deref().map(display),
            owner = f.owner.as_deref().map(display),
            coordinator = roles.coordinator.as_deref().map(display),
            operations = roles.operations.as_deref().map(display),
            communications = roles.communications.as_deref().map(display),
            runbook = f.runbook.as_deref().map(display),
            consecutive_failures = e.consecutive_failures,
            "{}: {}",
            headline(event.kind),
            i.title,
        ),
        EventKind::Resolved => tracing::info!(
            event = event.kind.as_str(),
            incident = %i.id,
            check = %f.check,
            resolution = i.resolution.as_deref().map(display),
            duration_seconds = i.duration().map(|d| d.num_seconds()),
            owner = f.owner.as_deref().map(display),
            note = i.note.as_deref().map(display),
            "incident resolved: {}",
            i.title,
        ),
    }
}

fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Declared => "incident declared",
        EventKind::Updated => "incident updated",
        EventKind::Reminder => "incident still open",
        EventKind::Resolved => "incident resolved",
    }
}
