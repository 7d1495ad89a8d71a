//! A step's request with its templates filled in, and what fills them.

use std::collections::BTreeMap;
use std::path::Path;

use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::Url;

use super::Secrets;
use crate::check::{Body, JsonBody, Request};
use crate::template::{RenderError, Resolve, Template};

/// What one run supplies to templates: its captures, the environment's
/// secrets and secret files.
#[derive(Debug, Clone, Default)]
pub(super) struct RunVars {
    captures: BTreeMap<String, String>,
    secrets: Secrets,
}

impl RunVars {
    pub(super) fn new(secrets: Secrets) -> Self {
        RunVars {
            captures: BTreeMap::new(),
            secrets,
        }
    }

    pub(super) fn set_capture(&mut self, name: &str, value: String) {
        self.captures.insert(name.to_owned(), value);
    }
}

impl Resolve for RunVars {
    fn secret(&self, name: &str) -> Result<String, String> {
        self.secrets.get(name)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn capture(&self, name: &str) -> Option<String> {
        self.captures.get(name).cloned()
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

/// Renders every template of `req`. The error says which part failed and
/// never shows a rendered value (it may hold a secret).
pub(super) fn prepare(req: &Request, vars: &RunVars) -> Result<Prepared, String> {
    let text = |t: &Template, part: &dyn Fn() -> String| {
        t.render(vars)
            .map(|s| s.into_owned())
            .map_err(|e: RenderError| format!("{}: {e}", part()))
    };
    let raw = text(&req.url, &|| "url".to_owned())?;
    let mut url = Url::parse(&raw).map_err(|e| format!("invalid URL {}: {e}", req.url))?;
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
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name}: not a valid header value"))?;
        headers.append(name.clone(), value);
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
            url: t(url),
            headers: vec![(
                http::HeaderName::from_static("x-token"),
                t("${capture:tok}"),
            )],
            query: vec![("q".into(), t("a b&c"))],
            body: Some(Body::Form(vec![("csrf".into(), t("${capture:tok}"))])),
            redirects: Redirects::default(),
        }
    }

    #[test]
    fn renders_url_query_headers_and_form() {
        let mut vars = RunVars::default();
        vars.set_capture("tok", "x=1".into());
        let p = prepare(&request("http://h/p?k=v"), &vars).unwrap();
        assert_eq!(p.url.as_str(), "http://h/p?k=v&q=a+b%26c");
        assert_eq!(p.headers["x-token"], "x=1");
        assert_eq!(p.headers[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(p.body.as_deref(), Some(&b"csrf=x%3D1"[..]));
    }

    #[test]
    fn render_errors_name_the_part_not_the_value() {
        let err = prepare(&request("http://h/"), &RunVars::default()).unwrap_err();
        assert_eq!(err, "header x-token: capture `tok` has no value");
        let mut r = request("https://${secret:SCARECROW_TEST_UNSET_SECRET}/");
        r.headers.clear();
        let err = prepare(&r, &RunVars::default()).unwrap_err();
        assert_eq!(
            err,
            "url: secret `SCARECROW_TEST_UNSET_SECRET`: not set in the environment"
        );
        let err = prepare(&request("ftp://h/"), &RunVars::default()).unwrap_err();
        assert!(err.contains("not http or https"), "{err}");
    }

    #[test]
    fn shown_urls_drop_credentials_and_query() {
        let url = Url::parse("https://u:pw@h.example/a/b?token=1#x").unwrap();
        assert_eq!(shown(&url), "https://h.example/a/b");
    }
}
