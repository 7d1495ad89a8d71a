//! A step's `[step.expect]` assertions and `[[step.capture]]` captures.

use toml::de::DeValue;

use super::check_file::{Reader, template};
use super::reader::{Table, Value};
use crate::assert::{
    Assertion, CountRange, Css, JsonPath, Pattern, Predicate, Query, StatusMatch, StatusSet,
};
use crate::check::{Capture, CaptureSource, Redirects};

/// Reads `[step.expect]`. Without a `status`, a step expects 2xx (and 3xx
/// when it does not follow redirects): a check that forgets the status must
/// still notice a 500.
pub fn assertions(
    r: &mut Reader,
    v: Option<&Value>,
    redirects: Option<Redirects>,
) -> Option<Vec<Assertion>> {
    let mut out = Vec::new();
    let mut ok = true;
    let table = match v {
        Some(v) => Some(r.cx.table(v, "[step.expect]")?),
        None => None,
    };
    let status = table.as_ref().and_then(|t| t.get("status"));
    let status = match status {
        Some(v) => status_set(r, v),
        None => Some(StatusSet(match redirects {
            Some(Redirects::None) => vec![StatusMatch::Class(2), StatusMatch::Class(3)],
            _ => vec![StatusMatch::Class(2)],
        })),
    };
    match status {
        Some(s) => out.push(Assertion {
            query: Query::Status,
            predicate: Predicate::Status(s),
        }),
        None => ok = false,
    }
    let Some(t) = table else {
        return ok.then_some(out);
    };
    let mut push = |a: Option<Assertion>| match a {
        Some(a) => out.push(a),
        None => ok = false,
    };
    if let Some(v) = t.get("max_response_time") {
        push(r.cx.duration(v).map(|d| Assertion {
            query: Query::ResponseTime,
            predicate: Predicate::Under(d),
        }));
    }
    if let Some(v) = t.get("max_body_size") {
        push(r.cx.size(v).map(|n| Assertion {
            query: Query::BodySize,
            predicate: Predicate::UnderBytes(n),
        }));
    }
    for (key, make) in [
        ("body_contains", Predicate::Contains as fn(_) -> _),
        ("body_not_contains", Predicate::NotContains),
    ] {
        if let Some(v) = t.get(key) {
            let items = if v.get_ref().is_str() {
                std::slice::from_ref(v)
            } else {
                r.cx.array(v).unwrap_or(&[])
            };
            for item in items {
                push(template(r, item).map(|tpl| Assertion {
                    query: Query::Body,
                    predicate: make(tpl),
                }));
            }
        }
    }
    if let Some(v) = t.get("body_matches") {
        for (s, span) in r.cx.strings(v) {
            push(regex(r, s, span).map(|p| Assertion {
                query: Query::Body,
                predicate: Predicate::Matches(p),
            }));
        }
    }
    for (key, what) in [
        ("header", "[[step.expect.header]]"),
        ("css", "[[step.expect.css]]"),
        ("json", "[[step.expect.json]]"),
    ] {
        let Some(v) = t.get(key) else { continue };
        let Some(items) = r.cx.array(v) else {
            ok = false;
            continue;
        };
        for item in items {
            match entry(r, item, key, what) {
                Some(mut list) => out.append(&mut list),
                None => ok = false,
            }
        }
    }
    t.finish(&mut r.cx);
    ok.then_some(out)
}

/// One `[[step.expect.header|css|json]]` entry: a subject and one or more
/// predicates, each becoming an assertion.
fn entry(r: &mut Reader, v: &Value, kind: &str, what: &'static str) -> Option<Vec<Assertion>> {
    let t = r.cx.table(v, what)?;
    let subject_key = match kind {
        "header" => "name",
        "css" => "selector",
        _ => "path",
    };
    let query = match t.get(subject_key) {
        None => {
            r.cx.error(t.span.clone(), format!("{what} needs `{subject_key}`"));
            None
        }
        Some(sv) => {
            let s = r.cx.str(sv);
            s.and_then(|s| subject(r, &t, kind, s, sv))
        }
    };
    let mut preds = Vec::new();
    let mut ok = true;
    for key in [
        "exists",
        "count",
        "equals",
        "contains",
        "not_contains",
        "matches",
    ] {
        let Some(pv) = t.get(key) else { continue };
        let p = match key {
            "exists" => r.cx.bool(pv).map(Predicate::Exists),
            "count" if kind == "css" => count(r, pv).map(Predicate::Count),
            "equals" if kind == "json" => json_value(r, pv).map(Predicate::JsonEquals),
            "equals" => template(r, pv).map(Predicate::Equals),
            "contains" => template(r, pv).map(Predicate::Contains),
            "not_contains" => template(r, pv).map(Predicate::NotContains),
            "matches" => {
                r.cx.str(pv)
                    .and_then(|s| regex(r, s, pv.span()))
                    .map(Predicate::Matches)
            }
            _ => {
                let key_span = t.key_span(key).unwrap_or(pv.span());
                r.cx.error(key_span, format!("`{key}` applies to css selectors only"));
                None
            }
        };
        match p {
            Some(p) => preds.push(p),
            None => ok = false,
        }
    }
    if preds.is_empty() && ok {
        r.cx.error(
            t.span.clone(),
            format!("{what} needs a predicate: `exists`, `equals`, `contains`, `not_contains`, `matches`{}", if kind == "css" { " or `count`" } else { "" }),
        );
        ok = false;
    }
    t.finish(&mut r.cx);
    let query = query?;
    ok.then(|| {
        preds
            .into_iter()
            .map(|predicate| Assertion {
                query: query.clone(),
                predicate,
            })
            .collect()
    })
}

