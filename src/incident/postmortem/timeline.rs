//! The post-mortem's timeline: what changed, not every run. Runs become
//! streaks of one outcome (a change of reason starts a new one); each
//! incident event carries the sinks that took it at the first attempt, and a
//! notification that needed more lists its attempts; identical neighbouring
//! rows become one row with a count and a span.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::facts::Happened;
use crate::check::words::count;
use crate::check::{Outcome, Reason, RunRecord, RunResult};
use crate::incident::store::{DeliveryState, OutboxItem, Try};
use crate::incident::{EventKind, Incident};

/// Something that happened, or `count` identical things from `at` to `until`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Identical events this row stands for (a streak of runs says its
    /// length in `what` and counts as one).
    pub count: u32,
    pub what: String,
}

impl Row {
    fn at(at: DateTime<Utc>, what: String) -> Row {
        Row {
            at,
            until: None,
            count: 1,
            what,
        }
    }
}

/// The outage's rows, oldest first. `incidents` are those of the outage,
/// oldest first; `runs` run from its first failure to its end.
pub fn rows(
    runs: &[RunRecord],
    events: &[Happened],
    notifications: &[OutboxItem],
    incidents: &[Incident],
) -> Vec<Row> {
    let mut rows = streaks(runs);
    for e in events {
        let items: Vec<&OutboxItem> = notifications
            .iter()
            .filter(|n| n.event.id == e.id)
            .collect();
        let (clean, troubled): (Vec<&OutboxItem>, Vec<&OutboxItem>) = items
            .into_iter()
            .partition(|n| n.state == DeliveryState::Delivered && n.attempts <= 1);
        let mut what = event_words(e, incidents, runs);
        if !clean.is_empty() {
            let sinks: Vec<&str> = clean.iter().map(|n| n.sink.as_str()).collect();
            what.push_str(&format!(" — delivered to {}", sinks.join(", ")));
        }
        rows.push(Row::at(e.at, what));
        for n in troubled {
            rows.extend(attempts(n));
        }
    }
    // Notifications of events the store has no row for (none, normally).
    for n in notifications {
        if !events.iter().any(|e| e.id == n.event.id) {
            rows.extend(attempts(n));
        }
    }
    // Stable: at one instant, runs come before the events they caused.
    rows.sort_by_key(|r| r.at);
    collapse(rows)
}

#[derive(PartialEq)]
enum Streak<'a> {
    Pass,
    Fail(Reason, Option<&'a str>),
}

fn streak(r: &RunResult) -> Streak<'_> {
    match &r.outcome {
        Outcome::Success => Streak::Pass,
        Outcome::Failure { reason, step, .. } => Streak::Fail(*reason, step.as_deref()),
    }
}

/// Runs of one outcome in a row (for a failure: one reason at one step),
/// per location when the check ran in more than one: each row then says
/// where.
fn streaks(runs: &[RunRecord]) -> Vec<Row> {
    let mut locations: Vec<&str> = runs.iter().map(|r| &*r.location).collect();
    locations.sort_unstable();
    locations.dedup();
    if let [_] | [] = locations[..] {
        return location_streaks(runs.iter().map(|r| &*r.result), "");
    }
    let mut rows = Vec::new();
    for location in locations {
        let here = runs.iter().filter(|r| &*r.location == location);
        rows.extend(location_streaks(
            here.map(|r| &*r.result),
            &format!("in {location}: "),
        ));
    }
    rows.sort_by_key(|r| r.at);
    rows
}

fn location_streaks<'a>(runs: impl Iterator<Item = &'a RunResult>, place: &str) -> Vec<Row> {
    let runs: Vec<&RunResult> = runs.collect();
    let mut rows = Vec::new();
    let mut failed_before = false;
    let mut last_failed = false;
    let mut rest = &runs[..];
    while let Some(first) = rest.first() {
        let kind = streak(first);
        let len = rest.iter().take_while(|r| streak(r) == kind).count();
        let last = &rest[len - 1];
        let n = count(len, "run");
        let what = match &first.outcome {
            Outcome::Success if last_failed => format!("{place}recovered: {n} passed"),
            Outcome::Success => format!("{place}{n} passed"),
            Outcome::Failure {
                reason, message, ..
            } => {
                let label = match (failed_before, last_failed) {
                    (false, _) => "first failure",
                    (true, true) => "the failure changed",
                    (true, false) => "failing again",
                };
                format!("{place}{label} ({reason}): {message} — {n} failed")
            }
        };
        failed_before |= kind != Streak::Pass;
        last_failed = kind != Streak::Pass;
        rows.push(Row {
            at: first.started_at,
            until: (len > 1).then_some(last.started_at),
            count: 1,
            what,
        });
        rest = &rest[len..];
    }
    rows
}

