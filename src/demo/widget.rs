//! The forecast widget: a page whose table is drawn by JavaScript from a
//! JSON feed, as a framework's would be. Broken, the feed answers 200 with
//! no days: the page's HTML is the same, only a browser sees the table
//! stay empty.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::layout::page;
use super::shared::Shared;
use super::weather::forecast;

/// The widget's state: whether its feed is empty.
#[derive(Clone, Default)]
pub(super) struct Widget {
    pub(super) broken: Shared<bool>,
}

/// Draws the table from the feed; German, as the members read it, with
/// dates in the browser's locale and time zone.
const SCRIPT: &str = r#"
(async () => {
  const box = document.getElementById('widget');
  const feed = await fetch('/weather/widget/data', {cache: 'no-store'}).then(r => r.json());
  const rows = feed.days.map(d => {
    const date = new Date(d.date + 'T12:00:00Z').toLocaleDateString(undefined, {weekday: 'short', day: 'numeric', month: 'short'});
    return `<tr class="day"><td class="date">${date}</td><td class="conditions">${d.conditions}</td><td class="temp">${d.temp_c} °C</td><td class="rain">${d.rain_mm} mm</td></tr>`;
  }).join('');
  box.innerHTML = `<h2>Vorhersage für Grünfeld</h2><table id="forecast"><tbody>${rows}</tbody></table>`
    + `<p class="updated">Stand: ${new Date(feed.updated).toLocaleString()}</p>`;
})();
"#;

pub(super) async fn show() -> Response {
    let body = format!(
        "<h1>Weather widget</h1>\n<div id=\"widget\"><p>Loading the forecast…</p></div>\n<script>{SCRIPT}</script>"
    );
    page("Weather widget", &body).into_response()
}

pub(super) async fn data(State(widget): State<Widget>) -> Json<Value> {
    let now = Utc::now();
    let days: Vec<Value> = if widget.broken.get() {
        Vec::new()
    } else {
        forecast(now.date_naive())
            .iter()
            .map(|d| {
                json!({
                    "date": d.date.format("%Y-%m-%d").to_string(),
                    "conditions": d.conditions,
                    "temp_c": d.temp_c,
                    "rain_mm": f64::from(d.rain_tenths_mm) / 10.0,
                })
            })
            .collect()
    };
    Json(json!({"updated": now.to_rfc3339(), "days": days}))
}
