//! How sinks write what an incident says: times, text cut to a receiver's
//! limit, the instance group.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::incident::Incident;

/// At most `max` characters of `s`, the last one `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if s.chars().count() > max => format!("{}…", &s[..cut]),
        _ => s.to_owned(),
    }
}

/// The instance group an incident's key names (`scarecrow:{group}:{check}`).
pub fn instance_group(incident: &Incident) -> Option<&str> {
    crate::incident::key::instance_group(&incident.key)
}

/// RFC 3339 in UTC with milliseconds: one fixed width, so equal times
/// render equally.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_helpers() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ääää", 3), "ää…");
        let [declared, _] = crate::sink::test_events::test_events(
            "shop",
            crate::incident::Roles::default(),
            Utc::now(),
        );
        assert_eq!(instance_group(&declared.incident), Some("shop"));
    }
}
