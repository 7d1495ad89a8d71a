//! How sinks write what an incident says: times, text cut to a receiver's
//! limit, the instance group, the failed expectations, the locations.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::check::Failure;
use crate::incident::{Affected, Evidence, Incident, LocationResult, LocationState};
use crate::text::excerpt;

/// At most `max` characters of `s`, the last one `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if s.chars().count() > max => format!("{}…", &s[..cut]),
        _ => s.to_owned(),
    }
}

/// The instance group an incident's key names (`scarecrow:{group}:{check}`).
pub fn instance_group(incident: &Incident) -> Option<&str> {
    crate::incident::key::instance_group(&incident.key)
}

/// RFC 3339 in UTC with milliseconds: one fixed width, so equal times
/// render equally.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One expectation that did not hold, as a sink shows it: where the step
/// looked, what it expected, what it found, each text cut to the
/// receiver's limit. Every key is written, `null` when there is nothing to
/// say, so a receiver (or a template) can test for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation<'a> {
    pub message: Cow<'a, str>,
    pub query: Cow<'a, str>,
    pub expected: Option<Cow<'a, str>>,
    pub actual: Option<Cow<'a, str>>,
}

impl<'a> Expectation<'a> {
    /// `failure` with each of its texts cut to `chars` characters (then `…`).
    pub fn new(failure: &'a Failure, chars: usize) -> Expectation<'a> {
        Expectation {
            message: excerpt(&failure.message, chars),
            query: excerpt(&failure.query, chars),
            expected: failure.expected.as_deref().map(|s| excerpt(s, chars)),
            actual: failure.actual.as_deref().map(|s| excerpt(s, chars)),
        }
    }

    /// One line: `status: expected it to be 200, got 500`; the message when
    /// there is no expectation and value to set side by side (a query that
    /// matched nothing says so best itself).
    pub fn line(&self) -> String {
        match (&self.expected, &self.actual) {
            (Some(expected), Some(actual)) => {
                format!("{}: expected it to {expected}, got {actual}", self.query)
            }
            _ => self.message.to_string(),
        }
    }
}

/// How much of an incident's failed expectations a receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Expectations shown; the rest are counted, not shown.
    pub count: usize,
    /// Characters of each text (message, query, expected, actual).
    pub chars: usize,
}

/// The evidence's failed expectations, in order, at most `limits.count` of
/// them and each cut to `limits.chars`, and how many were left out. Empty
/// for evidence stored before expectations were recorded, and for failures
/// that are not about an expectation (a timeout, a refused connection).
pub fn expectations(e: &Evidence, limits: Limits) -> (Vec<Expectation<'_>>, usize) {
    let shown = e
        .failure_details
        .iter()
        .take(limits.count)
        .map(|f| Expectation::new(f, limits.chars))
        .collect();
    (shown, e.failure_details.len().saturating_sub(limits.count))
}

/// A feature that joined the incident (`depends_on`, the outage brake), as
/// one line: `weather (connect): step "open": connection refused` (its
/// message names the step), cut to `chars`, with `(recovered)` once it has.
pub fn affected_line(a: &Affected, chars: usize) -> String {
    let recovered = if a.recovered_at.is_some() {
        " (recovered)"
    } else {
        ""
    };
    let line = format!("{} ({}): {}{recovered}", a.check, a.reason, a.message);
    excerpt(&line, chars).into_owned()
}

/// At most `count` of the incident's affected features as lines, and how
/// many were left out.
pub fn affected_lines(i: &Incident, count: usize, chars: usize) -> (Vec<String>, usize) {
    let lines = i
        .affected
        .iter()
        .take(count)
        .map(|a| affected_line(a, chars))
        .collect();
    (lines, i.affected.len().saturating_sub(count))
}

