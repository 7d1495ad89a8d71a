//! crontab(5) expressions, evaluated in the wall-clock time of a zone.
//!
//! Teams write crontab lines, so this follows crontab(5) and not the `cron` crate's own dialect
//! (seconds first, Sunday = 1, day fields ANDed). Fields are validated here, so errors carry byte
//! offsets, and then handed to the crate as explicit lists; the crate only enumerates naive
//! wall-clock times, and this module maps those onto instants across DST changes.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, Offset, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};

/// A crontab expression, parsed once, bound to a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    expr: String,
    tz: Tz,
    /// The hour field starts with `*`: the job follows elapsed time across DST changes.
    hour_wildcard: bool,
    /// Boxed: the crate's schedules are large, and a `Cron` sits in enums next to small variants.
    naive: Box<Naive>,
}

/// Naive wall-clock schedules, run by the `cron` crate.
#[derive(Debug, Clone, PartialEq)]
struct Naive {
    /// When both day fields are restricted, only the day-of-month half.
    schedule: cron::Schedule,
    /// The day-of-week half of crontab's day-of-month OR day-of-week.
    weekday_schedule: Option<cron::Schedule>,
}

/// Why an expression was rejected, and where (a byte range of the expression).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
}

impl Cron {
    /// Parse a crontab expression in the given zone.
    pub fn parse(expr: &str, tz: Tz) -> Result<Cron, CronError> {
        let fields = split_fields(expr);
        let fields = match fields.as_slice() {
            [(offset, word)] if word.starts_with('@') => {
                let expansion = shorthand(word).ok_or_else(|| CronError {
                    offset: *offset,
                    len: word.len(),
                    message: format!(
                        "unknown shorthand {word}; expected @yearly, @annually, @monthly, \
                         @weekly, @daily, @midnight or @hourly"
                    ),
                })?;
                // Offsets into the expansion are never reported: it is valid by construction.
                split_fields(expansion)
            }
            _ => fields,
        };
        let (seconds, rest) = match fields.len() {
            5 => (None, &fields[..]),
            6 => (Some(fields[0]), &fields[1..]),
            found => return Err(count_error(expr, &fields, found)),
        };
        let [minute, hour, dom, month, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];

        let seconds = match seconds {
            Some(field) => parse_field(field, Unit::Second)?,
            None => 1, // second 0
        };
        let minutes = parse_field(minute, Unit::Minute)?;
        let hours = parse_field(hour, Unit::Hour)?;
        let days = parse_field(dom, Unit::DayOfMonth)?;
        let months = parse_field(month, Unit::Month)?;
        let weekdays = parse_field(dow, Unit::DayOfWeek)?;
        // 7 is another name for Sunday.
        let weekdays = (weekdays | weekdays >> 7) & 0x7f;

        // crontab(5): a field starting with `*` counts as unrestricted even as `*/2`; only when
        // both day fields are restricted does a day matching either one fire.
        let either_day = !dom.1.starts_with('*') && !dow.1.starts_with('*');
        let dom_possible = (1..=12)
            .filter(|m| months & (1 << m) != 0)
            .any(|m| days & ((1u64 << (days_in_month(m) + 1)) - 1) != 0);
        if !dom_possible && !either_day {
            return Err(CronError {
                offset: dom.0,
                len: dom.1.len(),
                message: format!("day-of-month {} never occurs in month {}", dom.1, month.1),
            });
        }

        let crate_schedule = |days: &str, weekdays: &str| {
            let text = format!(
                "{} {} {} {} {} {}",
                crate_list(seconds, Unit::Second),
                crate_list(minutes, Unit::Minute),
                crate_list(hours, Unit::Hour),
                days,
                crate_list(months, Unit::Month),
                weekdays,
            );
            cron::Schedule::from_str(&text).map_err(|e| CronError {
                offset: 0,
                len: expr.len(),
                message: format!("internal error: the cron crate rejected {text:?}: {e}"),
            })
        };
        let days = crate_list(days, Unit::DayOfMonth);
        let weekdays = crate_weekdays(weekdays);
        let (schedule, weekday_schedule) = match (either_day, dom_possible) {
            (false, _) => (crate_schedule(&days, &weekdays)?, None),
            (true, true) => (
                crate_schedule(&days, "*")?,
                Some(crate_schedule("*", &weekdays)?),
            ),
            // `30 2 MON`: the day-of-month half never fires; don't make every call search to 2100.
            (true, false) => (crate_schedule("*", &weekdays)?, None),
        };

        Ok(Cron {
            expr: expr.to_owned(),
            tz,
            hour_wildcard: hour.1.starts_with('*'),
            naive: Box::new(Naive {
                schedule,
                weekday_schedule,
            }),
        })
    }

