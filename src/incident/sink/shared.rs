//! What the HTTP sinks share: the URL, headers and client built from their
//! spec, and the token bucket that paces sends to a receiver's rate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::Attempt;
use crate::template::{Resolve, Template};

/// The URL of an HTTP sink with its secrets filled in; an error does not
/// echo it, as it may hold a secret.
pub fn http_url(url: &Template, secrets: &dyn Resolve) -> Result<reqwest::Url, String> {
    let text = url.render(secrets).map_err(|e| e.to_string())?;
    reqwest::Url::parse(&text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))
}

/// Extra headers with their secrets filled in; values holding a secret stay
/// out of debug output.
pub fn http_headers(
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

/// The client of an HTTP sink: a timeout per attempt, no redirects.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("scarecrow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
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

/// One delivery of a JSON body (PagerDuty, Slack): a body that cannot be
/// rendered is rejected, and the answer is classified.
pub async fn post_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: Result<Vec<u8>, serde_json::Error>,
) -> Attempt {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return Attempt::Rejected {
                error: format!("cannot render the event: {e}"),
            };
        }
    };
    let req = client
        .post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body);
    super::classify(req.send().await).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