/// One location's last result as one line, cut to `chars`: `fra: failing
/// (assertion): step "Wetterseite": status 502` (its message names the
/// step), `ams: passing`, `ber: stale (last run 2025-03-04 14:49:02 UTC)`.
/// A stale location's last run carries the date: it may be long ago.
pub fn location_line(l: &LocationResult, chars: usize) -> String {
    let line = match (l.state, &l.reason, &l.message) {
        (LocationState::Failing, Some(reason), Some(message)) => {
            format!("{}: failing ({reason}): {message}", l.location)
        }
        (LocationState::Stale, ..) => format!(
            "{}: stale (last run {})",
            l.location,
            l.at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        (state, ..) => format!("{}: {}", l.location, state.as_str()),
    };
    excerpt(&line, chars).into_owned()
}

/// At most `count` of the incident's locations as lines, and how many were
/// left out. Empty unless the check runs in several locations.
pub fn location_lines(i: &Incident, count: usize, chars: usize) -> (Vec<String>, usize) {
    let all = &i.evidence.locations;
    let lines = all
        .iter()
        .take(count)
        .map(|l| location_line(l, chars))
        .collect();
    (lines, all.len().saturating_sub(count))
}

/// The locations that fail. On a resolution these are the ones that still
/// do, too few for the quorum: a receiver should not read "resolved" as
/// "fine everywhere".
pub fn failing_locations(i: &Incident) -> Vec<&str> {
    i.evidence
        .locations
        .iter()
        .filter(|l| l.state == LocationState::Failing)
        .map(|l| l.location.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(name: &str, state: LocationState) -> LocationResult {
        let failing = state == LocationState::Failing;
        LocationResult {
            location: name.into(),
            state,
            run_id: "run_1".into(),
            at: "2025-03-04T14:49:02.250Z".parse().unwrap(),
            consecutive_failures: if failing { 3 } else { 0 },
            reason: failing.then(|| "assertion".into()),
            step: failing.then(|| "Wetterseite".into()),
            message: failing.then(|| "step \"Wetterseite\": status 502".into()),
        }
    }

    #[test]
    fn a_location_is_one_line_by_its_state() {
        assert_eq!(
            location_line(&location("fra", LocationState::Failing), 300),
            "fra: failing (assertion): step \"Wetterseite\": status 502"
        );
        assert_eq!(
            location_line(&location("ams", LocationState::Passing), 300),
            "ams: passing"
        );
        assert_eq!(
            location_line(&location("ber", LocationState::Stale), 300),
            "ber: stale (last run 2025-03-04 14:49:02 UTC)"
        );
        let mut long = location("fra", LocationState::Failing);
        long.message = Some("status 502 ".repeat(100));
        let line = location_line(&long, 40);
        assert!(
            line.starts_with("fra: failing (assertion): status"),
            "{line}"
        );
        assert!(line.ends_with('…') && line.chars().count() <= 41, "{line}");
    }

    #[test]
    fn locations_are_counted_and_the_failing_ones_named() {
        let [mut e, _] = crate::sink::test_events::test_events(
            "shop",
            crate::incident::Roles::default(),
            Utc::now(),
        );
        let i = &mut e.incident;
        assert_eq!(location_lines(i, 10, 300), (vec![], 0));
        assert!(failing_locations(i).is_empty());
        i.evidence.locations = vec![
            location("ams", LocationState::Passing),
            location("ber", LocationState::Stale),
            location("fra", LocationState::Failing),
        ];
        let (lines, left_out) = location_lines(i, 2, 300);
        assert_eq!(
            lines,
            [
                "ams: passing",
                "ber: stale (last run 2025-03-04 14:49:02 UTC)"
            ]
        );
        assert_eq!(left_out, 1);
        assert_eq!(failing_locations(i), ["fra"]);
    }

    #[test]
    fn an_affected_feature_is_one_line_cut_and_marked_when_recovered() {
        let mut a = Affected {
            check: "weather".into(),
            description: None,
            at: Utc::now(),
            reason: "connect".into(),
            step: Some("open".into()),
            message: "connection refused ".repeat(40),
            recovered_at: None,
        };
        let line = affected_line(&a, 60);
        assert!(
            line.starts_with("weather (connect): connection refused"),
            "{line}"
        );
        assert_eq!(line.chars().count(), 60 + "…".chars().count());
        a.message = "refused".into();
        a.recovered_at = Some(Utc::now());
        assert_eq!(
            affected_line(&a, 300),
            "weather (connect): refused (recovered)"
        );
    }

    #[test]
    fn text_helpers() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ääää", 3), "ää…");
        let [declared, _] = crate::sink::test_events::test_events(
            "shop",
            crate::incident::Roles::default(),
            Utc::now(),
        );
        assert_eq!(instance_group(&declared.incident), Some("shop"));
    }

    fn evidence(n: usize) -> Evidence {
        let found = "x".repeat(50);
        let mut e = Evidence {
            failure_details: (0..n)
                .map(|i| {
                    Failure::new("status", format!("failure {i}"))
                        .expected("be 200")
                        .actual(found.clone())
                })
                .collect(),
            ..Evidence::default()
        };
        e.failure_details.push(Failure::new(
            "jsonpath \"$.price\"",
            "jsonpath \"$.price\" matched nothing".into(),
        ));
        e
    }

    #[test]
    fn expectations_are_counted_and_cut() {
        let e = evidence(3);
        let (shown, left_out) = expectations(
            &e,
            Limits {
                count: 2,
                chars: 10,
            },
        );
        assert_eq!(left_out, 2);
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].actual.as_deref(), Some("xxxxxxxxxx…"));
        assert_eq!(shown[0].expected.as_deref(), Some("be 200"));
        assert!(
            matches!(shown[0].query, Cow::Borrowed(_)),
            "short texts are not copied"
        );
        assert_eq!(
            shown[0].line(),
            "status: expected it to be 200, got xxxxxxxxxx…"
        );

        let (all, left_out) = expectations(
            &e,
            Limits {
                count: 10,
                chars: 100,
            },
        );
        assert_eq!((all.len(), left_out), (4, 0));
        // Nothing found: the message says it.
        assert_eq!(all[3].line(), "jsonpath \"$.price\" matched nothing");
        let v = serde_json::to_value(&all[3]).unwrap();
        assert!(v["expected"].is_null() && v["actual"].is_null(), "{v}");

        assert_eq!(
            expectations(&Evidence::default(), Limits { count: 5, chars: 5 }),
            (vec![], 0)
        );
    }
}