    /// The first fire instant strictly after `after`; `None` past 2100 (the cron crate's range).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Everything below is whole seconds: fires are, and flooring `after` keeps "strictly after".
        let after = after.timestamp();
        let wall = after + offset_at(self.tz, after)?;
        let fold = match resolve(self.tz, wall)? {
            Local::Twice(earlier, later) => {
                Some((fold_around(self.tz, earlier, later)?, after < later))
            }
            _ => None,
        };
        let fire = if self.hour_wildcard {
            self.next_elapsed(after, wall, fold)
        } else {
            self.next_fixed(after, wall, fold)
        }?;
        DateTime::from_timestamp(fire, 0)
    }

    /// The original text.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Fixed hour: each matching wall time runs once, at its first occurrence, or when a gap ends.
    /// That instant never decreases as the wall time grows, so the first match past what the
    /// clock has already shown is the answer.
    fn next_fixed(&self, after: i64, wall: i64, fold: Option<(Fold, bool)>) -> Option<i64> {
        let mut from = match fold {
            // Second pass through a repeated hour: all of it ran in the first pass.
            Some((fold, false)) => fold.end_local - 1,
            _ => wall,
        };
        loop {
            let local = self.next_local(from)?;
            match resolve(self.tz, local)? {
                Local::Once(t) | Local::Twice(t, _) | Local::Gap { ends: t, .. } if t > after => {
                    return Some(t);
                }
                _ => from = local,
            }
        }
    }

    /// Wildcard hour: fire whenever the clock shows a matching time, so skip gaps and fire in both
    /// passes through a repeated hour.
    fn next_elapsed(&self, after: i64, wall: i64, fold: Option<(Fold, bool)>) -> Option<i64> {
        let mut from = wall;
        let ahead = loop {
            let Some(local) = self.next_local(from) else {
                break None;
            };
            match resolve(self.tz, local)? {
                Local::Once(t) if t > after => break Some(t),
                Local::Twice(first, _) if first > after => break Some(first),
                Local::Twice(_, second) if second > after => break Some(second),
                Local::Gap { ends_local, .. } => from = ends_local - 1,
                _ => from = local,
            }
        };
        // In the first pass through a repeated hour, the second pass shows again wall times at or
        // before `wall`; they come after the transition, so they only matter if `ahead` does too.
        match fold {
            Some((fold, true)) if ahead.is_none_or(|t| t >= fold.transition) => {
                let again = self
                    .next_local(fold.start_local - 1)
                    .filter(|&local| local < fold.end_local)
                    .map(|local| fold.transition + (local - fold.start_local));
                match (ahead, again) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            _ => ahead,
        }
    }

    /// The first matching naive wall-clock time strictly after `local` (both as epoch seconds).
    fn next_local(&self, local: i64) -> Option<i64> {
        // The crate is run in `Utc` so that it treats these as plain wall-clock times.
        let start = DateTime::from_timestamp(local, 0)?;
        let first = self
            .naive
            .schedule
            .after(&start)
            .next()
            .map(|t| t.timestamp());
        let second = self
            .naive
            .weekday_schedule
            .as_ref()
            .and_then(|s| s.after(&start).next())
            .map(|t| t.timestamp());
        match (first, second) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a wall-clock time is in real time (epoch seconds).
enum Local {
    Once(i64),
    /// Shown twice, clocks went back: the earlier and the later instant.
    Twice(i64, i64),
    /// Skipped, clocks went forward: the first instant after the gap, and its wall time.
    Gap {
        ends: i64,
        ends_local: i64,
    },
}

fn resolve(tz: Tz, local: i64) -> Option<Local> {
    let naive = DateTime::from_timestamp(local, 0)?.naive_utc();
    Some(match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Local::Once(t.timestamp()),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp(), b.timestamp());
            Local::Twice(a.min(b), a.max(b))
        }
        LocalResult::None => {
            let ends = GapInfo::new(&naive, &tz)?.end?;
            Local::Gap {
                ends: ends.timestamp(),
                ends_local: ends.naive_local().and_utc().timestamp(),
            }
        }
    })
}

