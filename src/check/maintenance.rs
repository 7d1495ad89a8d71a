//! Maintenance windows: planned work during which checks still run and are
//! recorded, but nothing is declared.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::cron::Cron;

/// One window, and which checks it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub when: When,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Starts at every fire of `cron` and lasts `duration`.
    Recurring { cron: Cron, duration: Duration },
    Fixed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// Empty lists cover every check; given conditions must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub checks: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Window {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        match &self.when {
            When::Fixed { start, end } => *start <= now && now < *end,
            When::Recurring { cron, duration } => {
                // Active iff a start lies in (now - duration, now]: the first
                // fire strictly after (now - duration) is not later than now.
                let Ok(d) = TimeDelta::from_std(*duration) else {
                    return false;
                };
                let Some(from) = now.checked_sub_signed(d) else {
                    return false;
                };
                cron.next_after(from).is_some_and(|start| start <= now)
            }
        }
    }

    pub fn covers(&self, check: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.scope.checks.is_empty() || self.scope.checks.iter().any(|c| c == check))
            && self
                .scope
                .labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_recurring_window_is_active_for_its_duration_after_each_start() {
        let w = Window {
            name: "nightly deploy".into(),
            when: When::Recurring {
                cron: Cron::parse("0 2 * * *", chrono_tz::Europe::Berlin).unwrap(),
                duration: Duration::from_secs(30 * 60),
            },
            scope: Scope::default(),
        };
        // 02:00 Berlin is 01:00 UTC in November.
        assert!(!w.active(at("2026-11-25T00:59:59Z")));
        assert!(w.active(at("2026-11-25T01:00:00Z")));
        assert!(w.active(at("2026-11-25T01:29:59Z")));
        assert!(!w.active(at("2026-11-25T01:30:00Z")));
    }

    #[test]
    fn fixed_windows_and_scopes() {
        let w = Window {
            name: "migration".into(),
            when: When::Fixed {
                start: at("2026-12-01T08:00:00Z"),
                end: at("2026-12-01T10:00:00Z"),
            },
            scope: Scope {
                checks: vec![],
                labels: BTreeMap::from([("site".into(), "shop".into())]),
            },
        };
        assert!(w.active(at("2026-12-01T09:00:00Z")) && !w.active(at("2026-12-01T10:00:00Z")));
        let shop = BTreeMap::from([("site".to_owned(), "shop".to_owned())]);
        assert!(w.covers("diesel-order", &shop));
        assert!(!w.covers("weather", &BTreeMap::new()));
    }
}
