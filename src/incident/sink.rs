//! Where incident events go: the `Sink` interface every destination
//! implements, the routing rule they share, what one delivery attempt came
//! to, and how an HTTP answer is classified into it.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::{Event, Feature, Incident};
use crate::config::sinks::{SinkKind, SinkSpec};
use crate::secret::Secrets;
use crate::template::Resolve;

mod shared;

pub use shared::{RateLimit, http_client, http_headers, http_url, post_json};

/// At most this many characters of a receiver's answer go into an error.
const EXCERPT_CHARS: usize = 200;
/// At most this much of a receiver's answer is read, to take the excerpt from.
const EXCERPT_READ_BYTES: usize = 4096;

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// 408, 5xx, timeouts, connection errors: try again (not before
    /// `retry_after` when the receiver said so).
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// 429: the receiver's rate limit, not a failure. Try again once
    /// `retry_after` has passed, without growing the backoff.
    Throttled {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Other 4xx (and 3xx): dead-letter it.
    Rejected {
        error: String,
    },
    /// 410 Gone: disable this sink loudly.
    Gone {
        error: String,
    },
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Delivered { status } => write!(f, "delivered ({status})"),
            Attempt::Retry {
                error,
                retry_after: Some(after),
            } => write!(f, "{error}; retry after {}s", after.as_secs()),
            Attempt::Retry { error, .. } => write!(f, "{error}; will retry"),
            Attempt::Throttled {
                error,
                retry_after: Some(after),
            } => write!(f, "{error}; throttled for {}s", after.as_secs()),
            Attempt::Throttled { error, .. } => write!(f, "{error}; throttled"),
            Attempt::Rejected { error } => write!(f, "rejected: {error}"),
            Attempt::Gone { error } => write!(f, "gone: {error}"),
        }
    }
}

/// A destination for incident events.
pub trait Sink: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Whether this sink wants events about this feature (routing by
    /// criticality, owner, labels).
    fn accepts(&self, feature: &Feature, critical: bool) -> bool;
    /// One delivery attempt (`attempt` counts from 1). Sending the same
    /// event again must be safe: receivers dedupe on the event id.
    fn send<'a>(
        &'a self,
        event: &'a Event,
        attempt: u32,
    ) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;
    /// Told at start-up which incidents are open, for sinks that keep state
    /// at the receiver alive (Alertmanager forgets alerts not re-sent).
    fn resume(&self, _open: &[Incident]) {}
    /// The receiver's known rate limit (Slack, PagerDuty): the outbox waits
    /// for a slot before each send rather than have it refused.
    fn pace(&self) -> Option<&RateLimit> {
        None
    }
}

/// Routing rule shared by all sink kinds. Empty lists and maps match
/// everything; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub critical_only: bool,
    /// The feature's owner is one of these.
    pub owners: Vec<String>,
    /// The feature carries every one of these labels with these values.
    pub labels: BTreeMap<String, String>,
}

impl Route {
    pub fn matches(&self, feature: &Feature, critical: bool) -> bool {
        (critical || !self.critical_only)
            && (self.owners.is_empty()
                || feature
                    .owner
                    .as_ref()
                    .is_some_and(|o| self.owners.contains(o)))
            && self
                .labels
                .iter()
                .all(|(k, v)| feature.labels.get(k) == Some(v))
    }
}

/// Why a sink could not be built: a secret that cannot be read, a URL or
/// header that is not valid once its placeholders are filled in. Shows the
/// message only; the caller names the sink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    pub sink: String,
    pub message: String,
}

/// Builds a sink, reading its secrets from the environment and files now,
/// so that a missing one stops startup instead of every delivery.
pub fn build(spec: &SinkSpec) -> Result<Box<dyn Sink>, BuildError> {
    build_with(spec, &Secrets::default())
}

/// Like [`build`], with secrets coming from `secrets`.
pub fn build_with(spec: &SinkSpec, secrets: &dyn Resolve) -> Result<Box<dyn Sink>, BuildError> {
    Ok(match &spec.kind {
        SinkKind::Log => Box::new(super::log::LogSink::new(&spec.name, spec.route.clone())),
        SinkKind::Webhook(w) => Box::new(super::webhook::WebhookSink::new(
            &spec.name,
            spec.route.clone(),
            w,
            secrets,
        )?),
        SinkKind::Template(t) => Box::new(super::template::TemplateSink::new(
            &spec.name,
            spec.route.clone(),
            t,
            secrets,
        )?),
        SinkKind::PagerDuty(p) => Box::new(super::pagerduty::PagerDutySink::new(
            &spec.name,
            spec.route.clone(),
            p,
            secrets,
        )?),
        SinkKind::Alertmanager(a) => Box::new(super::alertmanager::AlertmanagerSink::new(
            &spec.name,
            spec.route.clone(),
            a,
            secrets,
            super::alertmanager::Resend::default(),
        )?),
        SinkKind::Slack(s) => Box::new(super::slack::SlackSink::new(
            &spec.name,
            spec.route.clone(),
            s,
            secrets,
        )?),
    })
}

