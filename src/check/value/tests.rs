//! Dates, ages and numbers: the parsing and judging in `value.rs`, then the
//! same predicates through a document, as a check runs them.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).unwrap()
}

fn fresh(format: DateFormat, max_age: &str) -> Freshness {
    Freshness {
        max_age: humantime::parse_duration(max_age).unwrap(),
        format,
    }
}

fn text(s: &str) -> Found<'_> {
    Found::Text(Cow::Borrowed(s))
}

const NOW: &str = "2026-11-25T19:07:31Z";

#[test]
fn named_formats_read_their_dates() {
    let utc = |f: DateFormat, s: &str| f.read(s).map(|t| t.to_rfc3339());
    let want = Some("2026-11-25T19:00:00+00:00".to_owned());
    assert_eq!(
        utc(DateFormat::Rfc3339, " 2026-11-25T20:00:00+01:00 "),
        want
    );
    assert_eq!(utc(DateFormat::Rfc3339, "2026-11-25T19:00:00Z"), want);
    assert_eq!(
        utc(DateFormat::Rfc2822, "Wed, 25 Nov 2026 19:00:00 +0000"),
        want
    );
    assert_eq!(utc(DateFormat::Http, "Wed, 25 Nov 2026 19:00:00 GMT"), want);
    assert_eq!(utc(DateFormat::Rfc3339, "2026-11-25 19:00"), None);
    assert_eq!(utc(DateFormat::Http, "yesterday"), None);
}

