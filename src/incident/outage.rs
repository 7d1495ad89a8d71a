//! The outage brake's memory: which critical checks reached their failure
//! threshold, and when, within the rule's window. Pure: the engine decides
//! what to declare from it.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::check::OutageRule;

/// The name the outage incident goes by where a check's would: `@` is a
/// character no check name may contain, so its key never collides.
pub const OUTAGE: &str = "@outage";

#[derive(Debug)]
pub struct Brake {
    pub rule: OutageRule,
    /// Critical checks that reached their threshold, oldest first.
    reached: VecDeque<(DateTime<Utc>, String)>,
}

impl Brake {
    pub fn new(rule: OutageRule) -> Brake {
        Brake {
            rule,
            reached: VecDeque::new(),
        }
    }

    /// Notes that `check` reached its threshold at `now`; returns the
    /// distinct checks that did within the window, oldest first.
    pub fn reached(&mut self, check: &str, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
        let window =
            chrono::TimeDelta::from_std(self.rule.window).unwrap_or(chrono::TimeDelta::MAX);
        while self
            .reached
            .front()
            .is_some_and(|(at, _)| now.signed_duration_since(*at) > window)
        {
            self.reached.pop_front();
        }
        if !self.reached.iter().any(|(_, c)| c == check) {
            self.reached.push_back((now, check.to_owned()));
        }
        self.reached.iter().cloned().collect()
    }

    /// Forgets what it noted: the outage it made is declared.
    pub fn clear(&mut self) {
        self.reached.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checks_within_the_window_count_once_each() {
        let mut b = Brake::new(OutageRule {
            min_checks: 2,
            min_share: 0.0,
            window: std::time::Duration::from_secs(60),
        });
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s| t0 + chrono::TimeDelta::seconds(s);
        assert_eq!(b.reached("a", at(0)).len(), 1);
        assert_eq!(b.reached("a", at(10)).len(), 1, "once each");
        assert_eq!(b.reached("b", at(50)).len(), 2);
        let now: Vec<String> = b.reached("c", at(90)).into_iter().map(|(_, c)| c).collect();
        assert_eq!(now, ["b", "c"], "a left the window");
        assert!(b.rule.holds(2, 3));
        assert!(
            !OutageRule {
                min_share: 0.7,
                ..b.rule
            }
            .holds(2, 3)
        );
    }
}
