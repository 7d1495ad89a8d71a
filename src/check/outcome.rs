//! What one run of a check produced.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The class of a failure: what kind of thing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The response came, but an assertion did not hold.
    Assertion,
    /// A capture found nothing to capture.
    Capture,
    /// The run's deadline passed.
    Timeout,
    Dns,
    Connect,
    Tls,
    /// The peer spoke something that is not HTTP, or broke off mid-response.
    Http,
    BodyTooLarge,
    /// The redirect limit was reached.
    Redirects,
    /// A value the run needs (a secret, a capture) could not be had.
    Setup,
    /// The run panicked: a bug in scarecrow, not a fault of the site.
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Assertion,
        Reason::Capture,
        Reason::Timeout,
        Reason::Dns,
        Reason::Connect,
        Reason::Tls,
        Reason::Http,
        Reason::BodyTooLarge,
        Reason::Redirects,
        Reason::Setup,
        Reason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Assertion => "assertion",
            Reason::Capture => "capture",
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Http => "http",
            Reason::BodyTooLarge => "body_too_large",
            Reason::Redirects => "redirects",
            Reason::Setup => "setup",
            Reason::Internal => "internal",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One expectation of a step that did not hold: the sentence a person
/// reads, and its parts for a program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    /// Where the step looked: the query as the message names it (`status`,
    /// `jsonpath "$.a"`); for a capture, its query (the message names the
    /// capture).
    pub query: String,
    /// What was expected, as a verb phrase after "expected it to".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<String>,
    /// What the query found, when it found something to show.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actual: Option<String>,
}

impl Failure {
    /// A failure that has only its message and where it looked.
    pub fn new(query: impl fmt::Display, message: String) -> Failure {
        Failure {
            message,
            query: query.to_string(),
            expected: None,
            actual: None,
        }
    }

    pub fn expected(mut self, expected: impl fmt::Display) -> Failure {
        self.expected = Some(expected.to_string());
        self
    }

    pub fn actual(mut self, actual: impl Into<String>) -> Failure {
        self.actual = Some(actual.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure {
        reason: Reason,
        /// The step that failed, if the run got that far.
        step: Option<String>,
        message: String,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }
}

/// Where a step's time went. A phase is absent when it did not happen (a
/// reused name lookup, a request that never connected).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    #[serde(serialize_with = "opt_ms", deserialize_with = "de_opt_ms", default)]
    pub dns: Option<Duration>,
    /// TCP connect plus TLS handshake.
    #[serde(serialize_with = "opt_ms", deserialize_with = "de_opt_ms", default)]
    pub connect: Option<Duration>,
    /// Request sent to response headers received.
    #[serde(serialize_with = "opt_ms", deserialize_with = "de_opt_ms", default)]
    pub ttfb: Option<Duration>,
    #[serde(serialize_with = "opt_ms", deserialize_with = "de_opt_ms", default)]
    pub transfer: Option<Duration>,
}

impl Phases {
    /// Adds another request's phases (a redirect hop) to these.
    pub fn add(&mut self, other: &Phases) {
        let sum = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or_default() + b.unwrap_or_default()),
        };
        self.dns = sum(self.dns, other.dns);
        self.connect = sum(self.connect, other.connect);
        self.ttfb = sum(self.ttfb, other.ttfb);
        self.transfer = sum(self.transfer, other.transfer);
    }
}

/// A redirect a step followed: the status that asked for it and the URL it
/// led to (resolved; without query or credentials, like the step's `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub status: u16,
    pub location: String,
}

/// One step as it ran: what every kind reports, and its kind's own detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    /// Where the step went, as written or rendered; without query or
    /// credentials. For HTTP, the URL of the request as sent; where
    /// redirects took it is in its `redirects`.
    pub url: String,
    /// The kind's own fields, at the top level of the step in JSON.
    #[serde(flatten)]
    pub detail: StepDetail,
    /// Named for their unit in JSON; the aliases read runs stored before.
    #[serde(
        serialize_with = "ms",
        deserialize_with = "de_ms",
        rename = "duration_ms",
        alias = "duration"
    )]
    pub duration: Duration,
    /// How many times the step was tried (1 unless it has `retries`).
    #[serde(default = "one")]
    pub attempts: u32,
    /// Every assertion that did not hold, in order: the messages of
    /// `failure_details`, kept for readers written before it.
    pub failures: Vec<String>,
    /// Every assertion that did not hold, in order, with where the step
    /// looked, what it expected and what it found.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failure_details: Vec<Failure>,
    /// The values the step captured, by name; secret captures left out.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub captures: BTreeMap<String, String>,
    /// The start of the response's text when the step failed on it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub excerpt: Option<String>,
}

impl StepResult {
    /// The status of the step's response: an HTTP step's last, a browser
    /// step's main document.
    pub fn status(&self) -> Option<u16> {
        match &self.detail {
            StepDetail::Http(http) => http.status,
            StepDetail::Browser(b) => b.browser.status,
        }
    }

    /// The path of the screenshot a browser step kept.
    pub fn screenshot(&self) -> Option<&str> {
        match &self.detail {
            StepDetail::Browser(b) => b.browser.screenshot.as_deref(),
            StepDetail::Http(_) => None,
        }
    }

    /// The HTTP detail, if the step was an HTTP request.
    pub fn http(&self) -> Option<&HttpStep> {
        match &self.detail {
            StepDetail::Http(http) => Some(http),
            StepDetail::Browser(_) => None,
        }
    }
}

