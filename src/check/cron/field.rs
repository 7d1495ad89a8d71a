//! One crontab field: its items, ranges, steps and names, parsed into a bitset of the values it
//! selects, and that bitset written back in the `cron` crate's syntax.

use std::fmt::Write as _;

use super::error::CronError;

#[derive(Clone, Copy)]
pub(super) enum Unit {
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

/// One field as a bitset of the values it selects (bit n = value n).
pub(super) fn parse_field((offset, text): (usize, &str), unit: Unit) -> Result<u64, CronError> {
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
pub(super) fn days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A bitset in the crate's syntax: `*` or an explicit list.
pub(super) fn crate_list(bits: u64, unit: Unit) -> String {
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
pub(super) fn crate_weekdays(bits: u64) -> String {
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
    use crate::check::cron::tests::{error, fires, local_fires};
    use chrono_tz::UTC;

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
}
