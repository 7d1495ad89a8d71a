//! Who may call what: a bearer token for `/api`, bearer or basic
//! credentials for `/metrics`. The status page and `/healthz` are public.
//!
//! Secrets are placeholders in the config and are read once, when the server
//! state is built; a secret that cannot be read stops start-up rather than
//! serving unprotected.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::{Actions, MetricsCredentials, ServerState};
use crate::config::{Config, MetricsAuth};
use crate::live::View;
use crate::metrics::Metrics;
use crate::secret::Secrets;
use crate::template::{Resolve, Template};

const API_REALM: &str = "scarecrow";
const METRICS_REALM: &str = "scarecrow metrics";

/// A secret of the server's settings that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {why}")]
pub struct SecretError {
    pub setting: &'static str,
    pub why: String,
}

impl ServerState {
    /// The state for `config`, its secrets read now from `secrets` (the
    /// environment, with the daemon's fallbacks) and files, reading from
    /// `store`.
    pub fn from_config(
        config: &Config,
        secrets: &Secrets,
        store: Option<crate::store::Backend>,
        metrics: Metrics,
        view: View,
        actions: Arc<dyn Actions>,
    ) -> Result<ServerState, SecretError> {
        let api_token = config
            .api_token
            .as_ref()
            .map(|t| read("api_token", t, secrets))
            .transpose()?;
        let metrics_auth = match &config.metrics_auth {
            None => None,
            Some(MetricsAuth::Bearer(t)) => Some(MetricsCredentials::Bearer(read(
                "metrics_auth.bearer",
                t,
                secrets,
            )?)),
            Some(MetricsAuth::Basic { username, password }) => Some(MetricsCredentials::Basic {
                username: username.clone(),
                password: read("metrics_auth.basic.password", password, secrets)?,
            }),
        };
        Ok(ServerState {
            metrics,
            view,
            actions,
            store,
            api_token,
            metrics_auth,
            exposed: !config.listen.ip().is_loopback(),
            run_now: Default::default(),
            screenshots: config.browser.screenshots.clone(),
        })
    }
}

fn read(setting: &'static str, t: &Template, from: &dyn Resolve) -> Result<String, SecretError> {
    let value = t.render(from).map_err(|e| SecretError {
        setting,
        why: e.to_string(),
    })?;
    if value.trim().is_empty() {
        return Err(SecretError {
            setting,
            why: "the secret is empty".to_owned(),
        });
    }
    Ok(value.into_owned())
}

/// Why the API refuses every call on a server that listens beyond loopback
/// without a token.
pub const NO_TOKEN: &str = "this API is off: the server listens beyond loopback and no `api_token` is set; set `api_token = \"${secret:SCARECROW_API_TOKEN}\"` (or `\"${file:/run/secrets/scarecrow-api-token}\"`) in config.toml and restart";

/// Every `/api` call carries the token, when one is configured; beyond
/// loopback, one must be.
pub(super) async fn api(State(s): State<ServerState>, req: Request, next: Next) -> Response {
    let Some(token) = &s.api_token else {
        if s.exposed {
            return super::error(StatusCode::FORBIDDEN, NO_TOKEN);
        }
        return next.run(req).await;
    };
    match bearer(req.headers()) {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => next.run(req).await,
        Some(_) => denied(
            format!("Bearer realm=\"{API_REALM}\", error=\"invalid_token\""),
            "the bearer token is not valid",
        ),
        None => denied(
            format!("Bearer realm=\"{API_REALM}\""),
            "this API needs `Authorization: Bearer <token>`",
        ),
    }
}

/// `/metrics` asks for its own credentials, when configured.
pub(super) async fn metrics(State(s): State<ServerState>, req: Request, next: Next) -> Response {
    let ok = match &s.metrics_auth {
        None => true,
        Some(MetricsCredentials::Bearer(token)) => {
            bearer(req.headers()).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
        }
        Some(MetricsCredentials::Basic { username, password }) => {
            basic(req.headers()).is_some_and(|(u, p)| {
                // Both compared, always, so timing tells nothing about which failed.
                let user_ok = same(u.as_bytes(), username.as_bytes());
                let password_ok = same(p.as_bytes(), password.as_bytes());
                user_ok & password_ok
            })
        }
    };
    if ok {
        return next.run(req).await;
    }
    let challenge = match &s.metrics_auth {
        Some(MetricsCredentials::Basic { .. }) => {
            format!("Basic realm=\"{METRICS_REALM}\", charset=\"UTF-8\"")
        }
        _ => format!("Bearer realm=\"{METRICS_REALM}\""),
    };
    denied(challenge, "/metrics needs credentials")
}

/// 401, with the challenge that says what to send.
fn denied(challenge: String, message: &str) -> Response {
    let mut resp = super::error(StatusCode::UNAUTHORIZED, message);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp.into_response()
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, rest) = authorization(headers)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(rest)
        .filter(|t| !t.is_empty())
}

/// User and password of `Authorization: Basic <base64(user:password)>`.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let (scheme, rest) = authorization(headers)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    Some((scheme, rest.trim()))
}

/// Compares in time independent of where the inputs differ and of their
/// lengths: both sides are hashed, and the digests compared without
/// stopping at the first difference.
pub(super) fn same(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn same_compares_whole_values() {
        assert!(same(b"s3cret-token", b"s3cret-token"));
        assert!(!same(b"s3cret-token", b"s3cret-tokem"));
        assert!(!same(b"s3cret", b"s3cret-token"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn bearer_and_basic_are_read_from_the_header() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        // "prom:pass:word": the password may hold colons, the user may not.
        assert_eq!(
            basic(&headers("Basic cHJvbTpwYXNzOndvcmQ=")),
            Some(("prom".into(), "pass:word".into()))
        );
        assert_eq!(basic(&headers("Basic not-base64!")), None);
        assert_eq!(basic(&headers("Bearer cHJvbTpw")), None);
    }
}
