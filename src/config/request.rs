//! The parts of a step that shape its request beyond URL and headers: the
//! body (raw, JSON, form, multipart), `auth`, and the step's `timeout` and
//! `retries`.

use std::path::Path;

use toml::de::DeValue;

use super::expect;
use super::reader::{Table, Value, inner_span};
use super::values::{Reader, deny, pairs, template, text};
use crate::check::{Auth, Body, JsonBody, Part, PartContent, Retry};

/// The request body: at most one of `body`, `json`, `form`, `multipart`.
pub fn body(r: &mut Reader, t: &Table) -> Option<Option<Body>> {
    let raw = t.get("body");
    let json = t.get("json");
    let form = t.get("form");
    let multipart = t.get("multipart");
    let content_type = t.get("content_type");
    let given: Vec<_> = [raw, json, form, multipart].into_iter().flatten().collect();
    if given.len() > 1 {
        r.cx.error(
            given[1].span(),
            "a step has one body: `body`, `json`, `form` or `multipart`",
        );
        return None;
    }
    if let (Some(ct), None) = (content_type, raw) {
        r.cx.error(
            ct.span(),
            "`content_type` goes with a raw `body` (`json`, `form` and `multipart` set their own)",
        );
        return None;
    }
    if let Some(v) = raw {
        let content_type = match content_type {
            Some(ct) => r.cx.str(ct)?.to_owned(),
            None => "text/plain; charset=utf-8".to_owned(),
        };
        return Some(Some(Body::Raw {
            content_type,
            text: template(r, v)?,
        }));
    }
    if let Some(v) = json {
        return json_body(r, v).map(|j| Some(Body::Json(j)));
    }
    if let Some(v) = form {
        return pairs(r, v, "form").map(|p| Some(Body::Form(p)));
    }
    if let Some(v) = multipart {
        return parts(r, v).map(|p| Some(Body::Multipart(p)));
    }
    Some(None)
}

