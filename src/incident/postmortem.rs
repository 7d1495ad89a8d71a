//! The post-mortem draft: the facts the daemon holds about an incident, in
//! the sections incident reviews use, with a follow-up checklist. Pure: the
//! caller reads the store.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::store::{DeliveryState, OutboxItem};
use super::{EventKind, Incident};
use crate::check::{Outcome, Redacted, RunResult};

/// Everything a draft is made of.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub incident: Incident,
    /// Runs from the first failure to the recovery, oldest first.
    pub runs: Vec<(String, Redacted<RunResult>)>,
    /// Timeline events: (time, kind).
    pub events: Vec<(DateTime<Utc>, EventKind)>,
    pub notifications: Vec<OutboxItem>,
    /// Incidents in the last 90 days: this check, the whole instance group.
    pub check_90d: u64,
    pub group_90d: u64,
    /// The organisation's aim: at most this many incidents per 90 days.
    pub budget_90d: u64,
}

/// The draft as data, for `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub summary: String,
    pub impact: Impact,
    pub time_to_detect_seconds: i64,
    pub time_to_resolve_seconds: Option<i64>,
    pub timeline: Vec<Entry>,
    pub follow_ups: Vec<String>,
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub feature: String,
    pub duration_seconds: Option<i64>,
    pub failed_runs: usize,
    pub total_runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub what: String,
}

pub fn draft(facts: Facts) -> Draft {
    let i = &facts.incident;
    let f = &i.feature;
    let failed = facts
        .runs
        .iter()
        .filter(|(_, r)| !r.outcome.is_success())
        .count();
    let down_for = i.resolved_at.map(|r| r - i.first_failure_at);
    let summary = format!(
        "{} ({}) failed: {}. {} declared the incident at {}{}.",
        f.check,
        f.description.as_deref().unwrap_or("no description"),
        i.evidence.message,
        "scarecrow",
        hm(i.declared_at),
        match (i.resolved_at, i.resolution.as_deref()) {
            (Some(at), Some(how)) => format!("; it was resolved ({how}) at {}", hm(at)),
            _ => "; it is still open".to_owned(),
        }
    );
    let mut timeline: Vec<Entry> = facts
        .runs
        .iter()
        .map(|(id, r)| Entry {
            at: r.started_at,
            what: match &r.outcome {
                Outcome::Success => format!("run {id} passed ({} ms)", r.duration.as_millis()),
                Outcome::Failure {
                    reason, message, ..
                } => format!("run {id} failed ({reason}): {message}"),
            },
        })
        .collect();
    timeline.extend(facts.events.iter().map(|(at, kind)| Entry {
        at: *at,
        what: kind.as_str().to_owned(),
    }));
    timeline.extend(facts.notifications.iter().map(|n| Entry {
        at: n.delivered_at.unwrap_or(n.next_attempt_at),
        what: format!(
            "{} via {}: {} after {}{}",
            n.event.kind.as_str(),
            n.sink,
            delivery(n.state),
            crate::check::words::count(n.attempts as usize, "attempt"),
            n.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
        ),
    }));
    timeline.sort_by_key(|e| e.at);
    let follow_ups = vec![
        format!(
            "Add or extend test data for {} so the failing path is exercised on every deploy.",
            f.check
        ),
        format!(
            "Run `scarecrow once --check {} --wait 120s` as a smoke test in the deploy pipeline.",
            f.check
        ),
        format!(
            "Review thresholds and schedule: detected {} after the first failure; could it surface faster?",
            human(i.declared_at - i.first_failure_at)
        ),
        format!(
            "Check that the runbook ({}) covered this failure, and update it.",
            f.runbook.as_deref().unwrap_or("none set")
        ),
        "Confirm the incident roles were reached and who did what; note gaps.".to_owned(),
    ];
    Draft {
        summary,
        impact: Impact {
            feature: f.check.clone(),
            duration_seconds: down_for.map(|d| d.num_seconds()),
            failed_runs: failed,
            total_runs: facts.runs.len(),
        },
        time_to_detect_seconds: (i.declared_at - i.first_failure_at).num_seconds(),
        time_to_resolve_seconds: i.resolved_at.map(|r| (r - i.declared_at).num_seconds()),
        timeline,
        follow_ups,
        facts,
    }
}

