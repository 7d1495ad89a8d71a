//! The durations and sizes a user writes (check files, `config.toml`,
//! maintenance windows, `once --wait`), with their limits in one place.
//! They are shown back to people by [`super::words`].
//!
//! A duration is from 1 ms to 366 days: below a millisecond nothing in a
//! check can be timed, and the upper bound keeps every deadline computed
//! from one (now + timeout) far inside what a clock can represent, while
//! still allowing a year of retention. A size is from 1 byte to 1 GiB.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::words::{human, human_size};

/// The shortest duration accepted.
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// The longest duration accepted: 366 days (so `"1y"` is accepted).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);
/// The largest size accepted: 1 GiB.
pub const MAX_SIZE: u64 = 1 << 30;

/// The units a duration is written in, for error messages.
const DURATION_UNITS: &str = "ms, s, m, h, d, w (e.g. \"500ms\", \"30s\", \"5m\", \"1h 30m\")";

/// A duration within [`MIN_DURATION`]..=[`MAX_DURATION`], parsed from text
/// such as `"30s"` or `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(Duration);

impl Period {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Period {
    type Err = BoundsError;

    fn from_str(s: &str) -> Result<Period, BoundsError> {
        let d = humantime::parse_duration(s).map_err(|e| duration_syntax(s, &e))?;
        match d {
            d if d < MIN_DURATION => Err(BoundsError::TooShort {
                written: s.to_owned(),
            }),
            d if d > MAX_DURATION => Err(BoundsError::TooLong {
                written: s.to_owned(),
            }),
            d => Ok(Period(d)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

/// Our own words for humantime's errors, which list its units as
/// "(and few variations)".
fn duration_syntax(s: &str, e: &humantime::DurationError) -> BoundsError {
    use humantime::DurationError as E;
    let problem = match e {
        E::Empty => "it is empty".to_owned(),
        E::UnknownUnit { unit, .. } if unit.is_empty() => "a number needs a unit".to_owned(),
        E::UnknownUnit { unit, .. } => format!("unknown unit {unit:?}"),
        E::NumberOverflow => "the number is too large".to_owned(),
        E::InvalidCharacter(_) | E::NumberExpected(_) => "expected a number and a unit".to_owned(),
    };
    BoundsError::Syntax(format!(
        "invalid duration {s:?}: {problem}; write a number and a unit: {DURATION_UNITS}"
    ))
}

/// A size in bytes within 1..=[`MAX_SIZE`], parsed from `"10MiB"`,
/// `"1.5 MB"` or a plain number of bytes; shown in the largest unit that
/// writes it exactly, so `10MiB` reads back as `10MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

impl Size {
    /// A size in bytes, checked against the limits.
    pub fn new(bytes: u64) -> Result<Size, BoundsError> {
        Size::checked(bytes, || bytes.to_string())
    }

    fn checked(bytes: u64, written: impl FnOnce() -> String) -> Result<Size, BoundsError> {
        match bytes {
            0 => Err(BoundsError::ZeroSize),
            b if b > MAX_SIZE => Err(BoundsError::TooLarge { written: written() }),
            b => Ok(Size(b)),
        }
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = BoundsError;

    fn from_str(s: &str) -> Result<Size, BoundsError> {
        let bytes = parse_size(s).ok_or_else(|| {
            BoundsError::Syntax(format!(
                "invalid size {s:?}; write a number and a unit: B, kB, MB, GB, KiB, MiB, GiB (e.g. \"512KiB\", \"10MiB\")"
            ))
        })?;
        Size::checked(bytes, || s.to_owned())
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human_size(self.0))
    }
}

/// Parses `"10MiB"`, `"1.5 MB"`, `"512"`: decimal (kB, MB, GB) and binary
/// (KiB, MiB, GiB) units. `None` for anything else; no bounds.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

/// A value out of bounds, or not a duration or size at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("{0}")]
    Syntax(String),
    /// Holds the duration as written.
    #[error(
        "duration {written:?} is too short: the shortest is {}",
        human(MIN_DURATION)
    )]
    TooShort { written: String },
    #[error(
        "duration {written:?} is too long: the longest is {}",
        human(MAX_DURATION)
    )]
    TooLong { written: String },
    #[error("a size must be greater than zero")]
    ZeroSize,
    /// Holds the size as written.
    #[error(
        "size {written:?} is too large: the largest is {}",
        human_size(MAX_SIZE)
    )]
    TooLarge { written: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_within_bounds() {
        assert_eq!("30s".parse(), Ok(Period(Duration::from_secs(30))));
        assert_eq!("1ms".parse(), Ok(Period(MIN_DURATION)));
        assert_eq!(
            "1y".parse::<Period>().map(|p| p.get() <= MAX_DURATION),
            Ok(true)
        );
        assert_eq!(
            "500us".parse::<Period>(),
            Err(BoundsError::TooShort {
                written: "500us".into()
            })
        );
        assert_eq!(
            "18446744073709551615s".parse::<Period>(),
            Err(BoundsError::TooLong {
                written: "18446744073709551615s".into()
            })
        );
    }

    #[test]
    fn duration_errors_name_the_accepted_units() {
        let err = "5 parsecs".parse::<Period>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid duration \"5 parsecs\": unknown unit \"parsecs\"; write a number and a unit: \
             ms, s, m, h, d, w (e.g. \"500ms\", \"30s\", \"5m\", \"1h 30m\")"
        );
        for bad in ["", "5", "m", "five minutes", "99999999999999999999999s"] {
            let err = bad.parse::<Period>().unwrap_err().to_string();
            assert!(!err.contains("variations"), "{bad:?}: {err}");
            assert!(err.contains("ms, s, m, h, d, w"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sizes_within_bounds() {
        assert_eq!("10MiB".parse(), Ok(Size(10 * 1024 * 1024)));
        assert_eq!("1.5 kB".parse(), Ok(Size(1500)));
        assert_eq!("42".parse(), Ok(Size(42)));
        assert_eq!("0".parse::<Size>(), Err(BoundsError::ZeroSize));
        assert_eq!(
            "2GiB".parse::<Size>(),
            Err(BoundsError::TooLarge {
                written: "2GiB".into()
            })
        );
        assert_eq!(
            Size::new(1 << 31),
            Err(BoundsError::TooLarge {
                written: "2147483648".into()
            })
        );
        assert!(matches!(
            "3 parsecs".parse::<Size>(),
            Err(BoundsError::Syntax(_))
        ));
    }
}
