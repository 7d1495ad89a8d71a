//! Evaluation. Synchronous and free of I/O: the probe decides where it runs
//! (HTML parsing belongs on a blocking pool).

use std::cell::OnceCell;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Assertion, Found, PageError, Predicate, Query};
use crate::check::words::human_size;
use crate::template::Resolve;

/// The parts of a response that assertions and captures look at.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    /// The body decoded to text per its charset.
    pub body: &'a str,
    /// Decoded body size in bytes.
    pub size: u64,
    pub elapsed: Duration,
    /// The peer certificate, for HTTPS responses.
    pub certificate: Option<&'a super::PeerCertificate>,
}

/// A response with its HTML and JSON views, each parsed at most once however
/// many assertions use it.
pub struct Document<'a> {
    pub response: Response<'a>,
    html: OnceCell<Result<scraper::Html, PageError>>,
    json: OnceCell<Result<serde_json::Value, String>>,
    /// The moment dates on the page are judged against.
    now: DateTime<Utc>,
    /// When parsing the page must give up: the run's (or step's) deadline.
    deadline: Option<Instant>,
}

/// Why an assertion did not hold, in words a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
}

impl From<PageError> for Failure {
    fn from(e: PageError) -> Self {
        Failure {
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        message: message.into(),
    })
}

impl<'a> Document<'a> {
    /// A document judged as of now: the clock is read here, once, so that
    /// every assertion on it sees the same moment.
    pub fn new(response: Response<'a>) -> Self {
        Document::at(response, Utc::now())
    }

    /// A document judged as of `now` (tests pin it to get exact ages).
    pub fn at(response: Response<'a>, now: DateTime<Utc>) -> Self {
        Document {
            response,
            html: OnceCell::new(),
            json: OnceCell::new(),
            now,
            deadline: None,
        }
    }

    /// The same document, whose page parsing gives up at `deadline`.
    pub fn until(self, deadline: Instant) -> Self {
        Document {
            deadline: Some(deadline),
            ..self
        }
    }

    /// The body parsed as HTML, once; an error if the page is deeper than
    /// a browser would build or parsing outlasts the deadline.
    pub fn html(&self) -> Result<&scraper::Html, PageError> {
        let parsed = self
            .html
            .get_or_init(|| super::page::parse(self.response.body, self.deadline));
        parsed.as_ref().map_err(|e| *e)
    }

    pub fn json(&self) -> Result<&serde_json::Value, Failure> {
        match self
            .json
            .get_or_init(|| serde_json::from_str(self.response.body).map_err(|e| e.to_string()))
        {
            Ok(v) => Ok(v),
            Err(e) => fail(format!("body is not JSON: {e}")),
        }
    }

    /// Texts (or attribute values) of the elements a selector matches.
    pub fn select(
        &self,
        selector: &super::Css,
        attr: Option<&str>,
    ) -> Result<Vec<Option<String>>, PageError> {
        Ok(self
            .html()?
            .select(&selector.selector)
            .map(|el| match attr {
                Some(a) => el.value().attr(a).map(str::to_owned),
                None => Some(normalize_space(el.text())),
            })
            .collect())
    }

