//! A step's request with its templates filled in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

use super::credential::{Tracked, tracked};
use super::multipart;
use crate::check::{Auth, Body, JsonBody, Request, Target, credential_header};
use crate::probe::context::RunVars;
use crate::template::{RenderError, Resolve, Template};

/// A request ready to send (and to re-send on a redirect).
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub method: http::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// The headers whose value came from a credential (`auth`, a
    /// `${secret:}`, a `${file:}`, a secret capture): a redirect to another
    /// origin does not carry them.
    pub credential_headers: Vec<HeaderName>,
    /// What the body is ("form", "JSON body"…) if it holds a credential:
    /// a 307 or 308 may not re-send it to another origin.
    pub credential_body: Option<&'static str>,
}

/// Renders every template of `req` and reads the files it sends. The error
/// says which part failed and never shows a rendered value (it may hold a
/// secret).
pub(super) async fn prepare(req: &Request, vars: &RunVars) -> Result<Prepared, String> {
    let text = |t: &Template, part: &dyn Fn() -> String| {
        tracked(t, vars).map_err(|e: RenderError| format!("{}: {e}", part()))
    };
    let mut url = match &req.url {
        Target::Fixed(url) => url.clone(),
        Target::Template(t) => {
            let (raw, _) = text(t, &|| "url".to_owned())?;
            Url::parse(&raw).map_err(|e| format!("invalid URL {t}: {e}"))?
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL {} is not http or https", req.url));
    }
    if !req.query.is_empty() {
        let mut values = Vec::with_capacity(req.query.len());
        for (name, t) in &req.query {
            values.push((name, text(t, &|| format!("query {name}"))?.0));
        }
        url.query_pairs_mut().extend_pairs(values);
    }

    let mut headers = HeaderMap::new();
    let mut credential_headers = Vec::new();
    for (name, t) in &req.headers {
        let (value, credential) = text(t, &|| format!("header {name}"))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name}: not a valid header value"))?;
        // Kept out of the HTTP stack's debug output.
        value.set_sensitive(credential_header(name) || t.as_literal().is_none());
        headers.append(name.clone(), value);
        if credential {
            credential_headers.push(name.clone());
        }
    }
    if let Some(auth) = &req.auth {
        headers.insert(AUTHORIZATION, authorization(auth, vars)?);
        credential_headers.push(AUTHORIZATION);
    }

    let mut credential_body = None;
    let body = match &req.body {
        None => None,
        Some(body) => {
            let (content_type, bytes, credential) = match body {
                Body::Raw {
                    content_type,
                    text: t,
                } => {
                    let (raw, credential) = text(t, &|| "body".to_owned())?;
                    (content_type.clone(), raw.into_bytes(), credential)
                }
                Body::Json(j) => {
                    let with = Tracked::new(vars);
                    let value = json(j, &with).map_err(|e| format!("body: {e}"))?;
                    (
                        "application/json".to_owned(),
                        value.to_string().into_bytes(),
                        with.used_credential(),
                    )
                }
                Body::Form(fields) => {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    let mut credential = false;
                    for (name, t) in fields {
                        let (value, from) = text(t, &|| format!("form field {name}"))?;
                        form.append_pair(name, &value);
                        credential |= from;
                    }
                    (
                        "application/x-www-form-urlencoded".to_owned(),
                        form.finish().into_bytes(),
                        credential,
                    )
                }
                Body::Multipart(parts) => multipart::encode(parts, vars).await?,
            };
            if credential {
                credential_body = Some(body_kind(body));
            }
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
        credential_headers,
        credential_body,
    })
}

/// A body's kind as a message names it.
fn body_kind(body: &Body) -> &'static str {
    match body {
        Body::Raw { .. } => "body",
        Body::Json(_) => "JSON body",
        Body::Form(_) => "form",
        Body::Multipart(_) => "multipart body",
    }
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

fn json(body: &JsonBody, vars: &dyn Resolve) -> Result<serde_json::Value, RenderError> {
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
pub(crate) fn shown(url: &Url) -> String {
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
    async fn values_from_credentials_are_known_by_where_they_came_from() {
        let mut vars = RunVars::default();
        vars.set_capture("tok", "plain".into(), false);
        vars.set_capture("key", "hidden".into(), true);
        let mut r = request("http://h/");
        let p = prepare(&r, &vars).await.unwrap();
        assert!(p.credential_headers.is_empty());
        assert_eq!(p.credential_body, None);

        r.headers.push((
            http::HeaderName::from_static("x-key"),
            t("k ${capture:key}"),
        ));
        r.body = Some(Body::Form(vec![("pw".into(), t("${capture:key}"))]));
        r.auth = Some(Auth::Bearer(t("plain")));
        let p = prepare(&r, &vars).await.unwrap();
        assert_eq!(p.credential_headers, ["x-key", "authorization"]);
        assert_eq!(p.credential_body, Some("form"));
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
