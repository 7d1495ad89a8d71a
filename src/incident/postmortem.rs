//! The post-mortem draft: the facts the daemon holds about an outage, in
//! the sections incident reviews use, with follow-ups drawn from the
//! evidence. Pure: the caller reads the store and the check.

mod facts;
mod follow_ups;
mod timeline;

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

pub use facts::{Coverage, Facts, Happened};
pub use timeline::Row;

/// The draft as data, for `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub summary: String,
    pub impact: Impact,
    pub time_to_detect_seconds: i64,
    pub time_to_resolve_seconds: Option<i64>,
    pub timeline: Vec<Row>,
    pub follow_ups: Vec<String>,
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub feature: String,
    /// From the first failure to the first passing run of the recovery;
    /// to the resolution when it was resolved otherwise.
    pub duration_seconds: Option<i64>,
    /// Resolved by hand (or the check removed) while its last run failed:
    /// the duration is a lower bound.
    pub still_failing: bool,
    pub failed_runs: usize,
    pub total_runs: usize,
    /// Incidents declared for this outage (the earlier ones linked).
    pub declarations: usize,
}

pub fn draft(facts: Facts) -> Draft {
    let i = &facts.incident;
    let f = &i.feature;
    let first = facts.earlier.first().unwrap_or(i);
    let outage_start = first.first_failure_at;
    let failed = facts
        .runs
        .iter()
        .filter(|r| !r.result.outcome.is_success())
        .count();
    let still_failing = i
        .resolved_at
        .is_some_and(|at| timeline::failing_at(&facts.runs, at));
    let recovered_at = match i.resolution.as_deref() {
        Some("recovered") => facts
            .runs
            .iter()
            .rev()
            .take_while(|r| r.result.outcome.is_success())
            .last()
            .map(|r| r.result.started_at),
        _ => None,
    };
    let ended = recovered_at.or(i.resolved_at);
    let mut summary = format!(
        "{} ({}) failed: {}. scarecrow declared the incident at {}",
        f.check,
        f.description.as_deref().unwrap_or("no description"),
        i.evidence.message,
        hm(i.declared_at),
    );
    match (i.resolved_at, i.resolution.as_deref()) {
        (Some(at), Some("manual")) if still_failing => summary.push_str(&format!(
            "; it was resolved by hand at {} while the check was still failing, {} after the first failure.",
            hm(at),
            human(at - outage_start)
        )),
        (Some(at), Some("manual")) => {
            summary.push_str(&format!("; it was resolved by hand at {}.", hm(at)))
        }
        (Some(at), Some("check_removed")) => summary.push_str(&format!(
            "; it ended when the check was removed at {}.",
            hm(at)
        )),
        (Some(at), Some(how)) => {
            summary.push_str(&format!("; it was resolved ({how}) at {}.", hm(at)))
        }
        _ => summary.push_str("; it is still open."),
    }
    if !facts.earlier.is_empty() {
        let ids: Vec<&str> = facts.earlier.iter().map(|e| e.id.as_str()).collect();
        summary.push_str(&format!(
            " It is the same outage as {}, resolved less than an hour before each next declaration: this draft tells all of it, from the first failure at {}.",
            ids.join(", "),
            hm(outage_start)
        ));
    }
    let timeline = timeline::rows(
        &facts.runs,
        &facts.events,
        &facts.notifications,
        &facts.earlier.iter().chain([i]).cloned().collect::<Vec<_>>(),
    );
    let follow_ups = follow_ups::follow_ups(&facts, outage_start, first.declared_at);
    Draft {
        summary,
        impact: Impact {
            feature: f.check.clone(),
            duration_seconds: ended.map(|e| (e - outage_start).num_seconds()),
            still_failing,
            failed_runs: failed,
            total_runs: facts.runs.len(),
            declarations: facts.earlier.len() + 1,
        },
        time_to_detect_seconds: (first.declared_at - outage_start).num_seconds(),
        time_to_resolve_seconds: i.resolved_at.map(|r| (r - first.declared_at).num_seconds()),
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
        "Incident `{}` · key `{}` · severity {}{}\n",
        i.id,
        i.key,
        i.severity,
        i.previous_incident
            .as_deref()
            .map(|p| format!(" · previous incident `{p}`"))
            .unwrap_or_default()
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
        match (d.impact.duration_seconds, d.impact.still_failing) {
            (None, _) => "still open".to_owned(),
            (Some(x), true) => format!(
                "at least {}: the check was still failing when the incident was resolved",
                human(TimeDelta::seconds(x))
            ),
            (Some(x), false) => human(TimeDelta::seconds(x)),
        }
    );
    let _ = writeln!(
        s,
        "- Runs: {} of {} failed between the first failure and {}",
        d.impact.failed_runs,
        d.impact.total_runs,
        match i.resolution.as_deref() {
            Some("recovered") => "the recovery",
            Some(_) => "the resolution",
            None => "now",
        }
    );
    if d.impact.declarations > 1 {
        let _ = writeln!(
            s,
            "- Declared {} times for one outage: {}",
            d.impact.declarations,
            d.facts
                .earlier
                .iter()
                .chain([i])
                .map(|x| format!("`{}`", x.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
        let until = match e.until {
            Some(u) if u.date_naive() == e.at.date_naive() => u.format(" – %H:%M:%S").to_string(),
            Some(u) => u.format(" – %Y-%m-%d %H:%M:%S").to_string(),
            None => String::new(),
        };
        let times = match e.count {
            1 => String::new(),
            n => format!(" ({n} times)"),
        };
        let _ = writeln!(
            s,
            "| {}{until} | {}{times} |",
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

fn hm(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `25m`, `1h 5m`, `40s`, as everything else writes a length of time.
fn human(d: TimeDelta) -> String {
    crate::check::words::human(d.to_std().unwrap_or_default())
}
