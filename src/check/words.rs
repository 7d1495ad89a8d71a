//! How durations, sizes and counts read to people, in one place: every
//! message, report and notification that shows one uses these.

use std::time::Duration;

/// A duration as people read it: `250ms`, `1.5s`, `29s`, `1m 30s`,
/// `2h 5m`, `3d 4h`. Whole seconds from ten seconds up; every non-zero
/// unit from days to seconds, so a configured value reads back as written.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        let tenths = d.as_millis() / 100;
        return match tenths % 10 {
            0 => format!("{}s", tenths / 10),
            t => format!("{}.{t}s", tenths / 10),
        };
    }
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (size, unit) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    parts.join(" ")
}

/// A size in the largest unit that writes it exactly: `10MiB`, `1MB`,
/// `512KiB`, `1500 bytes`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "kB"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    match bytes {
        1 => "1 byte".to_owned(),
        b => format!("{b} bytes"),
    }
}

/// `1 check`, `2 checks`: a count and a noun that takes an `s` when the
/// count is not one.
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(1999), "1.9s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_millis(29_400), "29s"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(3 * 86_400 + 4 * 3600), "3d 4h"),
        ];
        for (d, text) in cases {
            assert_eq!(human(d), text);
        }
    }

    #[test]
    fn sizes_read_back_as_configured() {
        for text in ["10MiB", "1MB", "512KiB", "1GiB", "2kB"] {
            assert_eq!(
                text.parse::<super::super::bounds::Size>()
                    .ok()
                    .map(|s| human_size(s.bytes()))
                    .as_deref(),
                Some(text)
            );
        }
        assert_eq!(human_size(1500 + 1), "1501 bytes");
        assert_eq!(human_size(1), "1 byte");
    }

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count(0, "check"), "0 checks");
        assert_eq!(count(1, "check"), "1 check");
        assert_eq!(count(3, "error"), "3 errors");
    }
}
