//! The one way an HTTP sink speaks to its receiver: the URL and headers
//! built from its spec with their secrets filled in, a client with its
//! timeout, a JSON POST whose answer is classified into an [`Attempt`],
//! and the token bucket that paces sends to a receiver's rate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::Attempt;
use crate::template::{Resolve, Template};

/// At most this many characters of a receiver's answer go into an error.
const EXCERPT_CHARS: usize = 200;
/// At most this much of a receiver's answer is read, to take the excerpt from.
const EXCERPT_READ_BYTES: usize = 4096;

/// Where an HTTP sink posts: its URL and extra headers with their secrets
/// filled in, and a client with its timeout that follows no redirects.
pub struct Endpoint {
    /// Kinds that derive their receiver's path from the configured URL
    /// (Alertmanager) set it after building.
    pub url: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl Endpoint {
    /// Reads the secrets `url` and `headers` refer to and checks what could
    /// not be checked at load. An error does not echo the URL: it may hold a
    /// secret.
    pub fn new(
        url: &Template,
        headers: &BTreeMap<String, Template>,
        timeout: Duration,
        secrets: &dyn Resolve,
    ) -> Result<Endpoint, String> {
        let text = url.render(secrets).map_err(|e| e.to_string())?;
        let parsed = reqwest::Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
        Ok(Endpoint {
            url: parsed,
            headers: render_headers(headers, secrets)?,
            // Proxy variables of the environment are not honoured: a proxy
            // would see the sink's credentials.
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("scarecrow/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
        })
    }

    /// One delivery of a JSON body with `extra` headers besides the
    /// endpoint's own: a body that could not be rendered is rejected, and
    /// the answer is classified.
    pub async fn post(&self, body: Result<Vec<u8>, String>, extra: HeaderMap) -> Attempt {
        let body = match body {
            Ok(b) => b,
            Err(error) => return Attempt::Rejected { error },
        };
        let req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .headers(extra)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        classify(req.send().await).await
    }
}

/// A JSON body, or why the event could not be rendered into one.
pub fn json(body: serde_json::Result<Vec<u8>>) -> Result<Vec<u8>, String> {
    body.map_err(|e| format!("cannot render the event: {e}"))
}

/// Extra headers with their secrets filled in; values holding a secret stay
/// out of debug output.
fn render_headers(
    headers: &BTreeMap<String, Template>,
    secrets: &dyn Resolve,
) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::new();
    for (header, template) in headers {
        let name = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("{header:?} is not a valid header name"))?;
        let text = template.render(secrets).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| format!("header `{header}` may not hold control characters"))?;
        value.set_sensitive(template.as_literal().is_none());
        out.insert(name, value);
    }
    Ok(out)
}

/// A token bucket for a receiver's rate limit: `events` per `per`, in
/// bursts of up to `events`. Each send reserves the next slot; the outbox
/// waits until it comes rather than have the receiver refuse the send.
#[derive(Debug)]
pub struct RateLimit {
    capacity: f64,
    /// Tokens regained per second.
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(events: u32, per: Duration) -> RateLimit {
        let capacity = f64::from(events.max(1));
        RateLimit {
            capacity,
            rate: capacity / per.as_secs_f64().max(1e-3),
            bucket: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Reserves the next slot and says how long until it comes (zero: now).
    /// The bucket goes into debt for slots reserved ahead, so callers that
    /// reserve at once are spaced one slot apart rather than all woken
    /// together.
    pub fn reserve(&self) -> Duration {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.capacity) - 1.0;
        *bucket = (tokens, now);
        match tokens >= 0.0 {
            true => Duration::ZERO,
            false => Duration::from_secs_f64(-tokens / self.rate),
        }
    }
}

/// Classifies the outcome of one HTTP request, reading a short excerpt of
/// the receiver's answer when it is not a success.
async fn classify(result: Result<reqwest::Response, reqwest::Error>) -> Attempt {
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
fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> Attempt {
    let code = status.as_u16();
    if status.is_success() {
        return Attempt::Delivered { status: code };
    }
    let flat = crate::text::one_line(body);
    let excerpt = crate::text::excerpt(&flat, EXCERPT_CHARS);
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
fn classify_error(err: &reqwest::Error) -> Attempt {
    let inner = crate::error_chain::innermost(err);
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
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
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
    fn a_rate_limit_allows_a_burst_then_spaces_the_slots_it_reserves() {
        let limit = RateLimit::new(2, Duration::from_secs(60));
        assert_eq!(limit.reserve(), Duration::ZERO);
        assert_eq!(limit.reserve(), Duration::ZERO);
        let near = |d: Duration, secs: f64| (d.as_secs_f64() - secs).abs() < 0.5;
        // One slot every 30 s: the third in 30 s, the fourth in 60 s.
        let third = limit.reserve();
        assert!(near(third, 30.0), "{third:?}");
        let fourth = limit.reserve();
        assert!(near(fourth, 60.0), "{fourth:?}");
    }
}
