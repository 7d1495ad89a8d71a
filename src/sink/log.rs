//! The log sink: incidents in the daemon's own log, so that `scarecrow demo`
//! shows one being declared without any receiver set up. It takes no keys
//! of its own.

use std::future::Future;
use std::pin::Pin;

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::words::{Limits, expectations};
use crate::incident::{Event, EventKind};

/// The first failed expectation is logged, each part at most this long: a
/// log line, not a page.
const FIRST: Limits = Limits {
    count: 1,
    chars: 300,
};

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

/// The features that joined the incident, by name.
fn affected(i: &crate::incident::Incident) -> String {
    let names: Vec<&str> = i.affected.iter().map(|a| a.check.as_str()).collect();
    names.join(", ")
}

fn write(event: &Event) {
    let i = &event.incident;
    let f = &i.feature;
    let e = &i.evidence;
    let roles = &f.roles;
    let (first, _) = expectations(e, FIRST);
    let first = first.first();
    match event.kind {
        EventKind::Declared | EventKind::Updated | EventKind::Reminder => tracing::warn!(
            event = event.kind.as_str(),
            incident = %i.id,
            check = %f.check,
            reason = %e.reason,
            step = e.step.as_deref().map(display),
            query = first.map(|x| display(&x.query)),
            expected = first.and_then(|x| x.expected.as_deref()).map(display),
            actual = first.and_then(|x| x.actual.as_deref()).map(display),
            failed_expectations = e.failure_details.len(),
            previous_incident = i.previous_incident.as_deref().map(display),
            affected = (!i.affected.is_empty()).then(|| display(affected(i))),
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the log sink writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_open_incident_logs_its_first_expectation() {
        let [mut declared, _] =
            crate::sink::test_events("default", Default::default(), chrono::Utc::now());
        declared.incident.evidence.failure_details[0].actual = Some("x".repeat(5000));
        let lines = Lines::default();
        let out = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || write(&declared));
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(" query=test expected=be a test notification actual=xxx"),
            "{text}"
        );
        assert!(
            text.contains(&format!("actual={}… ", "x".repeat(300))),
            "{text}"
        );
        assert!(
            text.contains(" failed_expectations=1 previous_incident=inc_"),
            "{text}"
        );
    }
}