/// A repeated stretch of wall-clock time: `[start_local, end_local)` is shown before
/// `transition` and again from it.
#[derive(Clone, Copy)]
struct Fold {
    transition: i64,
    start_local: i64,
    end_local: i64,
}

/// The fold containing a wall time shown at both `earlier` and `later`.
fn fold_around(tz: Tz, earlier: i64, later: i64) -> Option<Fold> {
    // chrono-tz does not expose its transition table; the transition lies in (earlier, later],
    // usually an hour, so bisecting takes about a dozen lookups (and only inside a fold).
    let (before, after) = (offset_at(tz, earlier)?, offset_at(tz, later)?);
    let (mut lo, mut hi) = (earlier, later);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid)? == after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(Fold {
        transition: hi,
        start_local: hi + after,
        end_local: hi + before,
    })
}

/// The zone's offset from UTC at an instant, in seconds.
fn offset_at(tz: Tz, instant: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(instant, 0)?.naive_utc();
    Some(
        tz.offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc()
            .into(),
    )
}

#[derive(Clone, Copy)]
enum Unit {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::DayOfMonth => "day-of-month",
            Unit::Month => "month",
            Unit::DayOfWeek => "day-of-week",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Unit::Second | Unit::Minute => (0, 59),
            Unit::Hour => (0, 23),
            Unit::DayOfMonth => (1, 31),
            Unit::Month => (1, 12),
            Unit::DayOfWeek => (0, 7),
        }
    }

    /// Names allowed instead of numbers, and the number of the first one.
    fn names(self) -> (&'static [&'static str], u32) {
        match self {
            Unit::Month => (&MONTHS, 1),
            Unit::DayOfWeek => (&WEEKDAYS, 0),
            _ => (&[], 0),
        }
    }
}

/// Whitespace-separated words with their byte offsets.
fn split_fields(expr: &str) -> Vec<(usize, &str)> {
    let mut fields = Vec::new();
    let mut start = None;
    // Splitting at ASCII whitespace bytes never cuts a multi-byte character.
    for (i, byte) in expr.bytes().enumerate() {
        match (byte.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                fields.push((s, &expr[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        fields.push((s, &expr[s..]));
    }
    fields
}

fn count_error(expr: &str, fields: &[(usize, &str)], found: usize) -> CronError {
    // Too many: point at the extra fields; too few: at the whole expression.
    let (offset, len) = match fields.get(6) {
        Some(&(start, _)) => (start, expr.trim_end().len() - start),
        None => (0, expr.len()),
    };
    CronError {
        offset,
        len,
        message: format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) \
             or 6 (with seconds first), found {found}"
        ),
    }
}

fn shorthand(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// One field as a bitset of the values it selects (bit n = value n).
fn parse_field((offset, text): (usize, &str), unit: Unit) -> Result<u64, CronError> {
    parse_items(text, unit).map_err(|message| CronError {
        offset,
        len: text.len(),
        message,
    })
}

fn parse_items(text: &str, unit: Unit) -> Result<u64, String> {
    let (min, max) = unit.bounds();
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "{} field {text} has an empty list item",
                unit.name()
            ));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, unit)?)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((lo_text, hi_text)) = range.split_once('-') {
            let lo = parse_value(lo_text, item, unit)?;
            let mut hi = parse_value(hi_text, item, unit)?;
            // `SAT-SUN` reads like `6-7`: a named Sunday closes a range as 7.
            if hi == 0 && lo > 0 && hi_text.eq_ignore_ascii_case("SUN") {
                hi = 7;
            }
            if lo > hi {
                return Err(format!(
                    "{} range {range} is reversed; write the lower end first",
                    unit.name()
                ));
            }
            (lo, hi)
        } else {
            let value = parse_value(range, item, unit)?;
            // `a/n` means from a to the end of the range, every n.
            (value, if step.is_some() { max } else { value })
        };
        let mut value = lo;
        while value <= hi {
            bits |= 1 << value;
            value = value.saturating_add(step.unwrap_or(1));
        }
    }
    Ok(bits)
}