fn subject(r: &mut Reader, t: &Table, kind: &str, s: &str, v: &Value) -> Option<Query> {
    match kind {
        "header" => match http::HeaderName::from_bytes(s.as_bytes()) {
            Ok(h) => Some(Query::Header(h)),
            Err(_) => {
                r.cx.error(v.span(), format!("invalid header name {s:?}"));
                None
            }
        },
        "css" => {
            let attr = t.get("attr").and_then(|a| r.cx.str(a)).map(str::to_owned);
            css(r, s, v).map(|selector| Query::Css { selector, attr })
        }
        _ => json_path(r, s, v).map(Query::JsonPath),
    }
}

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
    let sources: Vec<_> = ["css", "regex", "header", "jsonpath"]
        .into_iter()
        .filter_map(|k| t.get(k).map(|v| (k, v)))
        .collect();
    let attr = t.get("attr");
    let source = match sources.as_slice() {
        [(kind, sv)] => r.cx.str(sv).and_then(|s| match *kind {
            "css" => {
                let attr = attr.and_then(|a| r.cx.str(a)).map(str::to_owned);
                css(r, s, sv).map(|selector| CaptureSource::Css { selector, attr })
            }
            "regex" => regex(r, s, sv.span()).map(CaptureSource::Regex),
            "header" => match http::HeaderName::from_bytes(s.as_bytes()) {
                Ok(h) => Some(CaptureSource::Header(h)),
                Err(_) => {
                    r.cx.error(sv.span(), format!("invalid header name {s:?}"));
                    None
                }
            },
            _ => json_path(r, s, sv).map(CaptureSource::JsonPath),
        }),
        [] => {
            r.cx.error(
                t.span.clone(),
                "a capture needs one of `css`, `regex`, `header`, `jsonpath`",
            );
            None
        }
        [_, (_, second), ..] => {
            r.cx.error(
                second.span(),
                "a capture takes one of `css`, `regex`, `header`, `jsonpath`",
            );
            None
        }
    };
    if let (Some(a), false) = (attr, matches!(sources.as_slice(), [("css", _)])) {
        r.cx.error(a.span(), "`attr` goes with `css`");
    }
    t.finish(&mut r.cx);
    Some(Capture {
        name: name?,
        source: source?,
    })
}

fn status_set(r: &mut Reader, v: &Value) -> Option<StatusSet> {
    let items = match v.get_ref() {
        DeValue::Array(a) => &a[..],
        _ => std::slice::from_ref(v),
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let m = match item.get_ref() {
            DeValue::String(s) => match s.as_bytes() {
                [d @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                    Some(StatusMatch::Class(u16::from(d - b'0')))
                }
                _ => {
                    r.cx.error(
                        item.span(),
                        format!("invalid status class {s:?} (write e.g. \"2xx\")"),
                    );
                    None
                }
            },
            DeValue::Integer(_) => {
                r.cx.uint(item, 100..=599)
                    .map(|n| StatusMatch::Code(n as u16))
            }
            other => {
                r.cx.error(
                    item.span(),
                    format!(
                        "expected a status code or class like \"2xx\", found {}",
                        other.type_str()
                    ),
                );
                None
            }
        };
        match m {
            Some(m) => out.push(m),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if out.is_empty() {
        r.cx.error(v.span(), "expected at least one status");
        return None;
    }
    Some(StatusSet(out))
}

fn count(r: &mut Reader, v: &Value) -> Option<CountRange> {
    if v.get_ref().is_integer() {
        return r.cx.uint(v, 0..=u64::MAX).map(CountRange::exactly);
    }
    let t = r.cx.table(v, "count")?;
    let min = t.get("min").map(|v| r.cx.uint(v, 0..=u64::MAX));
    let max = t.get("max").map(|v| r.cx.uint(v, 0..=u64::MAX));
    t.finish(&mut r.cx);
    let range = CountRange {
        min: min.flatten(),
        max: max.flatten(),
    };
    match (range.min, range.max) {
        (None, None) => {
            r.cx.error(v.span(), "count needs `min`, `max` or both (or a number)");
            None
        }
        (Some(a), Some(b)) if a > b => {
            r.cx.error(v.span(), format!("count min {a} is above max {b}"));
            None
        }
        _ => Some(range),
    }
}

fn regex(r: &mut Reader, s: &str, span: std::ops::Range<usize>) -> Option<Pattern> {
    match regex::Regex::new(s) {
        Ok(re) => Some(Pattern(re)),
        Err(e) => {
            let why = e.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim_start_matches("error: ");
            r.cx.error(span, format!("invalid regular expression: {why}"));
            None
        }
    }
}

fn css(r: &mut Reader, s: &str, v: &Value) -> Option<Css> {
    match Css::parse(s) {
        Ok(c) => Some(c),
        Err(e) => {
            r.cx.error(v.span(), format!("invalid CSS selector {s:?}: {e}"));
            None
        }
    }
}

fn json_path(r: &mut Reader, s: &str, v: &Value) -> Option<JsonPath> {
    match JsonPath::parse(s) {
        Ok(p) => Some(p),
        Err(e) => {
            r.cx.error(v.span(), format!("invalid JSONPath {s:?}: {e}"));
            None
        }
    }
}

/// A TOML value as JSON, for `equals` and JSON bodies.
pub fn json_value(r: &mut Reader, v: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match v.get_ref() {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Integer(_) => J::from(r.cx.int(v)?),
        DeValue::Float(f) => match f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => J::Number(n),
            None => {
                r.cx.error(v.span(), "this number has no JSON form");
                return None;
            }
        },
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(a) => J::Array(a.iter().map(|i| json_value(r, i)).collect::<Option<_>>()?),
        DeValue::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| Some((k.get_ref().to_string(), json_value(r, v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}
