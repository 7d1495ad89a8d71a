//! Values read out of a page: dates judged by their age, numbers judged by
//! their range. Formats are parsed and validated once, at load; judging is
//! pure and takes "now" as an argument, so a test can pin every age.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use chrono::format::{Item, ParseErrorKind, StrftimeItems};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

/// How far in the future a date may lie before it counts as wrong: the
/// site's clock and ours are never quite the same.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A date on the page must be no older than `max_age`.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    pub max_age: Duration,
    pub format: DateFormat,
}

/// How a date is written.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// `2026-11-25T19:00:00Z`, `2026-11-25T20:00:00+01:00`.
    Rfc3339,
    /// `Wed, 25 Nov 2026 19:00:00 +0000`.
    Rfc2822,
    /// An HTTP date, as in `Last-Modified`: `Wed, 25 Nov 2026 19:00:00 GMT`.
    Http,
    /// A strftime pattern. A date without an offset is read in `tz`; a
    /// pattern without a time of day means midnight.
    Strftime { pattern: String, tz: Tz },
}

/// Inclusive bounds on a number read from the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One value a query picked, as a value predicate sees it.
#[derive(Debug)]
pub enum Found<'v> {
    Text(Cow<'v, str>),
    Json(&'v serde_json::Value),
    /// An element without the attribute the query asks for.
    NoAttribute,
}

/// Why a date format cannot be used, and where in the pattern (bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
    pub at: Option<Range<usize>>,
}

impl DateFormat {
    /// `rfc3339`, `rfc2822`, `http`, or a strftime pattern (it has a `%`)
    /// read in `tz`. A pattern is tried on a sample date here, so one that
    /// cannot read a full date fails at load, not at the first run.
    pub fn parse(s: &str, tz: Tz) -> Result<DateFormat, FormatError> {
        for (name, format) in [
            ("rfc3339", DateFormat::Rfc3339),
            ("rfc2822", DateFormat::Rfc2822),
            ("http", DateFormat::Http),
        ] {
            if s.eq_ignore_ascii_case(name) {
                return Ok(format);
            }
        }
        if !s.contains('%') {
            return Err(FormatError {
                message: format!(
                    "unknown date format {s:?}: write \"rfc3339\", \"rfc2822\", \"http\" \
                     or a strftime pattern such as \"%d %b %Y, %H:%M\""
                ),
                at: None,
            });
        }
        if let Some(at) = bad_specifier(s) {
            let spec = &s[at.clone()];
            return Err(FormatError {
                message: format!("invalid date format {s:?}: `{spec}` is not a strftime field"),
                at: Some(at),
            });
        }
        let format = DateFormat::Strftime {
            pattern: s.to_owned(),
            tz,
        };
        // Write a sample date with the pattern and read it back: a pattern
        // without a year, say, cannot be read.
        let sample = tz.with_ymd_and_hms(2026, 3, 7, 14, 5, 9).earliest();
        let mut written = String::new();
        let wrote = sample.map(|t| {
            use std::fmt::Write as _;
            write!(written, "{}", t.format(s)).is_ok()
        });
        match (wrote, format.read(&written)) {
            (Some(true), Some(_)) => Ok(format),
            _ => Err(FormatError {
                message: format!(
                    "date format {s:?} cannot be read back as a date: \
                     it needs at least a year, a month and a day"
                ),
                at: None,
            }),
        }
    }

    /// The instant `text` names, if it is a date in this format.
    pub fn read(&self, text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        match self {
            DateFormat::Rfc3339 => DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()),
            DateFormat::Rfc2822 => DateTime::parse_from_rfc2822(text).ok().map(|t| t.to_utc()),
            DateFormat::Http => httpdate::parse_http_date(text).ok().map(DateTime::from),
            DateFormat::Strftime { pattern, tz } => read_strftime(text, pattern, *tz),
        }
    }

    /// Whether a time zone means anything to this format: the others
    /// carry their offset in the text.
    pub fn takes_time_zone(&self) -> bool {
        matches!(self, DateFormat::Strftime { .. })
    }
}

/// With an offset (or a Unix timestamp) in the text, that; otherwise the
/// local date and time in `tz`, midnight when the pattern has no time.
fn read_strftime(text: &str, pattern: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let not_enough = |e: &chrono::ParseError| e.kind() == ParseErrorKind::NotEnough;
    let naive = match DateTime::parse_from_str(text, pattern) {
        Ok(t) => return Some(t.to_utc()),
        Err(e) if not_enough(&e) => match NaiveDateTime::parse_from_str(text, pattern) {
            Ok(t) => t,
            Err(e) if not_enough(&e) => NaiveDate::parse_from_str(text, pattern)
                .ok()?
                .and_hms_opt(0, 0, 0)?,
            Err(_) => return None,
        },
        Err(_) => return None,
    };
    // In the repeated hour of a fall-back night, the earlier reading: the
    // date then looks older, never fresher, than it may be.
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.to_utc()),
        LocalResult::None => None,
    }
}

/// The byte range of the first specifier chrono does not know, if any.
fn bad_specifier(pattern: &str) -> Option<Range<usize>> {
    let invalid = |s: &str| StrftimeItems::new(s).any(|i| matches!(i, Item::Error));
    if !invalid(pattern) {
        return None;
    }
    // A specifier is `%`, optional flags and modifiers, then one letter (or
    // `%`, `+`): `%d`, `%-d`, `%:z`, `%.3f`.
    let mut from = 0;
    while let Some(i) = pattern[from..].find('%').map(|i| i + from) {
        let end = pattern[i + 1..]
            .char_indices()
            .find(|&(_, c)| c.is_ascii_alphabetic() || c == '%' || c == '+' || c == ' ')
            .map_or(pattern.len(), |(j, c)| i + 1 + j + c.len_utf8());
        if invalid(&pattern[i..end]) {
            return Some(i..end);
        }
        from = end;
    }
    Some(0..pattern.len())
}