    /// Checks one assertion.
    pub fn check(&self, a: &Assertion, vars: &dyn Resolve) -> Result<(), Failure> {
        let r = &self.response;
        match (&a.query, &a.predicate) {
            (q, p @ (Predicate::Fresh(_) | Predicate::Number(_))) => self.judge_values(q, p),
            (Query::Status, Predicate::Status(set)) => match set.contains(r.status) {
                true => Ok(()),
                false => fail(format!("expected status {set}, got {}", r.status)),
            },
            (Query::Header(name), Predicate::Exists(want)) => {
                let present = r.headers.contains_key(name);
                match (present, *want) {
                    (true, true) | (false, false) => Ok(()),
                    (false, true) => fail(format!("expected header {name}, it is missing")),
                    (true, false) => fail(format!("expected no header {name}, got one")),
                }
            }
            (Query::Header(name), p) => {
                let values: Vec<_> = r.headers.get_all(name).iter().collect();
                if values.is_empty() {
                    return fail(format!(
                        "header {name}: missing, expected it to {}",
                        verb(p)
                    ));
                }
                let joined = values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()))
                    .collect::<Vec<_>>()
                    .join(", ");
                text(p, &joined, vars).map_err(|exp| {
                    // A credential is judged, never shown.
                    let got = match crate::check::credential_header(name) {
                        true => "a value (not shown: it is a credential)".to_owned(),
                        false => format!("{:?}", vars.redact(&joined)),
                    };
                    Failure {
                        message: format!("header {name}: expected it to {exp}, got {got}"),
                    }
                })
            }
            (Query::Body, p) => text(p, r.body, vars).map_err(|exp| Failure {
                message: format!(
                    "body: expected it to {exp}; body starts {:?}",
                    excerpt(&vars.redact(head(r.body)), 0)
                ),
            }),
            (Query::Css { selector, attr }, p) => {
                let found = self.select(selector, attr.as_deref())?;
                let n = found.len() as u64;
                let q = &a.query;
                match p {
                    Predicate::Exists(true) if n == 0 => fail(format!("{q} matched nothing")),
                    Predicate::Exists(false) if n > 0 => {
                        fail(format!("{q}: expected no match, matched {n} elements"))
                    }
                    Predicate::Exists(_) => Ok(()),
                    Predicate::Count(range) if !range.contains(n) => {
                        fail(format!("{q}: expected {range} elements, matched {n}"))
                    }
                    Predicate::Count(_) => Ok(()),
                    _ if n == 0 => fail(format!("{q} matched nothing")),
                    _ => every(&found, |i, v| match v {
                        None => Err(format!(
                            "{q}: element {} of {n} has no such attribute",
                            i + 1
                        )),
                        Some(v) => text(p, v, vars).map_err(|exp| {
                            format!(
                                "{q}: element {} of {n}: expected it to {exp}, got {:?}",
                                i + 1,
                                vars.redact(v)
                            )
                        }),
                    }),
                }
            }
            (Query::JsonPath(path), p) => {
                let json = self.json()?;
                let nodes = path.path.query(json).all();
                let q = &a.query;
                match p {
                    Predicate::Exists(want) if nodes.is_empty() == *want => match want {
                        true => fail(format!("{q} matched nothing")),
                        false => fail(format!(
                            "{q}: expected no match, got {}",
                            vars.redact(&nodes[0].to_string())
                        )),
                    },
                    Predicate::Exists(_) => Ok(()),
                    _ if nodes.is_empty() => fail(format!("{q} matched nothing")),
                    Predicate::JsonEquals(want) => match nodes.iter().find(|v| **v != want) {
                        None => Ok(()),
                        Some(got) => fail(format!(
                            "{q}: expected {want}, got {}",
                            vars.redact(&got.to_string())
                        )),
                    },
                    _ => every(&nodes, |_, v| {
                        let s = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        text(p, &s, vars).map_err(|exp| {
                            let got = vars.redact(&v.to_string()).into_owned();
                            format!("{q}: expected it to {exp}, got {got}")
                        })
                    }),
                }
            }
            (Query::ResponseTime, Predicate::Under(max)) => match r.elapsed < *max {
                true => Ok(()),
                false => fail(format!(
                    "expected response time under {}, took {} ms",
                    humantime::format_duration(*max),
                    r.elapsed.as_millis()
                )),
            },
            (Query::BodySize, Predicate::UnderBytes(max)) => match r.size < *max {
                true => Ok(()),
                false => fail(format!(
                    "expected body under {}, got {} bytes",
                    human_size(*max),
                    r.size
                )),
            },
            (Query::CertDays, Predicate::MoreThanDays(min)) => {
                super::cert::more_than_days(r.certificate, *min)
                    .map_err(|message| Failure { message })
            }
            (q, p) => fail(format!("{q} cannot be checked with `{p}`")),
        }
    }

    /// Judges every value the query picks with a value predicate (a date's
    /// age, a number's range), naming the value that fails.
    fn judge_values(&self, q: &Query, p: &Predicate) -> Result<(), Failure> {
        let Some(found) = self.found(q) else {
            return fail(format!("{q} cannot be checked with `{p}`"));
        };
        let found = found?;
        let n = found.len();
        match q {
            Query::Header(_) if n == 0 => {
                return fail(format!("{q}: missing, expected it to {}", verb(p)));
            }
            _ if n == 0 => return fail(format!("{q} matched nothing")),
            _ => {}
        }
        let noun = match q {
            Query::Css { .. } => "element",
            Query::BodyRegex(_) => "match",
            _ => "value",
        };
        every(&found, |i, v| {
            let judged = match p {
                Predicate::Fresh(fresh) => fresh.judge(v, self.now),
                Predicate::Number(range) => range.judge(v),
                _ => Ok(()),
            };
            judged.map_err(|why| match n {
                1 => format!("{q}: {why}"),
                _ => format!("{q}: {noun} {} of {n}: {why}", i + 1),
            })
        })
    }

    /// The values a query picks for a value predicate; `None` for queries
    /// that pick none (the status, timings).
    fn found(&self, q: &Query) -> Option<Result<Vec<Found<'_>>, Failure>> {
        let r = &self.response;
        let text = |t: &'a str| Found::Text(t.into());
        Some(Ok(match q {
            Query::Css { selector, attr } => match self.select(selector, attr.as_deref()) {
                Ok(found) => found
                    .into_iter()
                    .map(|v| v.map_or(Found::NoAttribute, |t| Found::Text(t.into())))
                    .collect(),
                Err(e) => return Some(Err(e.into())),
            },
            Query::Header(name) => r
                .headers
                .get_all(name)
                .iter()
                .map(|v| Found::Text(String::from_utf8_lossy(v.as_bytes())))
                .collect(),
            Query::BodyRegex(re) => {
                re.0.captures_iter(r.body)
                    .filter_map(|c| c.get(1).or_else(|| c.get(0)))
                    .map(|m| text(m.as_str()))
                    .collect()
            }
            Query::JsonPath(path) => match self.json() {
                Ok(json) => {
                    let nodes = path.path.query(json).all();
                    nodes.into_iter().map(Found::Json).collect()
                }
                Err(e) => return Some(Err(e)),
            },
            _ => return None,
        }))
    }
}

