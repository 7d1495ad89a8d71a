//! Schedule arithmetic, pure: when a check first runs and when it runs next.
//! Times are offsets on a monotonic clock (`Duration` since an origin) plus
//! the wall clock where cron needs it, so tests inject both.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::check::Schedule;

/// Where in its first interval a check starts: a stable hash of its name,
/// so 10,000 checks spread evenly over the interval instead of bursting at
/// start-up, and a restart keeps each check's phase.
pub fn spread(name: &str, every: Duration) -> Duration {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let nanos = every.as_nanos().max(1);
    Duration::from_nanos((u128::from(hash) % nanos) as u64)
}

/// The first due time of a check, as an offset from `now`.
pub fn first_due(
    name: &str,
    schedule: &Schedule,
    now: Duration,
    wall: DateTime<Utc>,
) -> Option<Duration> {
    match schedule {
        Schedule::Every(every) => now.checked_add(phase(name, *every, wall)),
        Schedule::Cron(cron) => cron_due(cron, now, wall),
    }
}

/// How long from `wall` until the check is next due: at the instants whose
/// Unix time, less the check's [`spread`], is a multiple of `every`. A
/// function of the check and the wall clock, not of who runs it or when
/// it started: replicas sharing the checks agree on them, so a check that
/// moves to another replica keeps its phase (and so does a restarted
/// daemon).
pub fn phase(name: &str, every: Duration, wall: DateTime<Utc>) -> Duration {
    let every_ns = every.as_nanos().max(1) as i128;
    let offset = spread(name, every).as_nanos() as i128;
    let unix =
        i128::from(wall.timestamp()) * 1_000_000_000 + i128::from(wall.timestamp_subsec_nanos());
    let left = (offset - unix).rem_euclid(every_ns);
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// The due time after a run that was due at `due`, seen at `now`. A check
/// that fell behind (a stalled process, a suspended machine) runs once and
/// then keeps its phase: it never replays the ticks it missed.
pub fn next_due(
    schedule: &Schedule,
    due: Duration,
    now: Duration,
    wall: DateTime<Utc>,
) -> Option<Duration> {
    match schedule {
        Schedule::Every(every) => {
            let every = (*every).max(Duration::from_millis(1));
            // Checked: a due time past the clock's range is never due.
            let next = due.checked_add(every)?;
            if next > now {
                return Some(next);
            }
            let missed = (now - due).as_nanos() / every.as_nanos();
            let ahead = every.checked_mul(u32::try_from(missed + 1).unwrap_or(u32::MAX))?;
            due.checked_add(ahead)
        }
        Schedule::Cron(cron) => cron_due(cron, now, wall),
    }
}

/// The next cron fire after the wall-clock `wall`, mapped to the monotonic clock.
fn cron_due(
    cron: &crate::check::cron::Cron,
    now: Duration,
    wall: DateTime<Utc>,
) -> Option<Duration> {
    let at = cron.next_after(wall)?;
    let ahead = (at - wall).to_std().unwrap_or_default();
    now.checked_add(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::cron::Cron;

    const MIN: Duration = Duration::from_secs(60);

    fn wall(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn spread_is_stable_and_within_the_interval() {
        assert_eq!(spread("weather", MIN), spread("weather", MIN));
        assert_ne!(spread("weather", MIN), spread("diesel-order", MIN));
        for i in 0..1000 {
            assert!(spread(&format!("check-{i}"), MIN) < MIN);
        }
    }

    /// 10,000 checks every minute: no second of the first minute gets more
    /// than 1.5 times the average share of first runs.
    #[test]
    fn spread_of_ten_thousand_checks_is_even() {
        let mut per_second = [0u32; 60];
        for i in 0..10_000 {
            per_second[spread(&format!("check-{i:05}"), MIN).as_secs() as usize] += 1;
        }
        let max = per_second.iter().max().copied().unwrap_or(0);
        assert!(
            f64::from(max) <= 1.5 * 10_000.0 / 60.0,
            "busiest second has {max}"
        );
    }

    /// Two replicas, or one restarted, started at different moments, plan
    /// a check at the same instants.
    #[test]
    fn the_phase_is_the_wall_clocks_not_the_start_times() {
        let every = Duration::from_secs(30);
        let at = |w: &str| {
            wall(w) + chrono::TimeDelta::from_std(phase("weather", every, wall(w))).unwrap()
        };
        let first = at("2026-11-25T12:00:00Z");
        let later = at("2026-11-25T12:00:07.250Z");
        let delta = (later - first).num_nanoseconds().unwrap();
        assert_eq!(delta.rem_euclid(30_000_000_000), 0, "{first} {later}");
        assert!(phase("weather", every, wall("2026-11-25T12:00:00Z")) < every);
        assert_ne!(
            phase("weather", every, wall("2026-11-25T12:00:00Z")),
            phase("diesel-order", every, wall("2026-11-25T12:00:00Z"))
        );
    }

    #[test]
    fn intervals_keep_their_phase() {
        let every = Schedule::Every(Duration::from_secs(30));
        let due = Duration::from_secs(100);
        let w = wall("2026-11-25T12:00:00Z");
        assert_eq!(
            next_due(&every, due, due + Duration::from_millis(3), w),
            Some(Duration::from_secs(130))
        );
    }

    /// After a 10-minute stall a 30-second check runs once, then resumes at
    /// its next tick in phase, instead of running 20 times in a burst.
    #[test]
    fn a_stall_runs_once_not_once_per_missed_tick() {
        let every = Schedule::Every(Duration::from_secs(30));
        let due = Duration::from_secs(100);
        let now = Duration::from_secs(100 + 600 + 7);
        let next = next_due(&every, due, now, wall("2026-11-25T12:00:00Z")).unwrap();
        assert_eq!(next, Duration::from_secs(100 + 630));
        assert!(next > now);
    }

    #[test]
    fn cron_maps_wall_time_to_the_monotonic_clock() {
        let cron = Schedule::Cron(Cron::parse("0 9 * * 1", chrono_tz::Tz::UTC).unwrap());
        // Wednesday 2026-11-25 12:00 UTC; next Monday 09:00 is 4 days 21 hours away.
        let now = Duration::from_secs(5);
        let next = first_due("x", &cron, now, wall("2026-11-25T12:00:00Z")).unwrap();
        assert_eq!(next - now, Duration::from_secs((4 * 24 + 21) * 3600));
    }
}