fn event_words(e: &Happened, incidents: &[Incident], runs: &[RunRecord]) -> String {
    let incident = incidents.iter().find(|i| i.id == e.incident);
    // Which incident, when the outage had several.
    let which = match incidents.len() {
        0 | 1 => String::new(),
        _ => format!(" {}", e.incident),
    };
    match e.kind {
        EventKind::Declared => match incident.and_then(|i| i.previous_incident.as_deref()) {
            Some(previous) if incidents.len() > 1 => {
                format!("incident{which} declared: the outage of {previous} again")
            }
            _ => format!("incident{which} declared"),
        },
        EventKind::Updated => format!("incident{which} updated: the failure changed"),
        EventKind::Reminder => format!("reminder: incident{which} is still open"),
        EventKind::Resolved => {
            let how = incident.and_then(|i| i.resolution.as_deref());
            let note = incident
                .and_then(|i| i.note.as_deref())
                .map(|n| format!(": “{n}”"))
                .unwrap_or_default();
            match how {
                Some("recovered") => format!("incident{which} resolved: the check recovered"),
                Some("manual") if failing_at(runs, e.at) => format!(
                    "incident{which} resolved by hand while the check was still failing{note}"
                ),
                Some("manual") => format!("incident{which} resolved by hand{note}"),
                Some("check_removed") => format!("incident{which} ended: the check was removed"),
                Some(other) => format!("incident{which} resolved ({other}){note}"),
                None => format!("incident{which} resolved"),
            }
        }
    }
}

/// Whether the last run started before `at` failed.
pub(super) fn failing_at(runs: &[RunRecord], at: DateTime<Utc>) -> bool {
    runs.iter()
        .rev()
        .find(|r| r.result.started_at <= at)
        .is_some_and(|r| !r.result.outcome.is_success())
}

/// A notification's attempts, identical ones collapsed.
fn attempts(n: &OutboxItem) -> Vec<Row> {
    let head = format!("{} to {}", n.event.kind.as_str(), n.sink);
    if n.tries.is_empty() {
        // Stored before attempts were kept, or not attempted yet.
        let error = n
            .last_error
            .as_deref()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        return vec![Row::at(
            n.delivered_at.unwrap_or(n.next_attempt_at),
            format!(
                "{head}: {} after {}{error}",
                state_words(n.state),
                count(n.attempts as usize, "attempt")
            ),
        )];
    }
    let mut rows = Vec::new();
    let unkept = (n.attempts as usize).saturating_sub(n.tries.len());
    if unkept > 0 {
        rows.push(Row::at(
            n.created_at,
            format!("{head}: {} not kept", count(unkept, "earlier attempt")),
        ));
    }
    for t in &n.tries {
        rows.push(Row::at(
            t.at,
            format!("{head}: {}", try_words(t, n.attempts)),
        ));
    }
    collapse(rows)
}

fn try_words(t: &Try, attempts: u32) -> String {
    let error = t.error.as_deref().unwrap_or("no answer");
    match t.outcome.as_str() {
        "delivered" if attempts > 1 => format!("delivered at attempt {attempts}"),
        "delivered" => "delivered".to_owned(),
        "retry" => format!("attempt failed: {error}"),
        "throttled" => format!("throttled by the receiver: {error}"),
        "rejected" => format!("rejected, dead-lettered: {error}"),
        "gone" => "the receiver answered 410 Gone: sink disabled".to_owned(),
        "dead" => format!("gave up, dead-lettered: {error}"),
        other => format!("{other}: {error}"),
    }
}

pub(super) fn state_words(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead-lettered",
        DeliveryState::Disabled => "sink disabled",
    }
}

/// Identical neighbours become one row with their count and span.
fn collapse(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        match out.last_mut() {
            Some(last) if last.what == row.what => {
                last.count += row.count;
                last.until = Some(row.until.unwrap_or(row.at));
            }
            _ => out.push(row),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(secs: i64, what: &str) -> Row {
        Row::at(
            DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(secs),
            what.into(),
        )
    }

    #[test]
    fn identical_neighbours_collapse_with_their_count_and_span() {
        let rows = collapse(vec![
            row(0, "a"),
            row(5, "a"),
            row(15, "a"),
            row(20, "b"),
            row(30, "a"),
        ]);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.what.as_str(), r.count, r.until.map(|u| u.timestamp())))
            .collect();
        assert_eq!(got, [("a", 3, Some(15)), ("b", 1, None), ("a", 1, None)]);
    }

    fn run(location: &str, secs: i64, ok: bool) -> RunRecord {
        let outcome = match ok {
            true => Outcome::Success,
            false => Outcome::Failure {
                reason: Reason::Connect,
                step: None,
                message: format!("connection refused in {location}"),
            },
        };
        RunRecord {
            run_id: format!("run_{location}_{secs}"),
            result: crate::check::Redacted::vouched(RunResult {
                check: "weather".into(),
                started_at: DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(secs),
                duration: std::time::Duration::from_millis(30),
                outcome,
                steps: Vec::new(),
            }),
            location: location.into(),
        }
    }

    /// Interleaved, the two locations' runs would make a streak of one run
    /// each; apart, each location's changes are told, in time order.
    #[test]
    fn runs_in_several_locations_are_told_apart_by_location() {
        let runs = [
            run("fra", 0, false),
            run("ams", 5, true),
            run("fra", 30, false),
            run("ams", 35, false),
            run("fra", 60, true),
            run("ams", 65, false),
        ];
        let rows = streaks(&runs);
        let got: Vec<(i64, &str)> = rows
            .iter()
            .map(|r| (r.at.timestamp(), r.what.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    0,
                    "in fra: first failure (connect): connection refused in fra — 2 runs failed"
                ),
                (5, "in ams: 1 run passed"),
                (
                    35,
                    "in ams: first failure (connect): connection refused in ams — 2 runs failed"
                ),
                (60, "in fra: recovered: 1 run passed"),
            ]
        );
        let one = streaks(&runs[..1]);
        assert!(
            one[0].what.starts_with("first failure"),
            "one location: as before"
        );
    }
}
