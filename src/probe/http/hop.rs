//! One request and its response headers: the run's cookies in and out, the
//! phases timed, and where a redirect leads.

use std::sync::Arc;

use cookie_store::CookieStore;
use http::Method;
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION,
    PROXY_AUTHORIZATION, SET_COOKIE,
};

use crate::check::Reason;

use super::classify::classify;
use super::client::{self, HopTimer};
use super::flight::{Flight, Stage};
use super::render::{Prepared, shown};
use crate::probe::attempt::{StepFailure, fail};
use crate::probe::context::RunContext;

/// Sends one request and waits for its headers, timing its phases and
/// storing the cookies it sets.
pub(super) async fn send(
    client: &reqwest::Client,
    ctx: &mut RunContext,
    req: &Prepared,
    flight: &mut Flight<'_>,
) -> Result<reqwest::Response, StepFailure> {
    let mut headers = req.headers.clone();
    if let Some(mut cookies) = jar_cookies(&ctx.jar, req, headers.get(COOKIE)) {
        cookies.set_sensitive(true);
        headers.insert(COOKIE, cookies);
    }
    let mut builder = client
        .request(req.method.clone(), req.url.clone())
        .headers(headers);
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    // The URL as shown is built only for a message: most hops succeed.
    let request = builder.build().map_err(|e| {
        let (reason, message) = classify(&e, &shown(&req.url));
        fail(reason, message)
    })?;

    let timer = Arc::new(HopTimer::default());
    flight.hop = Some(Arc::clone(&timer));
    flight.stage = Stage::Headers;
    let result = client::timed(Arc::clone(&timer), client.execute(request)).await;
    flight.hop = None;
    let mut phases = timer.snapshot().phases();
    if result.is_err() {
        // No headers came: what was waited for is not a time to first byte.
        phases.ttfb = None;
    }
    flight.detail.phases.add(&phases);
    let response = result.map_err(|e| {
        let (reason, message) = classify(&e, &shown(&req.url));
        fail(reason, message)
    })?;
    flight.detail.status = Some(response.status().as_u16());
    super::tls::record(&response, &req.url, &mut flight.detail);
    for value in response.headers().get_all(SET_COOKIE) {
        // A cookie a browser would reject is ignored here too.
        let stored = match value.to_str() {
            Ok(text) => ctx
                .jar
                .parse(text, &req.url)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(_) => Err("not valid text".to_owned()),
        };
        if let Err(error) = stored {
            let url = shown(&req.url);
            let url = ctx.vars.redactor.redact(&url);
            tracing::debug!(%url, %error, "ignored a Set-Cookie header");
        }
    }
    Ok(response)
}

/// The `Cookie` header for `req`: the jar's cookies after any the step set.
fn jar_cookies(
    jar: &CookieStore,
    req: &Prepared,
    own: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    let mut pairs: Vec<String> = own
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .into_iter()
        .collect();
    pairs.extend(
        jar.get_request_values(&req.url)
            .map(|(n, v)| format!("{n}={v}")),
    );
    if pairs.is_empty() {
        return None;
    }
    HeaderValue::from_str(&pairs.join("; ")).ok()
}

/// The request a redirect asks for, if `response` is one.
pub(super) fn redirect(
    response: &reqwest::Response,
    req: &Prepared,
) -> Result<Option<Prepared>, StepFailure> {
    let status = response.status().as_u16();
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let url = location
        .to_str()
        .ok()
        .and_then(|l| req.url.join(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            let from = shown(&req.url);
            fail(
                Reason::Http,
                format!("redirect {status} from {from} has an invalid Location header"),
            )
        })?;
    let mut next = req.clone();
    if status != 307 && status != 308 && next.method != Method::HEAD {
        next.method = Method::GET;
        next.body = None;
        next.credential_body = None;
        next.headers.remove(CONTENT_TYPE);
        next.headers.remove(CONTENT_LENGTH);
    }
    let origin = url.origin();
    if origin != req.url.origin() {
        // Credentials the step set for one site are not sent to another:
        // the body is sent again as it is or not at all, so a credential in
        // it stops the step; headers from one are left behind.
        if let (Some(kind), Some(_)) = (next.credential_body, &next.body) {
            let origin = origin.ascii_serialization();
            return Err(fail(
                Reason::Redirects,
                format!(
                    "{status} to {origin} would re-send the {kind} holding a secret to another origin"
                ),
            ));
        }
        for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE]
            .iter()
            .chain(&req.credential_headers)
        {
            next.headers.remove(name);
        }
        next.credential_headers.clear();
    }
    next.url = url;
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    #[test]
    fn jar_cookies_follow_the_steps_own() {
        let url = reqwest::Url::parse("http://h.example/a").unwrap();
        let mut jar = CookieStore::default();
        jar.parse("sid=1; Path=/", &url).unwrap();
        let req = Prepared {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
            credential_headers: Vec::new(),
            credential_body: None,
        };
        let own = HeaderValue::from_static("pref=dark");
        assert_eq!(
            jar_cookies(&jar, &req, Some(&own)).unwrap(),
            "pref=dark; sid=1"
        );
        assert_eq!(jar_cookies(&jar, &req, None).unwrap(), "sid=1");
    }
}
