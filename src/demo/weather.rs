//! The five-day forecast, generated deterministically from the date so that
//! every request on the same day shows the same plausible numbers.

use std::f64::consts::TAU;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

use super::layout::page;
use super::shared::Shared;
use crate::text::EscapeHtml;

/// The weather feature's state: whether, and how, its feed is broken.
#[derive(Clone, Default)]
pub(super) struct Weather {
    pub(super) fault: Shared<Option<WeatherFault>>,
}

/// How the weather page is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WeatherFault {
    /// The feed froze three days ago: old timestamp, no temperatures, still 200.
    Stale,
    /// The upstream service is down: 500.
    Error,
}

impl WeatherFault {
    /// Parses `?mode=`; no mode means `stale`.
    pub(super) fn from_mode(mode: Option<&str>) -> Option<Self> {
        match mode {
            None | Some("stale") => Some(Self::Stale),
            Some("error") => Some(Self::Error),
            Some(_) => None,
        }
    }

    pub(super) fn mode(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Error => "error",
        }
    }
}

pub(super) async fn show(State(weather): State<Weather>) -> Response {
    let now = Utc::now();
    match weather.fault.get() {
        None => page("Weather", &forecast_html(now, false)).into_response(),
        Some(WeatherFault::Stale) => page("Weather", &forecast_html(now, true)).into_response(),
        Some(WeatherFault::Error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            page(
                "Weather unavailable",
                "<h1>Weather forecast</h1>\n\
<p class=\"error\">Upstream weather service unavailable</p>\n<p>Please try again later.</p>",
            ),
        )
            .into_response(),
    }
}

#[derive(Debug, PartialEq)]
pub(super) struct Day {
    pub(super) date: NaiveDate,
    pub(super) conditions: &'static str,
    pub(super) temp_c: i32,
    pub(super) rain_tenths_mm: u32,
}

/// The page body at `now`; a stale feed shows the forecast it froze with.
fn forecast_html(now: DateTime<Utc>, stale: bool) -> String {
    let mut updated = last_update(now);
    if stale {
        updated -= TimeDelta::days(3);
    }
    let rows: String = forecast(updated.date_naive())
        .iter()
        .map(|day| row(day, stale))
        .collect();
    format!(
        "<h1>Weather forecast</h1>\n<p>Daily highs and rainfall for Greenfield valley.</p>\n\
<table id=\"forecast\">\n\
<thead><tr><th>Date</th><th>Conditions</th><th>High</th><th>Rain</th></tr></thead>\n\
<tbody>\n{rows}</tbody>\n</table>\n\
<p class=\"updated\">Updated <time datetime=\"{}\">{}</time></p>",
        updated.format("%Y-%m-%dT%H:%M:%SZ"),
        updated.format("%-d %b %Y, %H:%M UTC"),
    )
}

fn row(day: &Day, stale: bool) -> String {
    // A frozen feed still has the old conditions cached but no temperatures.
    let temp = if stale {
        "–".to_owned()
    } else {
        format!("{} °C", day.temp_c)
    };
    format!(
        "<tr class=\"day\"><td class=\"date\"><time datetime=\"{}\">{}</time></td>\
<td class=\"conditions\">{}</td><td class=\"temp\">{temp}</td>\
<td class=\"rain\">{}.{} mm</td></tr>\n",
        day.date.format("%Y-%m-%d"),
        day.date.format("%a %-d %b"),
        EscapeHtml(day.conditions),
        day.rain_tenths_mm / 10,
        day.rain_tenths_mm % 10,
    )
}

/// The feed updates every ten minutes.
fn last_update(now: DateTime<Utc>) -> DateTime<Utc> {
    let secs = now.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(600), 0).unwrap_or(now)
}

pub(super) fn forecast(first: NaiveDate) -> Vec<Day> {
    first.iter_days().take(5).map(day).collect()
}

fn day(date: NaiveDate) -> Day {
    let mut rng = SplitMix64(u64::from(date.num_days_from_ce().unsigned_abs()));
    // Daily highs of a central European lowland: ~2 °C mid-January, ~22 °C mid-July.
    let season = -((f64::from(date.ordinal0()) - 15.0) / 365.25 * TAU).cos();
    let temp_c = (12.0 + 10.0 * season).round() as i32 + rng.below(9) as i32 - 4;
    let (conditions, rain_tenths_mm) = match rng.below(100) {
        0..30 => ("Sunny", 0),
        30..55 => ("Partly cloudy", 0),
        55..70 => ("Cloudy", rng.below(3)),
        70..85 => ("Light rain", 5 + rng.below(36)),
        85..95 => ("Showers", 20 + rng.below(71)),
        _ => ("Heavy rain", 100 + rng.below(151)),
    };
    let conditions = if temp_c <= 1 && rain_tenths_mm >= 5 {
        "Snow"
    } else {
        conditions
    };
    Day {
        date,
        conditions,
        temp_c,
        rain_tenths_mm,
    }
}

/// A tiny deterministic generator, so the forecast needs no `rand` dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for a demo.
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn same_date_same_forecast_and_plausible_all_year() {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        assert_eq!(forecast(first), forecast(first));
        for day in forecast(first)
            .into_iter()
            .chain(first.iter_days().take(366).map(day))
        {
            assert!((-6..=30).contains(&day.temp_c), "{day:?}");
            assert!(day.rain_tenths_mm <= 250, "{day:?}");
        }
    }

    #[test]
    fn live_page_rounds_update_down_to_ten_minutes() {
        let html = forecast_html(at("2026-11-25T19:07:31Z"), false);
        assert!(
            html.contains("<time datetime=\"2026-11-25T19:00:00Z\">25 Nov 2026, 19:00 UTC</time>")
        );
        assert_eq!(html.matches("<tr class=\"day\">").count(), 5);
        assert_eq!(html.matches(" °C</td>").count(), 5);
    }

    #[test]
    fn stale_page_is_three_days_old_without_temperatures() {
        let html = forecast_html(at("2026-11-25T19:07:31Z"), true);
        assert!(html.contains("datetime=\"2026-11-22T19:00:00Z\""));
        assert_eq!(html.matches("<td class=\"temp\">–</td>").count(), 5);
        assert!(!html.contains("°C"));
    }
}
