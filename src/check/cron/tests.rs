//! Fire times across zones and DST changes, and expression-level errors; the syntax of a single
//! field is tested in `field.rs`.

use super::*;
use chrono_tz::Europe::Berlin;
use chrono_tz::UTC;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

/// The next `n` fires after `from`, in UTC.
pub(super) fn fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
    next_fires(expr, tz, from, n, |t| {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    })
}

/// The next `n` fires after `from`, as weekday and wall-clock time in `tz`.
pub(super) fn local_fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
    next_fires(expr, tz, from, n, |t| {
        t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string()
    })
}

/// The next `n` fires after `from`, each written by `show`.
fn next_fires(
    expr: &str,
    tz: Tz,
    from: &str,
    n: usize,
    show: impl Fn(DateTime<Utc>) -> String,
) -> Vec<String> {
    let cron = Cron::parse(expr, tz).expect("valid expression");
    let mut t = at(from);
    (0..n)
        .map(|_| {
            t = cron.next_after(t).expect("a next fire");
            show(t)
        })
        .collect()
}

pub(super) fn error(expr: &str) -> CronError {
    Cron::parse(expr, UTC).expect_err("an invalid expression")
}

#[test]
fn mondays_at_nine_in_utc() {
    assert_eq!(
        fires("0 9 * * 1", UTC, "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-05 09:00:00",
            "2026-01-12 09:00:00",
            "2026-01-19 09:00:00"
        ]
    );
}

#[test]
fn mondays_at_nine_in_berlin_keep_wall_time_across_dst() {
    assert_eq!(
        fires("0 9 * * 1", Berlin, "2026-03-20T00:00:00Z", 3),
        [
            "2026-03-23 08:00:00",
            "2026-03-30 07:00:00",
            "2026-04-06 07:00:00"
        ]
    );
    assert_eq!(
        local_fires("0 9 * * 1", Berlin, "2026-03-20T00:00:00Z", 2),
        ["Mon 2026-03-23 09:00", "Mon 2026-03-30 09:00"]
    );
}

#[test]
fn next_after_is_strict_and_ignores_subseconds() {
    let cron = Cron::parse("0 9 * * *", UTC).expect("valid");
    assert_eq!(
        cron.next_after(at("2026-01-05T09:00:00Z")),
        Some(at("2026-01-06T09:00:00Z"))
    );
    assert_eq!(
        cron.next_after(at("2026-01-05T08:59:59.999Z")),
        Some(at("2026-01-05T09:00:00Z"))
    );
}

#[test]
fn restricted_day_of_month_and_weekday_fire_on_either() {
    // September 2026 starts on a Tuesday.
    assert_eq!(
        local_fires("0 9 1 * MON", UTC, "2026-08-25T00:00:00Z", 6),
        [
            "Mon 2026-08-31 09:00",
            "Tue 2026-09-01 09:00",
            "Mon 2026-09-07 09:00",
            "Mon 2026-09-14 09:00",
            "Mon 2026-09-21 09:00",
            "Mon 2026-09-28 09:00",
        ]
    );
    // A day-of-month that never happens leaves the weekday half.
    assert_eq!(
        local_fires("0 9 30 2 MON", UTC, "2026-01-01T00:00:00Z", 2),
        ["Mon 2026-02-02 09:00", "Mon 2026-02-09 09:00"]
    );
}

#[test]
fn star_prefixed_day_field_combines_with_and() {
    // `*/10` counts as unrestricted in crontab(5), so both must match: Mondays on 1, 11, 21, 31.
    assert_eq!(
        local_fires("0 9 */10 * MON", UTC, "2026-01-01T00:00:00Z", 2),
        ["Mon 2026-05-11 09:00", "Mon 2026-06-01 09:00"]
    );
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        fires("*/30 * * * * *", UTC, "2026-01-01T00:00:10Z", 3),
        [
            "2026-01-01 00:00:30",
            "2026-01-01 00:01:00",
            "2026-01-01 00:01:30"
        ]
    );
}

#[test]
fn shorthands_expand() {
    assert_eq!(
        fires("@daily", Berlin, "2026-01-01T00:00:00Z", 1),
        ["2026-01-01 23:00:00"]
    );
    assert_eq!(
        fires("@hourly", UTC, "2026-01-01T00:30:00Z", 1),
        ["2026-01-01 01:00:00"]
    );
    assert_eq!(
        error("@reboot").message.split(';').next(),
        Some("unknown shorthand @reboot")
    );
}

#[test]
fn accessors_return_what_was_parsed() {
    let cron = Cron::parse(" 0 9 * * 1 ", Berlin).expect("valid");
    assert_eq!(cron.expr(), " 0 9 * * 1 ");
    assert_eq!(cron.timezone(), Berlin);
}