fn json_body(r: &mut Reader, v: &Value) -> Option<JsonBody> {
    Some(match v.get_ref() {
        DeValue::String(_) => JsonBody::String(template(r, v)?),
        DeValue::Array(items) => JsonBody::Array(
            items
                .iter()
                .map(|i| json_body(r, i))
                .collect::<Option<_>>()?,
        ),
        DeValue::Table(t) => JsonBody::Object(
            t.iter()
                .map(|(k, v)| Some((k.get_ref().to_string(), json_body(r, v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => JsonBody::Value(expect::json_value(r, v)?),
    })
}

/// `multipart = [{ name, value }, { name, path, content_type?, filename? }]`.
fn parts(r: &mut Reader, v: &Value) -> Option<Vec<Part>> {
    let items = r.cx.array(v)?;
    if items.is_empty() {
        r.cx.error(v.span(), "`multipart` needs at least one part");
        return None;
    }
    let parts: Vec<_> = items.iter().map(|item| part(r, item)).collect();
    parts.into_iter().collect()
}

fn part(r: &mut Reader, v: &Value) -> Option<Part> {
    let t = r.cx.table(v, "a multipart part")?;
    let name = match t.get("name") {
        Some(nv) => r.cx.str(nv).map(str::to_owned),
        None => {
            r.cx.error(t.span.clone(), "a multipart part needs a `name`");
            None
        }
    };
    let value = t.get("value");
    let path = t.get("path");
    let content_type = t.get("content_type");
    let filename = t.get("filename");
    let content = match (value, path) {
        (Some(v), None) => {
            for extra in [content_type, filename].into_iter().flatten() {
                r.cx.error(extra.span(), "`content_type` and `filename` go with `path`");
            }
            template(r, v).map(PartContent::Text)
        }
        (None, Some(p)) => file_part(r, p, content_type, filename),
        (Some(_), Some(p)) => {
            r.cx.error(
                p.span(),
                "a part has either a `value` or a `path`, not both",
            );
            None
        }
        (None, None) => {
            r.cx.error(
                t.span.clone(),
                "a multipart part needs a `value` (text) or a `path` (a file)",
            );
            None
        }
    };
    t.finish(&mut r.cx);
    Some(Part {
        name: name?,
        content: content?,
    })
}

fn file_part(
    r: &mut Reader,
    p: &Value,
    content_type: Option<&Value>,
    filename: Option<&Value>,
) -> Option<PartContent> {
    let written = text(r, p)?;
    // Relative to the check file, so the check runs from any directory.
    let dir = r.cx.src.path.parent().unwrap_or(Path::new(""));
    let path = dir.join(&written);
    if let Err(message) = r.access.file(&path) {
        deny(r, p.span(), message);
        return None;
    }
    if !path.is_file() {
        r.cx.warning(
            p.span(),
            format!(
                "file {} does not exist; runs of this check fail until it does",
                path.display()
            ),
        );
    }
    let content_type = match content_type {
        Some(ct) => {
            let s = r.cx.str(ct)?;
            if http::HeaderValue::from_str(s).is_err() {
                r.cx.error(ct.span(), format!("{s:?} is not a valid content type"));
                return None;
            }
            s.to_owned()
        }
        None => "application/octet-stream".to_owned(),
    };
    let filename = match filename {
        Some(f) => r.cx.str(f)?.to_owned(),
        None => Path::new(&written)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Some(PartContent::File {
        path,
        filename,
        content_type,
    })
}

/// `auth = { basic = { username, password } }` or `auth = { bearer = "…" }`.
pub fn auth(r: &mut Reader, v: &Value) -> Option<Auth> {
    let t = r.cx.table(v, "auth")?;
    let basic = t.get("basic");
    let bearer = t.get("bearer");
    let auth = match (basic, bearer) {
        (Some(b), None) => basic_auth(r, b),
        (None, Some(token)) => template(r, token).map(Auth::Bearer),
        (Some(_), Some(token)) => {
            r.cx.error(
                token.span(),
                "`auth` is either `basic` or `bearer`, not both",
            );
            None
        }
        (None, None) => {
            r.cx.error(
                t.span.clone(),
                "`auth` needs `basic = { username, password }` or `bearer = \"…\"`",
            );
            None
        }
    };
    t.finish(&mut r.cx);
    auth
}

fn basic_auth(r: &mut Reader, v: &Value) -> Option<Auth> {
    let t = r.cx.table(v, "auth.basic")?;
    let field = |r: &mut Reader, key: &'static str| match t.get(key) {
        Some(fv) => template(r, fv).map(|tpl| (tpl, fv.span())),
        None => {
            r.cx.error(t.span.clone(), format!("`basic` needs a `{key}`"));
            None
        }
    };
    let username = field(r, "username");
    let password = field(r, "password");
    t.finish(&mut r.cx);
    let (username, span) = username?;
    // RFC 7617: the user-id cannot hold a colon (the password can).
    if let Some(at) = username.as_literal().and_then(|u| u.find(':')) {
        let at = inner_span(&r.cx, span, at, 1);
        r.cx.error(at, "a Basic auth username cannot contain `:`");
        return None;
    }
    Some(Auth::Basic {
        username,
        password: password?.0,
    })
}

/// A step's `timeout`, `retries` and `retry_interval`.
pub fn timing(r: &mut Reader, t: &Table) -> Option<(Option<std::time::Duration>, Retry)> {
    let timeout = match t.get("timeout") {
        Some(v) => Some(r.cx.duration(v)?),
        None => None,
    };
    let mut retry = Retry::default();
    let retries = t.get("retries");
    if let Some(v) = retries {
        retry.retries = r.cx.uint(v, 0..=100)? as u32;
    }
    if let Some(v) = t.get("retry_interval") {
        if retries.is_none() {
            r.cx.error(v.span(), "`retry_interval` goes with `retries`");
            return None;
        }
        retry.interval = r.cx.duration(v)?;
    }
    Some((timeout, retry))
}

#[cfg(test)]
mod tests {
    use crate::check::{Auth, Body, Check, PartContent, Retry, StepKind};
    use crate::config::{Defaults, Source, read_check};

    fn load(text: &str) -> Result<Check, String> {
        let src = Source::new("tests/checks/t.toml", text.to_owned());
        let (check, diags) = read_check(&src, &Defaults::default(), &|_| None);
        let messages = diags
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("\n");
        check.ok_or(messages)
    }

    #[test]
    fn multipart_auth_timeout_and_retries_load() {
        let c = load(
            r#"
            [[step]]
            url = "http://h/upload"
            method = "POST"
            auth = { basic = { username = "u", password = "${secret:PW}" } }
            multipart = [
                { name = "note", value = "hi" },
                { name = "file", path = "data/invoice.pdf", content_type = "application/pdf" },
            ]
            timeout = "2s"
            retries = 3
            retry_interval = "500ms"

            [[step]]
            url = "http://h/me"
            auth = { bearer = "${secret:TOKEN}" }
            "#,
        )
        .unwrap();
        let s = &c.steps[0];
        assert_eq!(s.timeout, Some(std::time::Duration::from_secs(2)));
        assert_eq!(
            s.retry,
            Retry {
                retries: 3,
                interval: std::time::Duration::from_millis(500)
            }
        );
        let StepKind::Http(request) = &s.kind else {
            panic!("an HTTP step");
        };
        assert!(matches!(request.auth, Some(Auth::Basic { .. })));
        let Some(Body::Multipart(parts)) = &request.body else {
            panic!("{:?}", request.body)
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1].content,
            PartContent::File {
                path: "tests/checks/data/invoice.pdf".into(),
                filename: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
            }
        );
        let StepKind::Http(second) = &c.steps[1].kind else {
            panic!("an HTTP step");
        };
        assert!(matches!(second.auth, Some(Auth::Bearer(_))));
        assert_eq!(c.steps[1].retry, Retry::default());
        assert!(!format!("{:?}", request.auth).contains("secret:PW"));
    }

    #[test]
    fn conflicting_or_incomplete_keys_are_load_errors() {
        let err = load(
            r#"
            [[step]]
            url = "http://h/"
            headers = { authorization = "x" }
            auth = { basic = { username = "a:b" }, bearer = "t" }
            multipart = [{ name = "a", value = "v", path = "p" }, { value = "v", filename = "f" }]
            form = { a = "b" }
            retry_interval = "1s"
            "#,
        )
        .unwrap_err();
        for expected in [
            "`auth` is either `basic` or `bearer`, not both",
            "a step has one body: `body`, `json`, `form` or `multipart`",
            "`retry_interval` goes with `retries`",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let err = load(
            r#"
            [[step]]
            url = "http://h/"
            headers = { Authorization = "x" }
            auth = { basic = { username = "a:b" } }
            multipart = [{ name = "a", value = "v", path = "p" }, { value = "v", filename = "f" }]
            "#,
        )
        .unwrap_err();
        for expected in [
            "`basic` needs a `password`",
            "a part has either a `value` or a `path`, not both",
            "a multipart part needs a `name`",
            "`content_type` and `filename` go with `path`",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let err = load(
            r#"
            [[step]]
            url = "http://h/"
            headers = { Authorization = "x" }
            auth = { bearer = "t" }
            "#,
        )
        .unwrap_err();
        assert!(
            err.contains("`auth` sets the Authorization header; remove it from `headers`"),
            "{err}"
        );
    }
}
