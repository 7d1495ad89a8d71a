//! A step's `[step.expect]` assertions.

use toml::de::DeValue;

use super::reader::{Table, Value, inner_span};
use super::values::{Reader, template};
use crate::check::{
    Assertion, CountRange, Css, DateFormat, Freshness, JsonPath, NumberRange, Pattern, Pick,
    Predicate, Redirects, StatusMatch, StatusSet, TextPredicate,
};

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
        Some(s) => out.push(Assertion::Status(s)),
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
        push(r.cx.duration(v).map(Assertion::ResponseTime));
    }
    if let Some(v) = t.get("max_body_size") {
        push(r.cx.size(v).map(|n| Assertion::BodySize(n.bytes())));
    }
    if let Some(v) = t.get("min_cert_days") {
        push(
            r.cx.uint(v, 0..=3650)
                .map(|n| Assertion::CertDays(n as u32)),
        );
    }
    for (key, make) in [
        ("body_contains", TextPredicate::Contains as fn(_) -> _),
        ("body_not_contains", TextPredicate::NotContains),
    ] {
        if let Some(v) = t.get(key) {
            let items = if v.get_ref().is_str() {
                std::slice::from_ref(v)
            } else {
                r.cx.array(v).unwrap_or(&[])
            };
            for item in items {
                push(template(r, item).map(|tpl| Assertion::Body(make(tpl))));
            }
        }
    }
    if let Some(v) = t.get("body_matches") {
        for (s, span) in r.cx.strings(v) {
            push(regex(r, s, span).map(|p| Assertion::Body(TextPredicate::Matches(p))));
        }
    }
    for (key, what) in [
        ("header", "[[step.expect.header]]"),
        ("css", "[[step.expect.css]]"),
        ("json", "[[step.expect.json]]"),
        ("body", "[[step.expect.body]]"),
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

/// One `[[step.expect.header|css|json|body]]` entry: a subject and one or more
/// predicates, each becoming an assertion.
fn entry(r: &mut Reader, v: &Value, kind: &str, what: &'static str) -> Option<Vec<Assertion>> {
    let t = r.cx.table(v, what)?;
    let subject_key = match kind {
        "header" => "name",
        "css" => "selector",
        "body" => "regex",
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
        // A body regex takes value predicates only: `body_contains` and
        // `body_matches` judge the body as text.
        if kind == "body" {
            break;
        }
        let Some(pv) = t.get(key) else { continue };
        let p = match key {
            "exists" => r.cx.bool(pv).map(Predicate::Exists),
            "count" if kind == "css" => count(r, pv).map(Predicate::Count),
            "equals" if kind == "json" => json_value(r, pv).map(Predicate::JsonEquals),
            "equals" => template(r, pv)
                .map(TextPredicate::Equals)
                .map(Predicate::Text),
            "contains" => template(r, pv)
                .map(TextPredicate::Contains)
                .map(Predicate::Text),
            "not_contains" => template(r, pv)
                .map(TextPredicate::NotContains)
                .map(Predicate::Text),
            "matches" => {
                r.cx.str(pv)
                    .and_then(|s| regex(r, s, pv.span()))
                    .map(|p| Predicate::Text(TextPredicate::Matches(p)))
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
    ok &= value_predicates(r, &t, kind, &mut preds);
    if preds.is_empty() && ok {
        r.cx.error(
            t.span.clone(),
            format!("{what} needs a predicate: {}", predicate_keys(kind)),
        );
        ok = false;
    }
    t.finish(&mut r.cx);
    let query = query?;
    ok.then(|| {
        preds
            .into_iter()
            .map(|predicate| Assertion::Pick(query.clone(), predicate))
            .collect()
    })
}

fn subject(r: &mut Reader, t: &Table, kind: &str, s: &str, v: &Value) -> Option<Pick> {
    match kind {
        "header" => match http::HeaderName::from_bytes(s.as_bytes()) {
            Ok(h) => Some(Pick::Header(h)),
            Err(_) => {
                r.cx.error(v.span(), format!("invalid header name {s:?}"));
                None
            }
        },
        "css" => {
            let attr = t.get("attr").and_then(|a| r.cx.str(a)).map(str::to_owned);
            css(r, s, v).map(|selector| Pick::Css { selector, attr })
        }
        "body" => regex(r, s, v.span()).map(Pick::Regex),
        _ => json_path(r, s, v).map(Pick::JsonPath),
    }
}

/// The predicates an entry of `kind` takes, for the message when it has none.
fn predicate_keys(kind: &str) -> &'static str {
    match kind {
        "css" => {
            "`exists`, `equals`, `contains`, `not_contains`, `matches`, `count`, `max_age` or `number`"
        }
        "body" => "`max_age` or `number`",
        _ => "`exists`, `equals`, `contains`, `not_contains`, `matches`, `max_age` or `number`",
    }
}

/// The value predicates of an entry: `max_age` (with `format` and
/// `timezone`) and `number`. Formats and zones are checked here, once.
fn value_predicates(r: &mut Reader, t: &Table, kind: &str, preds: &mut Vec<Predicate>) -> bool {
    let mut ok = true;
    let format = t.get("format");
    let zone = t.get("timezone");
    match t.get("max_age") {
        Some(v) => match freshness(r, v, format, zone, kind) {
            Some(f) => preds.push(Predicate::Fresh(f)),
            None => ok = false,
        },
        None => {
            for (key, v) in [("format", format), ("timezone", zone)] {
                if let Some(v) = v {
                    let span = t.key_span(key).unwrap_or(v.span());
                    r.cx.error(span, format!("`{key}` goes with `max_age`"));
                    ok = false;
                }
            }
        }
    }
    if let Some(v) = t.get("number") {
        match number_range(r, v) {
            Some(range) => preds.push(Predicate::Number(range)),
            None => ok = false,
        }
    }
    ok
}

/// `max_age` with its `format` (by default an HTTP date for headers,
/// RFC 3339 elsewhere) and the `timezone` a strftime format is read in.
fn freshness(
    r: &mut Reader,
    max_age: &Value,
    format: Option<&Value>,
    zone: Option<&Value>,
    kind: &str,
) -> Option<Freshness> {
    let max_age = r.cx.duration(max_age);
    let tz = match zone {
        None => Some(chrono_tz::Tz::UTC),
        Some(v) => r.cx.str(v).and_then(|s| match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = "use an IANA name such as \"Europe/Berlin\"";
                r.cx.error(v.span(), format!("unknown time zone {s:?} ({hint})"));
                None
            }
        }),
    };
    let format = match format {
        None if kind == "header" => Some(DateFormat::Http),
        None => Some(DateFormat::Rfc3339),
        Some(v) => date_format(r, v, tz.unwrap_or(chrono_tz::Tz::UTC)),
    };
    if let (Some(z), Some(f)) = (zone, &format)
        && !f.takes_time_zone()
    {
        let why = format!("`timezone` goes with strftime formats; {f} dates carry an offset");
        r.cx.error(z.span(), why);
        return None;
    }
    tz?;
    Some(Freshness {
        max_age: max_age?,
        format: format?,
    })
}

fn date_format(r: &mut Reader, v: &Value, tz: chrono_tz::Tz) -> Option<DateFormat> {
    let s = r.cx.str(v)?;
    match DateFormat::parse(s, tz) {
        Ok(f) => Some(f),
        Err(e) => {
            let span = e.at.map_or(v.span(), |at| {
                inner_span(&r.cx, v.span(), at.start, at.len())
            });
            r.cx.error(span, e.message);
            None
        }
    }
}

/// `number = { min = -50, max = 60 }`: either bound may be left out.
fn number_range(r: &mut Reader, v: &Value) -> Option<NumberRange> {
    let t = r.cx.table(v, "`number`")?;
    let min = t.get("min").map(|v| number(r, v));
    let max = t.get("max").map(|v| number(r, v));
    t.finish(&mut r.cx);
    if matches!(min, Some(None)) || matches!(max, Some(None)) {
        return None;
    }
    let range = NumberRange {
        min: min.flatten(),
        max: max.flatten(),
    };
    match (range.min, range.max) {
        (None, None) => {
            r.cx.error(v.span(), "`number` needs `min`, `max` or both");
            None
        }
        (Some(a), Some(b)) if a > b => {
            r.cx.error(v.span(), format!("number min {a} is above max {b}"));
            None
        }
        _ => Some(range),
    }
}

/// An integer or a finite float.
fn number(r: &mut Reader, v: &Value) -> Option<f64> {
    let n = match v.get_ref() {
        DeValue::Integer(_) => return r.cx.int(v).map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        other => {
            let found = other.type_str();
            r.cx.error(v.span(), format!("expected a number, found {found}"));
            return None;
        }
    };
    let n = n.filter(|n| n.is_finite());
    if n.is_none() {
        r.cx.error(v.span(), "expected a finite number");
    }
    n
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

pub(super) fn regex(r: &mut Reader, s: &str, span: std::ops::Range<usize>) -> Option<Pattern> {
    match r.patterns.compile(s) {
        Ok(p) => Some(p),
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

pub(super) fn css(r: &mut Reader, s: &str, v: &Value) -> Option<Css> {
    match Css::parse(s) {
        Ok(c) => Some(c),
        Err(e) => {
            r.cx.error(v.span(), format!("invalid CSS selector {s:?}: {e}"));
            None
        }
    }
}

pub(super) fn json_path(r: &mut Reader, s: &str, v: &Value) -> Option<JsonPath> {
    match JsonPath::parse(s) {
        Ok(p) => Some(p),
        // Not quoted whole: it is thousands of brackets long.
        Err(e) => match JsonPath::too_deep(s) {
            Some(at) => {
                let at = inner_span(&r.cx, v.span(), at, 1);
                r.cx.error(at, format!("invalid JSONPath: {e}"));
                None
            }
            None => {
                r.cx.error(v.span(), format!("invalid JSONPath {s:?}: {e}"));
                None
            }
        },
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
