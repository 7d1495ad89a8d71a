//! How sinks write what an incident says: times, text cut to a receiver's
//! limit, the instance group, the failed expectations.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::check::Failure;
use crate::incident::{Affected, Evidence, Incident};
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

#[cfg(test)]
mod tests {
    use super::*;

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