fn parse_step(text: &str, unit: Unit) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) => Err(format!("{} step must be at least 1, found 0", unit.name())),
        Ok(step) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(step),
        _ => Err(format!(
            "{} step {text:?} is not a positive number",
            unit.name()
        )),
    }
}

fn parse_value(text: &str, item: &str, unit: Unit) -> Result<u32, String> {
    let (min, max) = unit.bounds();
    if text.is_empty() {
        return Err(format!("{} item {item:?} is missing a value", unit.name()));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(format!(
                "{} value {text} is out of range {min}-{max}",
                unit.name()
            )),
        };
    }
    let (names, first) = unit.names();
    match names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        Some(index) => Ok(first + index as u32),
        None if names.is_empty() => Err(format!("{} value {text:?} is not a number", unit.name())),
        None => Err(format!(
            "{} value {text:?} is neither a number nor one of {}",
            unit.name(),
            names.join(" ")
        )),
    }
}

/// February counts 29: `29 2` is a leap-day job, not an error.
fn days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A bitset in the crate's syntax: `*` or an explicit list.
fn crate_list(bits: u64, unit: Unit) -> String {
    let (min, max) = unit.bounds();
    let mut values = (min..=max).filter(|v| bits & (1 << v) != 0).peekable();
    if bits.count_ones() == max - min + 1 {
        return "*".to_owned();
    }
    let mut text = String::new();
    while let Some(value) = values.next() {
        let _ = write!(text, "{value}");
        if values.peek().is_some() {
            text.push(',');
        }
    }
    text
}

