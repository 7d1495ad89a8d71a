//! A step's `[[step.capture]]` entries: values taken from a response for
//! later steps.

use toml::de::DeValue;

use super::expect::{css, json_path, regex};
use super::reader::{Table, Value};
use super::values::Reader;
use crate::check::{Capture, Pick, Query, credential_header};

/// The keys that name a capture's source, in the order messages list them.
const SOURCES: [&str; 7] = [
    "css", "regex", "header", "jsonpath", "cookie", "url", "status",
];

/// Reads `[[step.capture]]` entries and records their names for later steps.
pub fn captures(r: &mut Reader, v: &Value) -> Option<Vec<Capture>> {
    let items = r.cx.array(v)?;
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match capture(r, item) {
            Some(c) => {
                r.captures.push(c.name.clone());
                out.push(c);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn capture(r: &mut Reader, v: &Value) -> Option<Capture> {
    let t = r.cx.table(v, "[[step.capture]]")?;
    let name = match t.get("name") {
        Some(nv) => r.cx.str(nv).and_then(|n| {
            let valid = !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                r.cx.error(
                    nv.span(),
                    format!("capture name {n:?} may only use letters, digits, `_` and `-`"),
                );
            }
            valid.then(|| n.to_owned())
        }),
        None => {
            r.cx.error(t.span.clone(), "a capture needs a `name`");
            None
        }
    };
    let sources: Vec<_> = SOURCES
        .into_iter()
        .filter_map(|k| t.get(k).map(|v| (k, v)))
        .collect();
    let attr = t.get("attr");
    let listed = || {
        let keys: Vec<_> = SOURCES.iter().map(|k| format!("`{k}`")).collect();
        keys.join(", ")
    };
    let query = match sources.as_slice() {
        [(kind, sv)] => source(r, &t, kind, sv),
        [] => {
            r.cx.error(
                t.span.clone(),
                format!("a capture needs one of {}", listed()),
            );
            None
        }
        [_, (_, second), ..] => {
            r.cx.error(
                second.span(),
                format!("a capture takes one of {}", listed()),
            );
            None
        }
    };
    if let (Some(a), false) = (attr, matches!(sources.as_slice(), [("css", _)])) {
        r.cx.error(a.span(), "`attr` goes with `css`");
    }
    // Session cookies and credential headers are secrets unless the file
    // says otherwise.
    let secret_by_default = match &query {
        Some(Query::Cookie(_)) => true,
        Some(Query::Pick(Pick::Header(h))) => credential_header(h),
        _ => false,
    };
    let secret = match t.get("secret") {
        Some(sv) => r.cx.bool(sv),
        None => Some(secret_by_default),
    };
    t.finish(&mut r.cx);
    Some(Capture {
        name: name?,
        query: query?,
        secret: secret?,
    })
}

fn source(r: &mut Reader, t: &Table, kind: &str, sv: &Value) -> Option<Query> {
    if matches!(kind, "url" | "status") {
        return match sv.get_ref() {
            DeValue::Boolean(true) => Some(if kind == "url" {
                Query::Url
            } else {
                Query::Status
            }),
            _ => {
                let what = if kind == "url" {
                    "the URL of the last request"
                } else {
                    "the status code"
                };
                r.cx.error(
                    sv.span(),
                    format!("write `{kind} = true` to capture {what}"),
                );
                None
            }
        };
    }
    let s = r.cx.str(sv)?;
    match kind {
        "css" => {
            let attr = t.get("attr").and_then(|a| r.cx.str(a)).map(str::to_owned);
            css(r, s, sv).map(|selector| Query::Pick(Pick::Css { selector, attr }))
        }
        "regex" => regex(r, s, sv.span()).map(|p| Query::Pick(Pick::Regex(p))),
        "header" => match http::HeaderName::from_bytes(s.as_bytes()) {
            Ok(h) => Some(Query::Pick(Pick::Header(h))),
            Err(_) => {
                r.cx.error(sv.span(), format!("invalid header name {s:?}"));
                None
            }
        },
        "cookie" if s.is_empty() || s.contains([';', '=', ' ']) => {
            r.cx.error(sv.span(), format!("{s:?} is not a cookie name"));
            None
        }
        "cookie" => Some(Query::Cookie(s.to_owned())),
        _ => json_path(r, s, sv).map(|p| Query::Pick(Pick::JsonPath(p))),
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{Capture, Query};
    use crate::config::{Defaults, Source, read_check};

    fn load(text: &str) -> Result<Vec<Capture>, String> {
        let src = Source::new("checks/t.toml", text.to_owned());
        let (check, diags) = read_check(&src, &Defaults::default(), &|_| None);
        match check {
            Some(c) => Ok(c.steps.into_iter().flat_map(|s| s.captures).collect()),
            None => Err(diags
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("\n")),
        }
    }

    #[test]
    fn cookie_url_and_status_captures_and_who_is_secret() {
        let got = load(
            r#"
            [[step]]
            url = "http://h/"
            capture = [
                { name = "sid", cookie = "session" },
                { name = "sid2", cookie = "session", secret = false },
                { name = "where", url = true },
                { name = "code", status = true },
                { name = "auth", header = "authorization" },
                { name = "tok", regex = "t=(\\w+)", secret = true },
            ]
            "#,
        )
        .unwrap();
        let kinds: Vec<_> = got.iter().map(|c| (c.name.as_str(), c.secret)).collect();
        assert_eq!(
            kinds,
            [
                ("sid", true),
                ("sid2", false),
                ("where", false),
                ("code", false),
                ("auth", true),
                ("tok", true)
            ]
        );
        assert_eq!(got[0].query, Query::Cookie("session".into()));
        assert_eq!(got[2].query, Query::Url);
        assert_eq!(got[3].query, Query::Status);
    }

    #[test]
    fn a_capture_has_one_source_and_flags_are_true() {
        let err = load(
            r#"
            [[step]]
            url = "http://h/"
            capture = [
                { name = "a", url = false },
                { name = "b", cookie = "x", status = true },
                { name = "c", cookie = "a=b" },
                { name = "d" },
            ]
            "#,
        )
        .unwrap_err();
        assert!(
            err.contains("write `url = true` to capture the URL of the last request"),
            "{err}"
        );
        assert!(
            err.contains("a capture takes one of `css`, `regex`"),
            "{err}"
        );
        assert!(err.contains("\"a=b\" is not a cookie name"), "{err}");
        assert!(err.contains("a capture needs one of"), "{err}");
    }
}
