//! A step's request with its templates filled in, and what fills them.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::Url;

use super::multipart;
use super::redact::Redactor;
use crate::check::{Auth, Body, JsonBody, Request, Target, credential_header};
use crate::secret::Secrets;
use crate::template::{RenderError, Resolve, Template};

/// What one run supplies to templates: its captures, the environment's
/// secrets and secret files. Every secret value it hands out is recorded in
/// the run's redactor.
#[derive(Clone, Default)]
pub(super) struct RunVars {
    captures: BTreeMap<String, String>,
    secrets: Secrets,
    pub redactor: Redactor,
}

/// Names the captures, never their values.
impl std::fmt::Debug for RunVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunVars")
            .field("captures", &self.captures.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RunVars {
    pub(super) fn new(secrets: Secrets, redactor: Redactor) -> Self {
        RunVars {
            captures: BTreeMap::new(),
            secrets,
            redactor,
        }
    }

    /// Stores a capture; a secret one is redacted from the run's results.
    pub(super) fn set_capture(&mut self, name: &str, value: String, secret: bool) {
        if secret {
            self.redactor.add(&value);
        }
        self.captures.insert(name.to_owned(), value);
    }
}

impl Resolve for RunVars {
    fn secret(&self, name: &str) -> Result<String, String> {
        let value = self.secrets.get(name)?;
        self.redactor.add(&value);
        Ok(value)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        let value = self.secrets.file(path)?;
        // Both forms: with and without the trailing newline that rendering drops.
        self.redactor.add(&value);
        self.redactor.add(value.trim_end_matches(['\n', '\r']));
        Ok(value)
    }

    fn capture(&self, name: &str) -> Option<String> {
        self.captures.get(name).cloned()
    }

    fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        self.redactor.redact(text)
    }
}

/// A request ready to send (and to re-send on a redirect).
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub method: http::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

/// Renders every template of `req` and reads the files it sends. The error
/// says which part failed and never shows a rendered value (it may hold a
/// secret).
pub(super) async fn prepare(req: &Request, vars: &RunVars) -> Result<Prepared, String> {
    let text = |t: &Template, part: &dyn Fn() -> String| {
        t.render(vars)
            .map(|s| s.into_owned())
            .map_err(|e: RenderError| format!("{}: {e}", part()))
    };
    let mut url = match &req.url {
        Target::Fixed(url) => url.clone(),
        Target::Template(t) => {
            let raw = text(t, &|| "url".to_owned())?;
            Url::parse(&raw).map_err(|e| format!("invalid URL {t}: {e}"))?
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL {} is not http or https", req.url));
    }
    if !req.query.is_empty() {
        let mut values = Vec::with_capacity(req.query.len());
        for (name, t) in &req.query {
            values.push((name, text(t, &|| format!("query {name}"))?));
        }
        url.query_pairs_mut().extend_pairs(values);
    }

    let mut headers = HeaderMap::new();
    for (name, t) in &req.headers {
        let value = text(t, &|| format!("header {name}"))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name}: not a valid header value"))?;
        // Kept out of the HTTP stack's debug output.
        value.set_sensitive(credential_header(name) || t.as_literal().is_none());
        headers.append(name.clone(), value);
    }
    if let Some(auth) = &req.auth {
        headers.insert(AUTHORIZATION, authorization(auth, vars)?);
    }

    let body = match &req.body {
        None => None,
        Some(body) => {
            let (content_type, bytes) = match body {
                Body::Raw {
                    content_type,
                    text: t,
                } => (
                    content_type.clone(),
                    text(t, &|| "body".to_owned())?.into_bytes(),
                ),
                Body::Json(j) => {
                    let value = json(j, vars).map_err(|e| format!("body: {e}"))?;
                    (
                        "application/json".to_owned(),
                        value.to_string().into_bytes(),
                    )
                }
                Body::Form(fields) => {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    for (name, t) in fields {
                        form.append_pair(name, &text(t, &|| format!("form field {name}"))?);
                    }
                    (
                        "application/x-www-form-urlencoded".to_owned(),
                        form.finish().into_bytes(),
                    )
                }
                Body::Multipart(parts) => multipart::encode(parts, vars).await?,
            };
            if !headers.contains_key(CONTENT_TYPE) {
                let value = HeaderValue::from_str(&content_type).map_err(|_| {
                    format!("content type {content_type:?} is not a valid header value")
                })?;
                headers.insert(CONTENT_TYPE, value);
            }
            Some(bytes)
        }
    };

    Ok(Prepared {
        method: req.method.clone(),
        url,
        headers,
        body,
    })
}