/// What only one kind of step reports. Untagged: the fields sit beside the
/// common ones, as they did before kinds existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepDetail {
    /// First: only it has the `browser` key, which an HTTP step lacks.
    Browser(BrowserDetail),
    Http(HttpStep),
}

impl Default for StepDetail {
    fn default() -> Self {
        StepDetail::Http(HttpStep::default())
    }
}

/// What a browser step reports beyond every kind's fields (under
/// `browser` in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserDetail {
    pub browser: BrowserReport,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserReport {
    /// The main document's status.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    /// Where the page ended up after redirects and actions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub final_url: Option<String>,
    /// Milliseconds from navigation start: `navigation` (the document's
    /// response), `dom_content_loaded`, `load`, `first_match` (the first
    /// `wait_for` or `wait_for_text` that matched), `actions` (the last
    /// action done).
    #[serde(rename = "timings_ms", default)]
    pub timings: BTreeMap<String, u64>,
    /// The path of the PNG of the viewport, when one was kept, in
    /// `[browser] screenshots`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub screenshot: Option<String>,
    /// Console errors and failed same-origin requests, as seen (redacted,
    /// the first 20).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub console: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failed_requests: Vec<String>,
}

/// What an HTTP step reports beyond every kind's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpStep {
    /// The method of the request as the step sent it.
    pub method: String,
    pub status: Option<u16>,
    #[serde(rename = "phases_ms", alias = "phases")]
    pub phases: Phases,
    /// The redirects followed, in order; the last `location` answered.
    #[serde(deserialize_with = "de_redirects", default)]
    pub redirects: Vec<Redirect>,
    /// The host of the last request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    /// When the leaf certificate of the last response expires (HTTPS only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cert_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One run of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub check: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(
        serialize_with = "ms",
        deserialize_with = "de_ms",
        rename = "duration_ms"
    )]
    pub duration: Duration,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub steps: Vec<StepResult>,
}

fn one() -> u32 {
    1
}

/// A duration in milliseconds, to the microsecond: how runs show their
/// durations in JSON and in the store.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The inverse of [`millis`]; `None` for a negative or absurd value.
pub fn from_millis(ms: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(ms / 1e3).ok()
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(millis(*d))
}

fn opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ms(d, s),
        None => s.serialize_none(),
    }
}

fn de_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(d)?;
    from_millis(ms).ok_or_else(|| serde::de::Error::custom(format!("{ms} is not a duration")))
}

/// Runs stored before redirects were listed hold only their number: those
/// read as no list rather than as an error.
fn de_redirects<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Redirect>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(_) => Ok(Vec::new()),
        hops => serde_json::from_value(hops).map_err(serde::de::Error::custom),
    }
}

fn de_opt_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(ms) => from_millis(ms)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{ms} is not a duration"))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_survives_a_round_trip_through_json() {
        let run = RunResult {
            check: "weather".into(),
            started_at: "2026-11-25T14:49:00Z".parse().unwrap(),
            duration: Duration::from_micros(12_345),
            outcome: Outcome::Failure {
                reason: Reason::BodyTooLarge,
                step: Some("open".into()),
                message: "too big".into(),
            },
            steps: vec![StepResult {
                name: "open".into(),
                url: "http://h/".into(),
                detail: StepDetail::Http(HttpStep {
                    method: "GET".into(),
                    status: Some(200),
                    phases: Phases {
                        dns: None,
                        connect: Some(Duration::from_micros(300)),
                        ttfb: Some(Duration::from_millis(2)),
                        transfer: None,
                    },
                    redirects: vec![Redirect {
                        status: 303,
                        location: "http://h/done".into(),
                    }],
                    host: Some("h".into()),
                    cert_expires_at: Some("2027-01-31T12:00:00Z".parse().unwrap()),
                }),
                duration: Duration::from_micros(12_000),
                attempts: 2,
                failures: vec!["x".into()],
                failure_details: vec![
                    Failure::new("status", "x".into())
                        .expected("be 200")
                        .actual("503"),
                ],
                captures: BTreeMap::from([("order".into(), "D-1".into())]),
                excerpt: Some("Oops".into()),
            }],
        };
        let json = serde_json::to_string(&run).unwrap();
        assert_eq!(serde_json::from_str::<RunResult>(&json).unwrap(), run);
    }

    #[test]
    fn steps_stored_before_units_were_named_still_read() {
        let old = r#"{"name":"open","method":"GET","url":"http://h/","status":200,
            "duration":12.5,"phases":{"dns":null,"connect":0.3,"ttfb":2.0,"transfer":null},
            "redirects":0,"attempts":1,"failures":[]}"#;
        let step: StepResult = serde_json::from_str(old).unwrap();
        assert_eq!(step.duration, Duration::from_micros(12_500));
        let http = step.http().unwrap();
        assert_eq!(http.redirects, []);
        assert_eq!(http.phases.ttfb, Some(Duration::from_millis(2)));
        let now = serde_json::to_value(&step).unwrap();
        assert_eq!(now["duration_ms"], 12.5);
        assert_eq!(now["phases_ms"]["connect"], 0.3);
        // The HTTP detail sits beside the common fields, as before kinds.
        assert_eq!(now["method"], "GET");
        assert_eq!(now["status"], 200);
    }
}
