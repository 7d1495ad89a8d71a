//! Follow-ups drawn from the evidence: what failed, whether the schedule
//! made detection slow, which sinks struggled, and what the check does not
//! look at that would have caught this earlier. Each item is there because
//! a fact calls for it, not as a reminder to every incident.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::facts::Facts;
use crate::check::words::{count, human};
use crate::incident::store::{DeliveryState, OutboxItem};

/// A date or a time of day as pages write them: `2026-11-29`, `29 Nov
/// 2026`, `29.11.2026`, `19:00`.
static SHOWS_A_TIME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"\b(\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{2,4}|\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}|\d{1,2}:\d{2})\b",
    )
    .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

/// Detection slower than this is worth a schedule review.
const SLOW_DETECTION: Duration = Duration::from_secs(60);

pub(super) fn follow_ups(
    f: &Facts,
    outage_start: DateTime<Utc>,
    first_declared: DateTime<Utc>,
) -> Vec<String> {
    let i = &f.incident;
    let check = &i.feature.check;
    let ev = &i.evidence;
    let mut items = Vec::new();

    let at_step = ev
        .step
        .as_deref()
        .map(|s| format!("step “{s}”"))
        .unwrap_or_else(|| "the check".to_owned());
    if ev.failure_details.is_empty() {
        let seen = match ev.failures.as_slice() {
            [] => ev.message.clone(),
            failures => failures.join("; "),
        };
        items.push(format!("Find out why {at_step} failed: {seen}."));
    }
    for d in ev.failure_details.iter().take(3) {
        let expected = d.expected.as_deref().unwrap_or("hold");
        let actual = d
            .actual
            .as_deref()
            .map(|a| format!(", got {a}"))
            .unwrap_or_default();
        items.push(format!(
            "Find out why {at_step} failed: {} — expected it to {expected}{actual}.",
            d.query
        ));
    }

    items.push(detection(f, outage_start, first_declared));

    items.extend(struggling_sinks(f));

    if let Some(c) = &f.coverage {
        let seen = [ev.excerpt.as_deref()]
            .into_iter()
            .chain(ev.failure_details.iter().map(|d| d.actual.as_deref()))
            .flatten()
            .find_map(|text| SHOWS_A_TIME.find(text).map(|m| m.as_str().to_owned()));
        if let (false, Some(time)) = (c.asserts_freshness, seen) {
            items.push(format!(
                "The page shows a time (“{time}”) but {check} does not check how old it is: a `max_age` assertion on it fails as soon as the data goes stale, before values go missing."
            ));
        }
        if !c.asserts_content {
            items.push(format!(
                "{check} asserts only how the server answers: a page that answers 200 with an error or an empty widget passes. Assert the text members need (`css`, `body`, `jsonpath`)."
            ));
        }
    }

    if !f.earlier.is_empty() {
        items.push(format!(
            "The outage was declared {} times, each within an hour of the last resolution: find out why the check passed in between, or raise its success threshold.",
            f.earlier.len() + 1
        ));
    }
    if i.resolution.as_deref() == Some("manual")
        && super::timeline::failing_at(&f.runs, i.resolved_at.unwrap_or(i.declared_at))
    {
        items.push(format!(
            "It was resolved by hand while {check} was still failing: if the check was wrong, fix the check; if the fix came later, note when."
        ));
    }
    match &i.feature.runbook {
        Some(runbook) => items.push(format!(
            "Check that the runbook ({runbook}) covered this failure, and update it."
        )),
        None => items.push(format!(
            "{check} has no runbook: write down what the responders did, and link it as `runbook`."
        )),
    }
    items
}

/// A follow-up per sink that needed retries or never delivered.
fn struggling_sinks(f: &Facts) -> Vec<String> {
    let mut sinks: Vec<&str> = f.notifications.iter().map(|n| n.sink.as_str()).collect();
    sinks.sort();
    sinks.dedup();
    let mut items = Vec::new();
    for sink in sinks {
        let theirs = || f.notifications.iter().filter(|n| n.sink == sink);
        let error = |n: &OutboxItem| {
            n.tries
                .iter()
                .rev()
                .find_map(|t| t.error.clone())
                .or_else(|| n.last_error.clone())
                .unwrap_or_else(|| "no answer".to_owned())
        };
        let lost: Vec<&OutboxItem> = theirs()
            .filter(|n| matches!(n.state, DeliveryState::Dead | DeliveryState::Disabled))
            .collect();
        if let Some(last) = lost.last() {
            let kinds: Vec<&str> = lost.iter().map(|n| n.event.kind.as_str()).collect();
            items.push(format!(
                "{sink} never received {} ({}: {}): fix the sink and try it with `scarecrow notify --test {sink}`.",
                kinds.join(", "),
                super::timeline::state_words(last.state),
                error(last)
            ));
        }
        let retried: Vec<&OutboxItem> = theirs()
            .filter(|n| n.state == DeliveryState::Delivered && n.attempts > 1)
            .collect();
        if let Some(worst) = retried.iter().max_by_key(|n| n.attempts) {
            items.push(format!(
                "{sink} needed retries for {} of {} (up to {}; {}): check that receiver's availability.",
                retried.len(),
                count(theirs().count(), "notification"),
                count(worst.attempts as usize, "attempt"),
                error(worst)
            ));
        }
    }
    items
}

/// How the schedule bore on detection, and whether a shorter interval would
/// have helped.
fn detection(f: &Facts, outage_start: DateTime<Utc>, first_declared: DateTime<Utc>) -> String {
    let took = (first_declared - outage_start).to_std().unwrap_or_default();
    let failing = f
        .runs
        .iter()
        .filter(|r| r.result.started_at <= first_declared && !r.result.outcome.is_success())
        .count()
        .max(1);
    let every = f
        .coverage
        .as_ref()
        .and_then(|c| c.every_seconds)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .or_else(|| typical_gap(f, first_declared));
    let runs = count(failing, "failing run");
    let Some(every) = every else {
        return format!(
            "Detection took {} from the first failing run to the declaration ({runs}).",
            human(took)
        );
    };
    // Between the first failing run and the declaration lie the runs the
    // failure threshold waits for: half the interval, half that wait.
    let saved = took / 2;
    let verdict = if took < SLOW_DETECTION {
        format!(
            "a shorter interval would have saved under {}: the schedule did not make this slow",
            human(saved.max(Duration::from_secs(1)))
        )
    } else {
        format!(
            "running every {} would have declared about {} sooner",
            human(every / 2),
            human(saved)
        )
    };
    format!(
        "Detection took {} from the first failing run to the declaration: {runs} at an interval of {} (the outage may have begun up to {} before the first failing run); {verdict}.",
        human(took),
        human(every),
        human(every)
    )
}

/// The median gap between the runs up to the declaration (between all
/// runs, when there were fewer than two), when the schedule is not known.
fn typical_gap(f: &Facts, declared: DateTime<Utc>) -> Option<Duration> {
    let before = f
        .runs
        .iter()
        .filter(|r| r.result.started_at <= declared)
        .count();
    let runs = match before {
        0 | 1 => &f.runs[..],
        n => &f.runs[..n],
    };
    let mut gaps: Vec<Duration> = runs
        .windows(2)
        .filter_map(|w| {
            (w[1].result.started_at - w[0].result.started_at)
                .to_std()
                .ok()
        })
        .collect();
    gaps.sort();
    gaps.get(gaps.len() / 2).copied()
}