/// The draft in Markdown, ready to paste into the review document.
pub fn markdown(d: &Draft) -> String {
    let i = &d.facts.incident;
    let f = &i.feature;
    let mut s = String::new();
    let _ = writeln!(s, "# Post-mortem draft: {}\n", i.title);
    let _ = writeln!(
        s,
        "Incident `{}` · key `{}` · severity {}\n",
        i.id, i.key, i.severity
    );
    let _ = writeln!(s, "## Summary\n\n{}\n", d.summary);
    let _ = writeln!(s, "## Impact\n");
    let _ = writeln!(
        s,
        "- Feature: **{}**{}",
        f.check,
        f.description
            .as_deref()
            .map(|x| format!(" — {x}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "- Down for: {}",
        d.impact
            .duration_seconds
            .map_or("still open".to_owned(), |x| human(TimeDelta::seconds(x)))
    );
    let _ = writeln!(
        s,
        "- Runs: {} of {} failed between the first failure and the recovery",
        d.impact.failed_runs, d.impact.total_runs
    );
    let _ = writeln!(s, "- Owner: {}", f.owner.as_deref().unwrap_or("unknown"));
    let _ = writeln!(
        s,
        "- Time to detect (first failure → declared): {}",
        human(TimeDelta::seconds(d.time_to_detect_seconds))
    );
    let _ = writeln!(
        s,
        "- Time to resolve (declared → resolved): {}\n",
        d.time_to_resolve_seconds
            .map_or("still open".to_owned(), |x| human(TimeDelta::seconds(x)))
    );
    let _ = writeln!(s, "## Timeline (UTC)\n\n| time | event |\n|---|---|");
    for e in &d.timeline {
        let _ = writeln!(
            s,
            "| {} | {} |",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.what.replace('|', "\\|")
        );
    }
    let ev = &i.evidence;
    let _ = writeln!(s, "\n## Evidence\n");
    let _ = writeln!(s, "- Failing step: {}", ev.step.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "- Reason: {}", ev.reason);
    let _ = writeln!(s, "- What was seen: {}", ev.message);
    for failure in &ev.failures {
        let _ = writeln!(s, "  - {failure}");
    }
    if let Some(status) = ev.status {
        let _ = writeln!(s, "- Status: {status}");
    }
    if let Some(x) = &ev.excerpt {
        let _ = writeln!(s, "- Response excerpt: `{}`", x.replace('`', "'"));
    }
    let _ = writeln!(
        s,
        "\n## Contributing factors\n\n_To be written by the review._\n"
    );
    let _ = writeln!(
        s,
        "## Resolution\n\n{}\n",
        match (&i.resolution, &i.note) {
            (Some(how), Some(note)) => format!("Resolved ({how}): {note}"),
            (Some(how), None) => format!("Resolved ({how})."),
            _ => "Not resolved yet.".to_owned(),
        }
    );
    let _ = writeln!(s, "## Follow-ups\n");
    for item in &d.follow_ups {
        let _ = writeln!(s, "- [ ] {item}");
    }
    let fx = &d.facts;
    let _ = writeln!(
        s,
        "\n## Incident budget\n\n{} had {} incident(s) in the last 90 days; the instance group had {} against a budget of {}{}.",
        f.check,
        fx.check_90d,
        fx.group_90d,
        fx.budget_90d,
        if fx.group_90d > fx.budget_90d {
            " — over budget"
        } else {
            ""
        }
    );
    s
}

fn delivery(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead-lettered",
        DeliveryState::Disabled => "sink disabled",
    }
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `25m`, `1h 5m`, `40s`, as everything else writes a length of time.
fn human(d: TimeDelta) -> String {
    crate::check::words::human(d.to_std().unwrap_or_default())
}
