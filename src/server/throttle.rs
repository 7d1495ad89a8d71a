//! Run-now, per check: one at a time, and a pause after each, so a client
//! looping on `POST /checks/{name}/run` cannot turn the daemon into a load
//! generator against the site it watches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// After a check's run-now ends, the next is refused for this long.
pub const SPACING: Duration = Duration::from_secs(5);

/// Which checks have a run-now going, and when the last one ended.
#[derive(Clone, Default)]
pub struct RunNow {
    checks: Arc<Mutex<HashMap<String, Slot>>>,
}

#[derive(Clone, Copy)]
enum Slot {
    Running,
    Ended(Instant),
}

/// A run-now let through; dropping it (answered or abandoned) starts the pause.
pub struct Permit {
    checks: Arc<Mutex<HashMap<String, Slot>>>,
    name: String,
}

impl RunNow {
    /// A permit for `check`, or how long to wait before asking again.
    pub fn try_start(&self, check: &str) -> Result<Permit, Duration> {
        let now = Instant::now();
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        match checks.get(check) {
            Some(Slot::Running) => return Err(SPACING),
            Some(Slot::Ended(at)) if now.duration_since(*at) < SPACING => {
                return Err(SPACING - now.duration_since(*at));
            }
            _ => {}
        }
        // Pauses that are over are forgotten, so removed checks leave nothing.
        checks.retain(|_, s| match s {
            Slot::Running => true,
            Slot::Ended(at) => now.duration_since(*at) < SPACING,
        });
        checks.insert(check.to_owned(), Slot::Running);
        Ok(Permit {
            checks: self.checks.clone(),
            name: check.to_owned(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        checks.insert(std::mem::take(&mut self.name), Slot::Ended(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_at_a_time_then_a_pause_per_check() {
        let limiter = RunNow::default();
        let first = limiter.try_start("weather").expect("first");
        assert_eq!(limiter.try_start("weather").err(), Some(SPACING));
        let other = limiter.try_start("diesel");
        assert!(other.is_ok(), "other checks are not held up");
        drop(first);
        let wait = limiter.try_start("weather").err().expect("paused");
        assert!(wait <= SPACING && wait > Duration::ZERO, "{wait:?}");
    }
}