/// Applies `f` to every item, failing with the first complaint.
fn every<T>(items: &[T], f: impl Fn(usize, &T) -> Result<(), String>) -> Result<(), Failure> {
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, v)| f(i, v))
        .map_err(|message| Failure { message })
}

/// Judges a text with a text predicate; the error is the expectation in words.
fn text(p: &Predicate, value: &str, vars: &dyn Resolve) -> Result<(), String> {
    fn render<'t>(
        t: &'t crate::template::Template,
        vars: &dyn Resolve,
    ) -> Result<std::borrow::Cow<'t, str>, String> {
        t.render(vars).map_err(|e| e.to_string())
    }
    let ok = match p {
        Predicate::Equals(t) => value == render(t, vars)?,
        Predicate::Contains(t) => value.contains(render(t, vars)?.as_ref()),
        Predicate::NotContains(t) => !value.contains(render(t, vars)?.as_ref()),
        Predicate::Matches(re) => re.0.is_match(value),
        Predicate::JsonEquals(v) => v.as_str() == Some(value),
        _ => false,
    };
    match ok {
        true => Ok(()),
        false => Err(verb(p)),
    }
}

/// The predicate as a verb phrase after "expected it to".
fn verb(p: &Predicate) -> String {
    match p {
        Predicate::Status(s) => format!("be {s}"),
        Predicate::Exists(true) => "exist".into(),
        Predicate::Exists(false) => "not exist".into(),
        Predicate::Equals(t) => format!("equal {:?}", t.to_string()),
        Predicate::Contains(t) => format!("contain {:?}", t.to_string()),
        Predicate::NotContains(t) => format!("not contain {:?}", t.to_string()),
        Predicate::Matches(re) => format!("match /{}/", re.0.as_str()),
        Predicate::Count(c) => format!("match {c} elements"),
        Predicate::JsonEquals(v) => format!("equal {v}"),
        Predicate::Under(d) => format!("be under {}", humantime::format_duration(*d)),
        Predicate::UnderBytes(b) => format!("be under {}", human_size(*b)),
        Predicate::Fresh(fresh) => format!("be {fresh}"),
        Predicate::Number(range) => format!("be a number {range}"),
        Predicate::MoreThanDays(n) => format!("be more than {n} days away"),
    }
}