#[test]
fn strftime_reads_in_its_time_zone_unless_the_text_has_an_offset() {
    let berlin = DateFormat::parse("%d.%m.%Y %H:%M", chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(
        berlin.read("25.11.2026 20:00"),
        Some(at("2026-11-25T19:00:00Z"))
    );
    // Summer time: two hours ahead.
    assert_eq!(
        berlin.read("25.07.2026 20:00"),
        Some(at("2026-07-25T18:00:00Z"))
    );
    // The spring-forward gap has no such local time.
    assert_eq!(berlin.read("29.03.2026 02:30"), None);
    // The fall-back night's repeated hour reads as the earlier one.
    assert_eq!(
        berlin.read("25.10.2026 02:30"),
        Some(at("2026-10-25T00:30:00Z"))
    );

    let page = DateFormat::parse("%d %b %Y, %H:%M UTC", Tz::UTC).unwrap();
    assert_eq!(
        page.read("25 Nov 2026, 19:00 UTC"),
        Some(at("2026-11-25T19:00:00Z"))
    );
    let offset = DateFormat::parse("%Y-%m-%d %H:%M %z", chrono_tz::Asia::Tokyo).unwrap();
    assert_eq!(
        offset.read("2026-11-25 20:00 +0100"),
        Some(at("2026-11-25T19:00:00Z"))
    );
    let day = DateFormat::parse("%Y-%m-%d", chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(day.read("2026-11-25"), Some(at("2026-11-24T23:00:00Z")));
    let unix = DateFormat::parse("%s", chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(unix.read("1795633200"), Some(at("2026-11-25T19:00:00Z")));
}

#[test]
fn formats_are_checked_when_parsed() {
    let err = |s: &str| DateFormat::parse(s, Tz::UTC).unwrap_err();
    let e = err("%d %Q %Y");
    assert_eq!(
        e.message,
        r#"invalid date format "%d %Q %Y": `%Q` is not a strftime field"#
    );
    assert_eq!(e.at, Some(3..5));
    assert_eq!(err("%Y-%m-%d %").at, Some(9..10));
    assert!(err("%H:%M").message.contains("needs at least a year"));
    assert!(err("%d %b").message.contains("cannot be read back"));
    assert!(
        err("iso8601")
            .message
            .starts_with("unknown date format \"iso8601\"")
    );
    assert_eq!(
        DateFormat::parse("RFC3339", Tz::UTC),
        Ok(DateFormat::Rfc3339)
    );
    assert!(DateFormat::parse("%-d %b %Y %:z %%", Tz::UTC).is_ok());
}

#[test]
fn ages_are_exact_at_a_pinned_now() {
    let f = fresh(DateFormat::Rfc3339, "2h");
    let now = at(NOW);
    assert_eq!(f.judge(&text("2026-11-25T19:00:00Z"), now), Ok(()));
    assert_eq!(
        f.judge(&text("2026-11-22T19:00:00Z"), now).unwrap_err(),
        "updated 3 days ago (2026-11-22T19:00:00Z), expected within 2h"
    );
    assert_eq!(
        f.judge(&text("2026-11-25T16:07:30Z"), now).unwrap_err(),
        "updated 3 hours ago (2026-11-25T16:07:30Z), expected within 2h"
    );
    assert_eq!(
        fresh(DateFormat::Rfc3339, "30m")
            .judge(&text("2026-11-25T18:30:00Z"), now)
            .unwrap_err(),
        "updated 37 minutes 31 seconds ago (2026-11-25T18:30:00Z), expected within 30m"
    );
    // Exactly at the bound still counts as fresh.
    assert_eq!(f.judge(&text("2026-11-25T17:07:31Z"), now), Ok(()));
    assert_eq!(
        fresh(DateFormat::Http, "1d")
            .judge(&text("Sun, 22 Nov 2026 13:00:00 GMT"), now)
            .unwrap_err(),
        "updated 3 days 6 hours ago (2026-11-22T13:00:00Z), expected within 1d"
    );
}

#[test]
fn dates_from_the_future_fail_beyond_the_clock_skew() {
    let f = fresh(DateFormat::Rfc3339, "2h");
    let now = at(NOW);
    assert_eq!(f.judge(&text("2026-11-25T19:12:31Z"), now), Ok(()));
    assert_eq!(
        f.judge(&text("2026-11-25T20:08:31Z"), now).unwrap_err(),
        "dated 1 hour 1 minute in the future (2026-11-25T20:08:31Z), \
         more than the 5m allowed for clock skew"
    );
}

#[test]
fn what_is_not_a_date_is_named() {
    let f = fresh(DateFormat::Rfc3339, "2h");
    let now = at(NOW);
    assert_eq!(
        f.judge(&text("yesterday"), now).unwrap_err(),
        r#""yesterday" is not a date in format rfc3339"#
    );
    let json = serde_json::json!(17);
    assert_eq!(
        f.judge(&Found::Json(&json), now).unwrap_err(),
        "17 is not a date"
    );
    let berlin = DateFormat::parse("%d.%m.%Y", chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(
        fresh(berlin, "1d").judge(&text("morgen"), now).unwrap_err(),
        r#""morgen" is not a date in format "%d.%m.%Y" (Europe/Berlin)"#
    );
}

#[test]
fn first_number_takes_signs_and_decimal_marks() {
    let n = first_number;
    assert_eq!(n("14 °C"), Some(14.0));
    assert_eq!(n("-3 °C"), Some(-3.0));
    assert_eq!(n("−3,5 °C"), Some(-3.5));
    assert_eq!(n("High: -0.5°"), Some(-0.5));
    assert_eq!(n("(−12)"), Some(-12.0));
    assert_eq!(n("12.5.3"), Some(12.5));
    assert_eq!(n("5-10 mm"), Some(5.0));
    assert_eq!(n("t-5"), Some(5.0));
    assert_eq!(n("2026-11-25"), Some(2026.0));
    assert_eq!(n("3. Platz"), Some(3.0));
    assert_eq!(n("–"), None);
    assert_eq!(n("– 4"), Some(4.0), "an en dash is not a minus sign");
    assert_eq!(n(""), None);
}

#[test]
fn number_ranges_judge_texts_and_json() {
    let r = NumberRange {
        min: Some(-50.0),
        max: Some(60.0),
    };
    assert_eq!(r.judge(&text("14 °C")), Ok(()));
    assert_eq!(r.judge(&text("–")).unwrap_err(), r#""–" has no number"#);
    assert_eq!(
        r.judge(&text("75 °C")).unwrap_err(),
        r#"expected a number between -50 and 60, got 75 (in "75 °C")"#
    );
    assert_eq!(
        r.judge(&text("-51")).unwrap_err(),
        "expected a number between -50 and 60, got -51"
    );
    let v = serde_json::json!([12.5, 61, "-7 °C", null]);
    let judge = |i: usize| r.judge(&Found::Json(&v[i]));
    assert_eq!(judge(0), Ok(()));
    assert_eq!(
        judge(1).unwrap_err(),
        "expected a number between -50 and 60, got 61"
    );
    assert_eq!(judge(2), Ok(()));
    assert_eq!(judge(3).unwrap_err(), "null has no number");
    let at_least = NumberRange {
        min: Some(0.5),
        max: None,
    };
    assert_eq!(
        at_least.judge(&text("0,25")).unwrap_err(),
        r#"expected a number of at least 0.5, got 0.25 (in "0,25")"#
    );
}

#[test]
fn spans_and_bounds_read_like_a_person_wrote_them() {
    assert_eq!(span(0), "0 seconds");
    assert_eq!(span(61), "1 minute 1 second");
    assert_eq!(span(3 * 86_400 + 451), "3 days");
    assert_eq!(span(86_400 + 7_200), "1 day 2 hours");
    assert_eq!(short(Duration::from_secs(5400)), "1h 30m");
    assert_eq!(short(Duration::from_secs(86_400)), "1d");
    assert_eq!(short(Duration::from_millis(500)), "500ms");
}