/// Weekdays by name: the crate numbers them 1-7 from Sunday, names avoid that mismatch.
fn crate_weekdays(bits: u64) -> String {
    if bits == 0x7f {
        return "*".to_owned();
    }
    let names: Vec<&str> = (0..7)
        .filter(|d| bits & (1 << d) != 0)
        .map(|d| WEEKDAYS[d])
        .collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;
    use chrono_tz::UTC;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    /// The next `n` fires after `from`, in UTC.
    fn fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let cron = Cron::parse(expr, tz).expect("valid expression");
        let mut t = at(from);
        (0..n)
            .map(|_| {
                t = cron.next_after(t).expect("a next fire");
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            })
            .collect()
    }

    /// The next `n` fires after `from`, as weekday and wall-clock time in `tz`.
    fn local_fires(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let cron = Cron::parse(expr, tz).expect("valid expression");
        let mut t = at(from);
        (0..n)
            .map(|_| {
                t = cron.next_after(t).expect("a next fire");
                t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string()
            })
            .collect()
    }

    fn error(expr: &str) -> CronError {
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
    fn sunday_is_zero_seven_and_sun() {
        let sundays = ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"];
        for expr in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun"] {
            assert_eq!(
                local_fires(expr, UTC, "2026-01-01T00:00:00Z", 2),
                sundays,
                "{expr}"
            );
        }
    }

    #[test]
    fn weekday_ranges() {
        let days = |expr| -> Vec<String> {
            local_fires(expr, UTC, "2026-01-01T00:00:00Z", 5)
                .iter()
                .map(|d| d[..3].to_owned())
                .collect()
        };
        assert_eq!(days("0 0 * * 5-7"), ["Fri", "Sat", "Sun", "Fri", "Sat"]);
        assert_eq!(days("0 0 * * 1-5"), ["Fri", "Mon", "Tue", "Wed", "Thu"]);
        assert_eq!(days("0 0 * * MON-FRI"), days("0 0 * * 1-5"));
        assert_eq!(days("0 0 * * SAT-SUN"), ["Sat", "Sun", "Sat", "Sun", "Sat"]);
        assert_eq!(days("0 0 * * */2"), ["Sat", "Sun", "Tue", "Thu", "Sat"]);
        assert_eq!(days("0 0 * * 1,wed,5"), ["Fri", "Mon", "Wed", "Fri", "Mon"]);
    }

    #[test]
    fn minute_steps_and_lists() {
        assert_eq!(
            fires("*/2 * * * *", UTC, "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01 00:02:00",
                "2026-01-01 00:04:00",
                "2026-01-01 00:06:00"
            ]
        );
        assert_eq!(
            fires("10-30/10,45 * * * *", UTC, "2026-01-01T00:00:00Z", 5),
            [
                "2026-01-01 00:10:00",
                "2026-01-01 00:20:00",
                "2026-01-01 00:30:00",
                "2026-01-01 00:45:00",
                "2026-01-01 01:10:00",
            ]
        );
        assert_eq!(
            fires("50/5 * * * *", UTC, "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01 00:50:00",
                "2026-01-01 00:55:00",
                "2026-01-01 01:50:00"
            ]
        );
    }

    #[test]
    fn month_names() {
        assert_eq!(
            fires("0 0 1 JAN,jul *", UTC, "2026-01-01T00:00:00Z", 3),
            [
                "2026-07-01 00:00:00",
                "2027-01-01 00:00:00",
                "2027-07-01 00:00:00"
            ]
        );
        assert_eq!(
            fires("0 0 1 nov-DEC *", UTC, "2026-01-01T00:00:00Z", 2),
            ["2026-11-01 00:00:00", "2026-12-01 00:00:00"]
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
    fn out_of_range_values() {
        let e = error("60 * * * *");
        assert_eq!(e.to_string(), "minute value 60 is out of range 0-59");
        assert_eq!((e.offset, e.len), (0, 2));
        let e = error("0 9 * * 1,8");
        assert_eq!(e.to_string(), "day-of-week value 8 is out of range 0-7");
        assert_eq!((e.offset, e.len), (8, 3));
        assert_eq!(error("0 24 * * *").offset, 2);
        assert_eq!(
            error("0 0 0 * *").to_string(),
            "day-of-month value 0 is out of range 1-31"
        );
        assert_eq!(error("0 0 * 13 *").offset, 6);
        assert_eq!(error("60 0 0 * * *").offset, 0);
        assert_eq!(
            error("0 0 * * 99999999999").to_string(),
            "day-of-week value 99999999999 is out of range 0-7"
        );
    }

    #[test]
    fn malformed_fields() {
        let e = error("0 5-2 * * *");
        assert_eq!(
            e.to_string(),
            "hour range 5-2 is reversed; write the lower end first"
        );
        assert_eq!((e.offset, e.len), (2, 3));
        let e = error("*/0 * * * *");
        assert_eq!(e.to_string(), "minute step must be at least 1, found 0");
        assert_eq!((e.offset, e.len), (0, 3));
        assert_eq!(
            error("0 0 * * FUN").to_string(),
            "day-of-week value \"FUN\" is neither a number nor one of SUN MON TUE WED THU FRI SAT"
        );
        assert_eq!(error("0 0 * * FUN").offset, 8);
        assert_eq!(error("0 0 * JANUARY *").offset, 6);
        assert_eq!(
            error("0 MON * * *").to_string(),
            "hour value \"MON\" is not a number"
        );
        assert_eq!(
            error("1,,2 * * * *").to_string(),
            "minute field 1,,2 has an empty list item"
        );
        assert_eq!(
            error("0 0 * * 1-").to_string(),
            "day-of-week item \"1-\" is missing a value"
        );
        assert_eq!(
            error("*/x * * * *").to_string(),
            "minute step \"x\" is not a positive number"
        );
        assert_eq!(error("0 0 ? * *").offset, 4);
        assert_eq!(error("0 0 * * 6-0").offset, 8);
    }

    #[test]
    fn impossible_dates_are_errors() {
        let e = error("0 0 30 2 *");
        assert_eq!(e.to_string(), "day-of-month 30 never occurs in month 2");
        assert_eq!((e.offset, e.len), (4, 2));
        assert!(Cron::parse("0 0 29 2 *", UTC).is_ok());
        assert!(Cron::parse("0 0 31 4,5 *", UTC).is_ok());
    }
}
