//! Cookies, random tokens and the double-submit CSRF check shared by the forms.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::layout::page;
use crate::text::EscapeHtml;

/// The pre-session cookie a form's hidden `csrf` field must match.
pub(super) const CSRF_COOKIE: &str = "demo_csrf";

/// The site's token counter: the forms' CSRF tokens and the login's session ids.
#[derive(Clone, Default)]
pub(super) struct Tokens(Arc<AtomicU64>);

impl Tokens {
    /// A fresh token.
    pub(super) fn issue(&self) -> String {
        token(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// A 128-bit hex token. `RandomState` is seeded from the OS once per thread and
/// re-keyed on every `new()`, so tokens are unguessable without a new dependency;
/// the counter and clock only keep two tokens from the same keys apart.
fn token(counter: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = |salt: u8| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(salt);
        hasher.write_u64(counter);
        hasher.write_u128(nanos);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

/// The value of the request cookie `name`, if sent.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// `Set-Cookie` for a fresh CSRF token.
pub(super) fn set_cookie(token: &str) -> (HeaderName, String) {
    (
        SET_COOKIE,
        format!("{CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax"),
    )
}

/// The token, if the submitted field matches the cookie.
pub(super) fn verified<'a>(headers: &'a HeaderMap, submitted: Option<&str>) -> Option<&'a str> {
    let expected = cookie(headers, CSRF_COOKIE).filter(|t| !t.is_empty())?;
    (submitted == Some(expected)).then_some(expected)
}

/// The 403 page; `form_path` is where a fresh form (and token) can be fetched.
pub(super) fn rejected(form_path: &str) -> Response {
    let body = format!(
        "<h1>Forbidden</h1>\n<p class=\"error\">Invalid or missing CSRF token</p>\n\
<p>Your session may have expired. <a href=\"{}\">Reload the form</a> and try again.</p>",
        EscapeHtml(form_path)
    );
    (StatusCode::FORBIDDEN, page("Forbidden", &body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_cookie_among_several_and_checks_the_field() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; demo_csrf=abc"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(verified(&headers, Some("abc")), Some("abc"));
        assert_eq!(verified(&headers, Some("abd")), None);
        assert_eq!(verified(&headers, None), None);
        assert_eq!(verified(&HeaderMap::new(), Some("")), None);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(token(1), token(1));
        assert_eq!(token(7).len(), 32);
    }
}