/// Classifies the outcome of one HTTP request, reading a short excerpt of
/// the receiver's answer when it is not a success.
pub async fn classify(result: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    match result {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                return Attempt::Delivered {
                    status: status.as_u16(),
                };
            }
            let headers = resp.headers().clone();
            let excerpt = read_excerpt(resp).await;
            classify_response(status, &headers, &excerpt, SystemTime::now())
        }
        Err(e) => classify_error(&e),
    }
}

/// Classifies an HTTP answer: 2xx delivered; 410 gone; 429 throttled, 408
/// and 5xx retried (both honouring `Retry-After`); any other status rejected.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> Attempt {
    let code = status.as_u16();
    if status.is_success() {
        return Attempt::Delivered { status: code };
    }
    let excerpt = excerpt(body);
    let error = match excerpt.is_empty() {
        true => format!("the receiver answered {status}"),
        false => format!("the receiver answered {status}: {excerpt}"),
    };
    match code {
        410 => Attempt::Gone { error },
        429 => Attempt::Throttled {
            error,
            retry_after: retry_after(headers, now),
        },
        408 | 500..=599 => Attempt::Retry {
            error,
            retry_after: retry_after(headers, now),
        },
        _ => Attempt::Rejected { error },
    }
}

/// Classifies a request that got no answer: an invalid request is rejected,
/// anything on the way (timeouts, refused or reset connections, TLS) is retried.
pub fn classify_error(err: &reqwest::Error) -> Attempt {
    let inner = innermost(err);
    if err.is_builder() {
        return Attempt::Rejected {
            error: format!("invalid request: {inner}"),
        };
    }
    let error = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        format!("could not connect: {inner}")
    } else {
        format!("request failed: {inner}")
    };
    Attempt::Retry {
        error,
        retry_after: None,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date; a date in the past means
/// "now".
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// At most `EXCERPT_CHARS` characters of `body` on one line.
fn excerpt(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The start of a response body, without reading a large one to its end.
async fn read_excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < EXCERPT_READ_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(EXCERPT_READ_BYTES);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The message of the innermost error in the chain, which names the cause
/// ("connection refused") rather than the layer.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    let mut depth = 0;
    while let Some(next) = last.source() {
        last = next;
        depth += 1;
        if depth > 32 {
            break;
        }
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(retry_after).unwrap(),
        );
        h
    }

    #[test]
    fn statuses_are_classified() {
        let now = SystemTime::now();
        let none = HeaderMap::new();
        let at = |code: u16| classify_response(StatusCode::from_u16(code).unwrap(), &none, "", now);
        assert_eq!(at(204), Attempt::Delivered { status: 204 });
        assert!(matches!(at(410), Attempt::Gone { .. }));
        for code in [408, 500, 502, 503, 504] {
            assert!(matches!(at(code), Attempt::Retry { .. }), "{code}");
        }
        assert!(matches!(at(429), Attempt::Throttled { .. }));
        for code in [301, 302, 400, 401, 403, 404, 422] {
            assert!(matches!(at(code), Attempt::Rejected { .. }), "{code}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        // 2015-10-21T07:28:00Z is 1_445_412_480; two minutes later:
        let date = headers("Wed, 21 Oct 2015 07:30:00 GMT");
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(120)));
        let past = headers("Wed, 21 Oct 2015 07:00:00 GMT");
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn errors_name_the_status_and_a_short_excerpt() {
        let body = format!("bad\n  request {}", "x".repeat(500));
        let a = classify_response(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body,
            SystemTime::now(),
        );
        let Attempt::Rejected { error } = a else {
            panic!("{a:?}")
        };
        assert!(error.starts_with("the receiver answered 400 Bad Request: bad request xx"));
        assert!(error.chars().count() < 260, "{error}");
    }

    #[test]
    fn routes_match_criticality_owner_and_labels() {
        let mut f = Feature {
            check: "diesel".into(),
            owner: Some("shop-team".into()),
            ..Feature::default()
        };
        f.labels.insert("site".into(), "shop".into());
        assert!(Route::default().matches(&f, false));
        let critical = Route {
            critical_only: true,
            ..Route::default()
        };
        assert!(critical.matches(&f, true) && !critical.matches(&f, false));
        let owners = Route {
            owners: vec!["web-team".into(), "shop-team".into()],
            ..Route::default()
        };
        assert!(owners.matches(&f, false));
        assert!(!owners.matches(&Feature::default(), false));
        let mut labels = Route::default();
        labels.labels.insert("site".into(), "shop".into());
        assert!(labels.matches(&f, false));
        labels.labels.insert("env".into(), "prod".into());
        assert!(!labels.matches(&f, false));
    }
}
