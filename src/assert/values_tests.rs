//! Value predicates through a document: which values each query picks and
//! how a failure names the one that failed.

use std::time::Duration;

use chrono::DateTime;

use super::eval::tests::NoVars;
use crate::assert::{Document, Response};
use crate::check::{
    Assertion, Css, DateFormat, Freshness, JsonPath, NumberRange, Patterns, Pick, Predicate,
};

const NOW: &str = "2026-11-25T19:07:31Z";

const PAGE: &str = r#"<table><tr><td class="temp">14 °C</td></tr>
    <tr><td class="temp">−3,5 °C</td></tr><tr><td class="temp">–</td></tr></table>
    <p class="updated">Updated <time datetime="2026-11-22T19:00:00Z">22 Nov 2026, 19:00 UTC</time></p>
    <p class="fresh"><time datetime="2026-11-25T19:00:00Z">25 Nov 2026, 19:00 UTC</time></p>"#;

fn check(body: &str, query: Pick, predicate: Predicate) -> Result<(), String> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "last-modified",
        http::HeaderValue::from_static("Wed, 25 Nov 2026 18:00:00 GMT"),
    );
    let response = Response {
        status: 200,
        headers: &headers,
        body,
        size: body.len() as u64,
        elapsed: Duration::from_millis(5),
        certificate: None,
    };
    let now = DateTime::parse_from_rfc3339(NOW).unwrap().to_utc();
    Document::at(response, now)
        .check(&Assertion::Pick(query, predicate), &NoVars)
        .map_err(|f| f.message)
}

fn css(s: &str, attr: Option<&str>) -> Pick {
    Pick::Css {
        selector: Css::parse(s).unwrap(),
        attr: attr.map(str::to_owned),
    }
}

fn within(max_age: u64, format: DateFormat) -> Predicate {
    Predicate::Fresh(Freshness {
        max_age: Duration::from_secs(max_age),
        format,
    })
}

fn plausible() -> Predicate {
    Predicate::Number(NumberRange {
        min: Some(-50.0),
        max: Some(60.0),
    })
}

#[test]
fn freshness_of_an_attribute_a_text_and_a_header() {
    let updated = css("p.updated time", Some("datetime"));
    assert_eq!(
        check(PAGE, updated, within(7200, DateFormat::Rfc3339)),
        Err(r#"selector "p.updated time" attribute "datetime": updated 3 days ago (2026-11-22T19:00:00Z), expected within 2h"#.into())
    );
    let shown = DateFormat::parse("%d %b %Y, %H:%M UTC", chrono_tz::Tz::UTC).unwrap();
    assert_eq!(
        check(PAGE, css("p.fresh time", None), within(1800, shown)),
        Ok(())
    );
    let header = Pick::Header(http::HeaderName::from_static("last-modified"));
    assert_eq!(
        check("", header.clone(), within(86_400, DateFormat::Http)),
        Ok(())
    );
    assert_eq!(
        check("", header, within(1800, DateFormat::Http)),
        Err("header last-modified: updated 1 hour 7 minutes ago (2026-11-25T18:00:00Z), expected within 30m".into())
    );
    let missing = Pick::Header(http::HeaderName::from_static("date"));
    assert_eq!(
        check("", missing, within(60, DateFormat::Http)),
        Err("header date: missing, expected it to be a date in format http within 1m".into())
    );
}

#[test]
fn a_value_that_is_not_a_date_is_named() {
    let body = r#"<p class="updated"><time datetime="yesterday">yesterday</time></p>"#;
    assert_eq!(
        check(body, css("p.updated time", Some("datetime")), within(7200, DateFormat::Rfc3339)),
        Err(r#"selector "p.updated time" attribute "datetime": "yesterday" is not a date in format rfc3339"#.into())
    );
    assert_eq!(
        check(
            body,
            css("p.updated b", None),
            within(60, DateFormat::Rfc3339)
        ),
        Err(r#"selector "p.updated b" matched nothing"#.into())
    );
}

#[test]
fn every_element_needs_a_plausible_number() {
    assert_eq!(
        check(PAGE, css("td.temp", None), plausible()),
        Err(r#"selector "td.temp": element 3 of 3: "–" has no number"#.into())
    );
    assert_eq!(
        check(PAGE, css("tr:nth-child(-n+2) td.temp", None), plausible()),
        Ok(())
    );
    let hot = "<table><tr><td class=temp>14 °C</td><td class=temp>75 °C</td></table>";
    assert_eq!(
        check(hot, css("td.temp", None), plausible()),
        Err(r#"selector "td.temp": element 2 of 2: expected a number between -50 and 60, got 75 (in "75 °C")"#.into())
    );
}

#[test]
fn numbers_in_json_and_dates_by_regex() {
    let body = r#"{"temp": 21.5, "days": [{"t": 3}, {"t": 99}], "at": "2026-11-25T19:00:00Z"}"#;
    let path = |p: &str| Pick::JsonPath(JsonPath::parse(p).unwrap());
    assert_eq!(check(body, path("$.temp"), plausible()), Ok(()));
    assert_eq!(
        check(body, path("$.days[*].t"), plausible()),
        Err(
            r#"jsonpath "$.days[*].t": value 2 of 2: expected a number between -50 and 60, got 99"#
                .into()
        )
    );
    assert_eq!(
        check(body, path("$.at"), within(900, DateFormat::Rfc3339)),
        Ok(())
    );

    let regex = |re: &str| Pick::Regex(Patterns::default().compile(re).unwrap());
    let shown = DateFormat::parse("%d %b %Y, %H:%M", chrono_tz::Tz::UTC).unwrap();
    let dates = regex(r">(\d+ \w+ \d{4}, \d\d:\d\d) UTC<");
    assert_eq!(
        check(PAGE, dates.clone(), within(1800, shown.clone())),
        Err("regex />(\\d+ \\w+ \\d{4}, \\d\\d:\\d\\d) UTC</: match 1 of 2: updated 3 days ago (2026-11-22T19:00:00Z), expected within 30m".into())
    );
    assert_eq!(
        check("<p>none</p>", dates, within(1800, shown)),
        Err(r"regex />(\d+ \w+ \d{4}, \d\d:\d\d) UTC</ matched nothing".into())
    );
}