impl Freshness {
    /// Whether the date in `found` is no older than `max_age` at `now`, and
    /// not in the future beyond the clock skew; the error says what was seen.
    pub fn judge(&self, found: &Found, now: DateTime<Utc>) -> Result<(), String> {
        let text = match found {
            Found::Text(t) => t.as_ref(),
            Found::Json(serde_json::Value::String(s)) => s.as_str(),
            Found::Json(other) => return Err(format!("{other} is not a date")),
            Found::NoAttribute => return Err("the element has no such attribute".into()),
        };
        let Some(then) = self.format.read(text) else {
            return Err(format!("{text:?} is not a date in format {}", self.format));
        };
        let when = then.to_rfc3339_opts(SecondsFormat::Secs, true);
        let age = now.signed_duration_since(then);
        let limit = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        if age > limit(self.max_age) {
            let ago = span(age.num_seconds());
            let within = short(self.max_age);
            return Err(format!(
                "updated {ago} ago ({when}), expected within {within}"
            ));
        }
        if -age > limit(CLOCK_SKEW) {
            let ahead = span((-age).num_seconds());
            let skew = short(CLOCK_SKEW);
            return Err(format!(
                "dated {ahead} in the future ({when}), more than the {skew} allowed for clock skew"
            ));
        }
        Ok(())
    }
}

impl NumberRange {
    pub fn contains(&self, x: f64) -> bool {
        self.min.is_none_or(|m| x >= m) && self.max.is_none_or(|m| x <= m)
    }

    /// Whether `found` holds a number within the range: a JSON number, or
    /// the first number in a text.
    pub fn judge(&self, found: &Found) -> Result<(), String> {
        let (number, text) = match found {
            Found::Json(serde_json::Value::Number(n)) => (n.as_f64(), None),
            Found::Json(serde_json::Value::String(s)) => (first_number(s), Some(s.as_str())),
            Found::Json(other) => return Err(format!("{other} has no number")),
            Found::Text(t) => (first_number(t), Some(t.as_ref())),
            Found::NoAttribute => return Err("the element has no such attribute".into()),
        };
        let Some(x) = number else {
            return Err(format!("{:?} has no number", text.unwrap_or_default()));
        };
        if self.contains(x) {
            return Ok(());
        }
        let seen = match text {
            Some(t) if t.trim() != x.to_string() => format!("{x} (in {t:?})"),
            _ => x.to_string(),
        };
        Err(format!("expected a number {self}, got {seen}"))
    }
}

/// The first number in `text`: digits with an optional decimal point or
/// comma, negative after `-` or `−` (U+2212) unless that joins it to a
/// word (`t-5`, `2026-11`). Thousands separators are not understood:
/// `1,500` reads as 1.5, as a decimal comma.
pub fn first_number(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let before: Vec<char> = text[..start].chars().rev().take(2).collect();
    let negative = match before.as_slice() {
        ['-' | '−', prev, ..] => !prev.is_alphanumeric(),
        ['-' | '−'] => true,
        _ => false,
    };
    let rest = &text[start..];
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let mut number = String::from(if negative { "-" } else { "" });
    number.push_str(&rest[..int_end]);
    let after = &rest[int_end..];
    if let Some(frac) = after.strip_prefix(['.', ',']) {
        let frac_end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if frac_end > 0 {
            number.push('.');
            number.push_str(&frac[..frac_end]);
        }
    }
    number.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `3 days`, `2 hours 5 minutes`, `41 seconds`: the largest unit and the
/// next one, which is as precise as a reader needs.
fn span(secs: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let secs = secs.max(0);
    let plural = |n: i64, unit: &str| match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    };
    let i = UNITS
        .iter()
        .position(|&(size, _)| secs >= size)
        .unwrap_or(UNITS.len() - 1);
    let (size, unit) = UNITS[i];
    let mut out = plural(secs / size, unit);
    if let Some(&(next, next_unit)) = UNITS.get(i + 1) {
        let rest = secs % size / next;
        if rest > 0 {
            out.push(' ');
            out.push_str(&plural(rest, next_unit));
        }
    }
    out
}

/// A bound as a check file writes it: `30m`, `2h`, `1d`, `1h 30m`.
fn short(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (size, unit) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    match parts.is_empty() {
        true => format!("{}ms", d.as_millis()),
        false => parts.join(" "),
    }
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateFormat::Rfc3339 => f.write_str("rfc3339"),
            DateFormat::Rfc2822 => f.write_str("rfc2822"),
            DateFormat::Http => f.write_str("http"),
            DateFormat::Strftime { pattern, tz } if *tz == Tz::UTC => write!(f, "{pattern:?}"),
            DateFormat::Strftime { pattern, tz } => write!(f, "{pattern:?} ({tz})"),
        }
    }
}

impl fmt::Display for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a date in format {} within {}",
            self.format,
            short(self.max_age)
        )
    }
}

/// `between -50 and 60`, `at least 0`, `at most 60`.
impl fmt::Display for NumberRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) => write!(f, "between {a} and {b}"),
            (Some(a), None) => write!(f, "of at least {a}"),
            (None, Some(b)) => write!(f, "of at most {b}"),
            (None, None) => f.write_str("of any size"),
        }
    }
}

#[cfg(test)]
mod tests;