#[test]
fn fixed_hour_in_spring_gap_runs_once_when_the_gap_ends() {
    // Berlin 2026-03-29: 02:00 local becomes 03:00 (01:00 UTC).
    assert_eq!(
        fires("30 2 * * *", Berlin, "2026-03-28T12:00:00Z", 2),
        ["2026-03-29 01:00:00", "2026-03-30 00:30:00"]
    );
    assert_eq!(
        local_fires("30 2 * * *", Berlin, "2026-03-28T12:00:00Z", 2),
        ["Sun 2026-03-29 03:00", "Mon 2026-03-30 02:30"]
    );
    // Several skipped times, and 03:00 itself, collapse into one run.
    assert_eq!(
        local_fires("0,30 2,3 * * *", Berlin, "2026-03-28T12:00:00Z", 3),
        [
            "Sun 2026-03-29 03:00",
            "Sun 2026-03-29 03:30",
            "Mon 2026-03-30 02:00"
        ]
    );
}

#[test]
fn wildcard_hour_skips_the_spring_gap() {
    assert_eq!(
        fires("*/15 * * * *", Berlin, "2026-03-29T00:40:00Z", 3),
        [
            "2026-03-29 00:45:00",
            "2026-03-29 01:00:00",
            "2026-03-29 01:15:00"
        ]
    );
    assert_eq!(
        local_fires("*/15 * * * *", Berlin, "2026-03-29T00:40:00Z", 2),
        ["Sun 2026-03-29 01:45", "Sun 2026-03-29 03:00"]
    );
    // 02:00 never happens that day, so the next is 04:00.
    assert_eq!(
        local_fires("0 */2 29 3 *", Berlin, "2026-03-29T00:00:00Z", 1),
        ["Sun 2026-03-29 04:00"]
    );
}

#[test]
fn fixed_hour_runs_once_in_the_repeated_hour() {
    // Berlin 2026-10-25: 03:00 local becomes 02:00 again (at 01:00 UTC).
    assert_eq!(
        fires("30 2 * * *", Berlin, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25 00:30:00", "2026-10-26 01:30:00"]
    );
    // Asked during the second pass, it does not run again.
    assert_eq!(
        fires("30 2 * * *", Berlin, "2026-10-25T01:00:00Z", 1),
        ["2026-10-26 01:30:00"]
    );
    assert_eq!(
        fires("* 2 * * *", Berlin, "2026-10-25T01:10:00Z", 1),
        ["2026-10-26 01:00:00"]
    );
}

#[test]
fn wildcard_hour_runs_in_both_passes_of_the_repeated_hour() {
    assert_eq!(
        fires("*/30 * * * *", Berlin, "2026-10-24T23:45:00Z", 5),
        [
            "2026-10-25 00:00:00",
            "2026-10-25 00:30:00",
            "2026-10-25 01:00:00",
            "2026-10-25 01:30:00",
            "2026-10-25 02:00:00",
        ]
    );
    // From inside the first pass, the next is the start of the second pass.
    assert_eq!(
        fires("0 * * * *", Berlin, "2026-10-25T00:20:00Z", 2),
        ["2026-10-25 01:00:00", "2026-10-25 02:00:00"]
    );
    // Only 02:00 matches that day (hours 0, 2, 4...): 04:00 comes after both passes.
    assert_eq!(
        local_fires("0 */2 25 10 *", Berlin, "2026-10-25T00:00:00Z", 2),
        ["Sun 2026-10-25 02:00", "Sun 2026-10-25 04:00"]
    );
}

#[test]
fn a_year_of_runs_in_berlin() {
    let count = |expr: &str| {
        let cron = Cron::parse(expr, Berlin).expect("valid");
        let (mut t, end) = (at("2025-12-31T23:59:59Z"), at("2027-01-01T00:00:00Z"));
        let mut n = 0;
        while let Some(next) = cron.next_after(t).filter(|&next| next < end) {
            assert!(next > t);
            (t, n) = (next, n + 1);
        }
        n
    };
    // Elapsed-time jobs see every real hour; fixed-hour jobs run once a day, DST or not.
    assert_eq!(count("0 * * * *"), 365 * 24);
    assert_eq!(count("30 2 * * *"), 365);
    assert_eq!(count("0 3 * * *"), 365);
}

#[test]
fn wrong_field_count() {
    let e = error("0 9 * *");
    assert_eq!(
        e.to_string(),
        "expected 5 fields (minute hour day-of-month month day-of-week) \
         or 6 (with seconds first), found 4"
    );
    assert_eq!((e.offset, e.len), (0, 7));
    let e = error("0 0 9 * * 1 2026 x");
    assert_eq!((e.offset, e.len), (12, 6));
    assert_eq!(error("").message.rsplit(' ').next(), Some("0"));
}

#[test]
fn impossible_dates_are_errors() {
    let e = error("0 0 30 2 *");
    assert_eq!(e.to_string(), "day-of-month 30 never occurs in month 2");
    assert_eq!((e.offset, e.len), (4, 2));
    assert!(Cron::parse("0 0 29 2 *", UTC).is_ok());
    assert!(Cron::parse("0 0 31 4,5 *", UTC).is_ok());
}
