//! crontab(5) expressions, evaluated in the wall-clock time of a zone.
//!
//! Teams write crontab lines, so this follows crontab(5) and not the `cron` crate's own dialect
//! (seconds first, Sunday = 1, day fields ANDed). Fields are validated here, so errors carry byte
//! offsets, and then handed to the crate as explicit lists; the crate only enumerates naive
//! wall-clock times, and this module maps those onto instants across DST changes.

mod error;
mod field;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use chrono::{DateTime, LocalResult, Offset, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};

pub use error::CronError;
use field::{Unit, crate_list, crate_weekdays, days_in_month, parse_field};

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
                earliest(ahead, again)
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
        earliest(first, second)
    }
}

/// The earlier of two times, either of which may be missing.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