/// Element text with runs of white space folded, as a reader sees it.
fn normalize_space<'t>(parts: impl Iterator<Item = &'t str>) -> String {
    let mut out = String::new();
    for word in parts.flat_map(str::split_whitespace) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The start of a body, enough for any excerpt: what is quoted is redacted
/// first, and a whole body need not be.
fn head(body: &str) -> &str {
    let mut end = body.len().min(4096);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// Up to 120 characters of `s` from byte `from`, cut on a char boundary.
pub fn excerpt(s: &str, from: usize) -> String {
    let start = (0..=from.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let tail = &s[start..];
    match tail.char_indices().nth(120) {
        Some((end, _)) => format!("{}…", &tail[..end]),
        None => tail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert::{CountRange, Css, JsonPath, Patterns, StatusMatch, StatusSet};
    use crate::template::Template;

    struct NoVars;
    impl Resolve for NoVars {
        fn secret(&self, _: &str) -> Result<String, String> {
            Err("none".into())
        }
        fn file(&self, _: &std::path::Path) -> Result<String, String> {
            Err("none".into())
        }
        fn capture(&self, _: &str) -> Option<String> {
            None
        }
    }

    const PAGE: &str = r#"<html><body><table id="forecast">
        <tr class="day"><td class="temp">14 °C</td></tr>
        <tr class="day"><td class="temp">  9
             °C</td></tr>
        <tr class="day"><td class="temp">–</td></tr></table>
        <input name="csrf" value="abc"></body></html>"#;

    fn check(body: &str, status: u16, query: Query, predicate: Predicate) -> Result<(), Failure> {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", http::HeaderValue::from_static("text/html"));
        let doc = Document::new(Response {
            status,
            headers: &headers,
            body,
            size: body.len() as u64,
            elapsed: Duration::from_millis(250),
            certificate: None,
        });
        doc.check(&Assertion { query, predicate }, &NoVars)
    }

    fn css(s: &str) -> Query {
        Query::Css {
            selector: Css::parse(s).unwrap(),
            attr: None,
        }
    }

    fn re(s: &str) -> Predicate {
        Predicate::Matches(Patterns::default().compile(s).unwrap())
    }

    #[test]
    fn status_codes_lists_and_classes() {
        let set = StatusSet(vec![StatusMatch::Code(200), StatusMatch::Class(3)]);
        assert!(check("", 302, Query::Status, Predicate::Status(set.clone())).is_ok());
        let err = check("", 503, Query::Status, Predicate::Status(set)).unwrap_err();
        assert_eq!(err.message, "expected status 200 or 3xx, got 503");
    }

    #[test]
    fn css_text_predicates_apply_to_every_element() {
        let err = check(PAGE, 200, css("td.temp"), re(r"^-?\d+ °C$")).unwrap_err();
        assert_eq!(
            err.message,
            r#"selector "td.temp": element 3 of 3: expected it to match /^-?\d+ °C$/, got "–""#
        );
        assert!(
            check(
                PAGE,
                200,
                css("tr.day"),
                Predicate::Count(CountRange::exactly(3))
            )
            .is_ok()
        );
        let err = check(
            PAGE,
            200,
            css("form#order input[name=liters]"),
            Predicate::Exists(true),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"selector "form#order input[name=liters]" matched nothing"#
        );
    }

    #[test]
    fn css_attribute_and_whitespace_folding() {
        let q = Query::Css {
            selector: Css::parse("input[name=csrf]").unwrap(),
            attr: Some("value".into()),
        };
        assert!(check(PAGE, 200, q, Predicate::Equals(Template::literal("abc"))).is_ok());
        let second = css("tr.day:nth-child(2) td.temp");
        assert!(
            check(
                PAGE,
                200,
                second,
                Predicate::Equals(Template::literal("9 °C"))
            )
            .is_ok()
        );
    }

    #[test]
    fn body_and_header_messages_name_expectation_and_value() {
        let err = check(
            "<h1>Oops</h1>",
            200,
            Query::Body,
            Predicate::Contains(Template::literal("Forecast")),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            r#"body: expected it to contain "Forecast"; body starts "<h1>Oops</h1>""#
        );
        let h = Query::Header(http::HeaderName::from_static("content-type"));
        let err = check("", 200, h, re("^application/json")).unwrap_err();
        assert_eq!(
            err.message,
            r#"header content-type: expected it to match /^application/json/, got "text/html""#
        );
    }

    #[test]
    fn jsonpath_exists_and_equals() {
        let body = r#"{"status":"ok","items":[{"n":1},{"n":2}]}"#;
        let p = |s: &str| Query::JsonPath(JsonPath::parse(s).unwrap());
        assert!(check(body, 200, p("$.status"), Predicate::JsonEquals("ok".into())).is_ok());
        let err = check(
            body,
            200,
            p("$.items[*].n"),
            Predicate::JsonEquals(1.into()),
        )
        .unwrap_err();
        assert_eq!(err.message, r#"jsonpath "$.items[*].n": expected 1, got 2"#);
        let err = check("nope", 200, p("$.x"), Predicate::Exists(true)).unwrap_err();
        assert!(
            err.message.starts_with("body is not JSON"),
            "{}",
            err.message
        );
    }

    #[test]
    fn timing_and_size_bounds() {
        let err = check(
            "",
            200,
            Query::ResponseTime,
            Predicate::Under(Duration::from_millis(100)),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "expected response time under 100ms, took 250 ms"
        );
        assert!(check("abc", 200, Query::BodySize, Predicate::UnderBytes(4)).is_ok());
    }
}