/// The `Authorization` value of `auth`; its credentials join the redactor.
fn authorization(auth: &Auth, vars: &RunVars) -> Result<HeaderValue, String> {
    let value = match auth {
        Auth::Basic { username, password } => {
            let user = username
                .render(vars)
                .map_err(|e| format!("auth username: {e}"))?;
            let pass = password
                .render(vars)
                .map_err(|e| format!("auth password: {e}"))?;
            if user.contains(':') {
                return Err("auth username: a Basic auth username cannot contain `:`".into());
            }
            vars.redactor.add_basic(&user, &pass);
            format!("Basic {}", BASE64.encode(format!("{user}:{pass}")))
        }
        Auth::Bearer(token) => {
            let token = token
                .render(vars)
                .map_err(|e| format!("auth bearer token: {e}"))?;
            vars.redactor.add(&token);
            format!("Bearer {token}")
        }
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "auth: the credentials are not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

fn json(body: &JsonBody, vars: &RunVars) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value;
    Ok(match body {
        JsonBody::Value(v) => v.clone(),
        JsonBody::String(t) => Value::String(t.render(vars)?.into_owned()),
        JsonBody::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| json(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        JsonBody::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), json(v, vars)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
    })
}

/// A URL as shown in results and messages: without user info, query or
/// fragment, which may carry tokens.
pub(super) fn shown(url: &Url) -> String {
    if url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
    {
        return url.as_str().to_owned();
    }
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    // Fails only for URLs that cannot have credentials, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Redirects;

    fn t(s: &str) -> Template {
        Template::parse(s, |_| None).unwrap()
    }

    fn request(url: &str) -> Request {
        Request {
            method: http::Method::POST,
            url: Target::new(t(url)).unwrap(),
            headers: vec![(
                http::HeaderName::from_static("x-token"),
                t("${capture:tok}"),
            )],
            query: vec![("q".into(), t("a b&c"))],
            body: Some(Body::Form(vec![("csrf".into(), t("${capture:tok}"))])),
            redirects: Redirects::default(),
            auth: None,
        }
    }

    #[tokio::test]
    async fn renders_url_query_headers_and_form() {
        let mut vars = RunVars::default();
        vars.set_capture("tok", "x=1".into(), false);
        let p = prepare(&request("http://h/p?k=v"), &vars).await.unwrap();
        assert_eq!(p.url.as_str(), "http://h/p?k=v&q=a+b%26c");
        assert_eq!(p.headers["x-token"], "x=1");
        assert_eq!(p.headers[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(p.body.as_deref(), Some(&b"csrf=x%3D1"[..]));
    }

    #[tokio::test]
    async fn auth_sets_a_sensitive_header_and_feeds_the_redactor() {
        let mut vars = RunVars::default();
        vars.set_capture("tok", "secret-token".into(), true);
        let mut r = request("http://h/");
        r.auth = Some(Auth::Basic {
            username: t("demo"),
            password: t("${capture:tok}"),
        });
        let p = prepare(&r, &vars).await.unwrap();
        let header = &p.headers[AUTHORIZATION];
        assert_eq!(header, "Basic ZGVtbzpzZWNyZXQtdG9rZW4=");
        assert!(header.is_sensitive());
        assert_eq!(
            vars.redactor
                .redact("ZGVtbzpzZWNyZXQtdG9rZW4= secret-token"),
            "[redacted] [redacted]"
        );
        r.auth = Some(Auth::Bearer(t("${capture:tok}")));
        let p = prepare(&r, &vars).await.unwrap();
        assert_eq!(p.headers[AUTHORIZATION], "Bearer secret-token");
        assert!(!format!("{vars:?}").contains("secret-token"));
    }

    #[tokio::test]
    async fn render_errors_name_the_part_not_the_value() {
        let err = prepare(&request("http://h/"), &RunVars::default())
            .await
            .unwrap_err();
        assert_eq!(err, "header x-token: capture `tok` has no value");
        let mut r = request("https://${secret:SCARECROW_TEST_UNSET_SECRET}/");
        r.headers.clear();
        let err = prepare(&r, &RunVars::default()).await.unwrap_err();
        assert_eq!(
            err,
            "url: secret `SCARECROW_TEST_UNSET_SECRET`: not set in the environment"
        );
        // A literal URL is refused at load; a rendered one when it is sent.
        let err = Target::new(t("ftp://h/")).unwrap_err();
        assert!(err.contains("expected an http(s) URL"), "{err}");
        let mut vars = RunVars::default();
        vars.set_capture("tok", "h".into(), false);
        let err = prepare(&request("ftp://${capture:tok}/"), &vars)
            .await
            .unwrap_err();
        assert!(err.contains("not http or https"), "{err}");
    }

    #[test]
    fn shown_urls_drop_credentials_and_query() {
        let url = Url::parse("https://u:pw@h.example/a/b?token=1#x").unwrap();
        assert_eq!(shown(&url), "https://h.example/a/b");
        for (url, expected) in [
            ("http://h.example/a", "http://h.example/a"),
            ("https://u@h.example/", "https://h.example/"),
            ("https://h.example/#top", "https://h.example/"),
        ] {
            assert_eq!(shown(&Url::parse(url).unwrap()), expected);
        }
    }
}
