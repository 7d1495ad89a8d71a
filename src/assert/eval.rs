//! Evaluation of the query model on one response: the values a capture
//! takes and whether an assertion holds. Synchronous and free of I/O: the
//! probe decides where it runs (HTML parsing belongs on a blocking pool).
//! A passing assertion allocates nothing a failure would need; a failing
//! one says where it looked, what it expected and what it saw.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::PageError;
use crate::check::{
    Assertion, Failure, Found, Pick, Predicate, Query, TextPredicate, credential_header,
};
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

/// What a capture may read beyond the response: where the step ended up
/// after redirects, and the run's cookies.
#[derive(Debug, Clone, Copy)]
pub struct Around<'a> {
    /// The full URL of the last request (query included).
    pub url: &'a str,
    /// Name and value of every cookie the run holds.
    pub cookies: &'a [(String, String)],
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

/// A predicate that judges a value as text: the two that compare it. The
/// JSON one keeps its whole predicate, for its wording.
#[derive(Clone, Copy)]
enum Textual<'p> {
    Text(&'p TextPredicate),
    Json(&'p serde_json::Value, &'p Predicate),
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

    /// The body parsed as JSON, once; the error is the sentence a user reads.
    pub fn json(&self) -> Result<&serde_json::Value, String> {
        match self
            .json
            .get_or_init(|| serde_json::from_str(self.response.body).map_err(|e| e.to_string()))
        {
            Ok(v) => Ok(v),
            Err(e) => Err(format!("body is not JSON: {e}")),
        }
    }

    /// Texts (or attribute values) of the elements a selector matches.
    pub fn select(
        &self,
        selector: &crate::check::Css,
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
        let fail = |message: String| Failure::new(a.query(), message).expected(a.expected());
        match a {
            Assertion::Status(set) => match set.contains(r.status) {
                true => Ok(()),
                false => Err(fail(format!("expected status {set}, got {}", r.status))
                    .actual(r.status.to_string())),
            },
            Assertion::ResponseTime(max) => match r.elapsed < *max {
                true => Ok(()),
                false => {
                    let took = format!("{} ms", r.elapsed.as_millis());
                    let max = humantime::format_duration(*max);
                    Err(
                        fail(format!("expected response time under {max}, took {took}"))
                            .actual(took),
                    )
                }
            },
            Assertion::BodySize(max) => match r.size < *max {
                true => Ok(()),
                false => {
                    let max = crate::check::words::human_size(*max);
                    let got = format!("{} bytes", r.size);
                    Err(fail(format!("expected body under {max}, got {got}")).actual(got))
                }
            },
            Assertion::CertDays(min) => {
                super::cert::more_than_days(r.certificate, *min).map_err(|message| {
                    let failure = fail(message);
                    match r.certificate {
                        Some(c) => failure.actual(super::cert::left(c)),
                        None => failure.actual("plain HTTP"),
                    }
                })
            }
            Assertion::Body(t) => text(t, r.body, vars).map_err(|exp| {
                let start = excerpt(&vars.redact(head(r.body)), 0);
                fail(format!("body: expected it to {exp}; body starts {start:?}")).actual(start)
            }),
            Assertion::Pick(pick, p) => {
                let textual = match p {
                    Predicate::Exists(want) => return self.exists(pick, *want, vars, fail),
                    Predicate::Count(range) => {
                        let n = self.count(pick).map_err(fail)?;
                        return match range.contains(n) {
                            true => Ok(()),
                            false => Err(fail(format!(
                                "{pick}: expected {range} elements, matched {n}"
                            ))
                            .actual(n.to_string())),
                        };
                    }
                    Predicate::Fresh(_) | Predicate::Number(_) => {
                        return self.judge_values(pick, p, vars, fail);
                    }
                    Predicate::Text(t) => Textual::Text(t),
                    Predicate::JsonEquals(v) => Textual::Json(v, p),
                };
                self.judge_texts(pick, textual, vars, fail)
            }
        }
    }

    /// `exists = true|false` for any query that picks values.
    fn exists(
        &self,
        pick: &Pick,
        want: bool,
        vars: &dyn Resolve,
        fail: impl Fn(String) -> Failure,
    ) -> Result<(), Failure> {
        if let Pick::JsonPath(path) = pick {
            let nodes = path.path.query(self.json().map_err(&fail)?).all();
            return match (nodes.first(), want) {
                (None, true) => Err(fail(format!("{pick} matched nothing"))),
                (Some(got), false) => {
                    let got = shown(vars, &got.to_string());
                    Err(fail(format!("{pick}: expected no match, got {got}")).actual(got))
                }
                _ => Ok(()),
            };
        }
        let n = self.count(pick).map_err(&fail)?;
        match (pick, n > 0, want) {
            (Pick::Header(name), false, true) => {
                Err(fail(format!("expected header {name}, it is missing")))
            }
            (Pick::Header(name), true, false) => {
                Err(fail(format!("expected no header {name}, got one")))
            }
            (_, false, true) => Err(fail(format!("{pick} matched nothing"))),
            (_, true, false) => Err(fail(format!(
                "{pick}: expected no match, matched {n} elements"
            ))
            .actual(n.to_string())),
            _ => Ok(()),
        }
    }

    /// How many values a query picks.
    fn count(&self, pick: &Pick) -> Result<u64, String> {
        let r = &self.response;
        let n = match pick {
            Pick::Header(name) => r.headers.get_all(name).iter().count(),
            Pick::Css { selector, .. } => self
                .html()
                .map_err(|e| e.to_string())?
                .select(&selector.selector)
                .count(),
            Pick::JsonPath(path) => path.path.query(self.json()?).all().len(),
            Pick::Regex(re) => re.0.find_iter(r.body).count(),
        };
        Ok(n as u64)
    }

    /// Judges every value a query picks as text (a header's values joined,
    /// as one), naming the value that fails.
    fn judge_texts(
        &self,
        pick: &Pick,
        p: Textual<'_>,
        vars: &dyn Resolve,
        fail: impl Fn(String) -> Failure,
    ) -> Result<(), Failure> {
        let r = &self.response;
        match pick {
            Pick::Header(name) => {
                let values: Vec<_> = r.headers.get_all(name).iter().collect();
                if values.is_empty() {
                    return Err(fail(format!("header {name}: missing, expected it to {p}")));
                }
                let joined = match values.as_slice() {
                    [one] => String::from_utf8_lossy(one.as_bytes()),
                    many => Cow::Owned(
                        many.iter()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                };
                judge(p, &joined, vars).map_err(|exp| {
                    // A credential is judged, never shown.
                    let (shown, got) = match credential_header(name) {
                        true => {
                            let hidden = "a value (not shown: it is a credential)";
                            (hidden.to_owned(), hidden.to_owned())
                        }
                        false => {
                            let got = shown(vars, &joined);
                            (format!("{got:?}"), got)
                        }
                    };
                    fail(format!("header {name}: expected it to {exp}, got {shown}")).actual(got)
                })
            }
            Pick::Css { selector, attr } => {
                let found = self
                    .select(selector, attr.as_deref())
                    .map_err(|e| fail(e.to_string()))?;
                let n = found.len();
                if n == 0 {
                    return Err(fail(format!("{pick} matched nothing")));
                }
                every(&found, |i, v| match v {
                    None => Err(fail(format!(
                        "{pick}: element {} of {n} has no such attribute",
                        i + 1
                    ))),
                    Some(v) => judge(p, v, vars).map_err(|exp| {
                        let got = shown(vars, v);
                        let at = i + 1;
                        fail(format!(
                            "{pick}: element {at} of {n}: expected it to {exp}, got {got:?}"
                        ))
                        .actual(got)
                    }),
                })
            }
            Pick::JsonPath(path) => {
                let nodes = path.path.query(self.json().map_err(&fail)?).all();
                if nodes.is_empty() {
                    return Err(fail(format!("{pick} matched nothing")));
                }
                if let Textual::Json(want, _) = p {
                    return match nodes.iter().find(|v| **v != want) {
                        None => Ok(()),
                        Some(got) => {
                            let got = shown(vars, &got.to_string());
                            Err(fail(format!("{pick}: expected {want}, got {got}")).actual(got))
                        }
                    };
                }
                every(&nodes, |_, v| {
                    let s = match v {
                        serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                        other => Cow::Owned(other.to_string()),
                    };
                    judge(p, &s, vars).map_err(|exp| {
                        let got = shown(vars, &v.to_string());
                        fail(format!("{pick}: expected it to {exp}, got {got}")).actual(got)
                    })
                })
            }
            Pick::Regex(re) => {
                let found: Vec<&str> = matches(re, r.body).collect();
                let n = found.len();
                if n == 0 {
                    return Err(fail(format!("{pick} matched nothing")));
                }
                every(&found, |i, v| {
                    judge(p, v, vars).map_err(|exp| {
                        let got = shown(vars, v);
                        let at = i + 1;
                        fail(format!(
                            "{pick}: match {at} of {n}: expected it to {exp}, got {got:?}"
                        ))
                        .actual(got)
                    })
                })
            }
        }
    }

    /// Judges every value the query picks with a value predicate (a date's
    /// age, a number's range), naming the value that fails.
    fn judge_values(
        &self,
        pick: &Pick,
        p: &Predicate,
        vars: &dyn Resolve,
        fail: impl Fn(String) -> Failure,
    ) -> Result<(), Failure> {
        let found = self.found(pick).map_err(&fail)?;
        let n = found.len();
        match pick {
            Pick::Header(_) if n == 0 => {
                return Err(fail(format!("{pick}: missing, expected it to {p}")));
            }
            _ if n == 0 => return Err(fail(format!("{pick} matched nothing"))),
            _ => {}
        }
        let noun = match pick {
            Pick::Css { .. } => "element",
            Pick::Regex(_) => "match",
            _ => "value",
        };
        every(&found, |i, v| {
            let judged = match p {
                Predicate::Fresh(fresh) => fresh.judge(v, self.now),
                Predicate::Number(range) => range.judge(v),
                _ => Ok(()),
            };
            judged.map_err(|why| {
                let message = match n {
                    1 => format!("{pick}: {why}"),
                    _ => format!("{pick}: {noun} {} of {n}: {why}", i + 1),
                };
                let failure = fail(message);
                match v {
                    Found::Text(t) => failure.actual(shown(vars, t)),
                    Found::Json(j) => failure.actual(shown(vars, &j.to_string())),
                    Found::NoAttribute => failure,
                }
            })
        })
    }

    /// The values a query picks for a value predicate.
    fn found(&self, pick: &Pick) -> Result<Vec<Found<'_>>, String> {
        let r = &self.response;
        Ok(match pick {
            Pick::Css { selector, attr } => self
                .select(selector, attr.as_deref())
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|v| v.map_or(Found::NoAttribute, |t| Found::Text(t.into())))
                .collect(),
            Pick::Header(name) => r
                .headers
                .get_all(name)
                .iter()
                .map(|v| Found::Text(String::from_utf8_lossy(v.as_bytes())))
                .collect(),
            Pick::Regex(re) => matches(re, r.body).map(|m| Found::Text(m.into())).collect(),
            Pick::JsonPath(path) => path
                .path
                .query(self.json()?)
                .all()
                .into_iter()
                .map(Found::Json)
                .collect(),
        })
    }

    /// The value a capture's query takes: the first a query that picks
    /// several finds. The error says what it looked for.
    pub fn take(&self, q: &Query, around: Around<'_>) -> Result<String, Failure> {
        let r = &self.response;
        let fail = |message: String| Failure::new(q, message);
        match q {
            Query::Status => Ok(r.status.to_string()),
            Query::Url => Ok(around.url.to_owned()),
            Query::Body => Ok(r.body.to_owned()),
            Query::ResponseTime => Ok(r.elapsed.as_millis().to_string()),
            Query::BodySize => Ok(r.size.to_string()),
            Query::CertDays => match r.certificate {
                Some(c) => Ok(c.days_left().to_string()),
                None => Err(fail("the response came over plain HTTP".into())),
            },
            Query::Cookie(name) => match around.cookies.iter().find(|(n, _)| n == name) {
                Some((_, value)) => Ok(value.clone()),
                None => {
                    let mut names: Vec<&str> =
                        around.cookies.iter().map(|(n, _)| n.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    Err(fail(match names.as_slice() {
                        [] => format!("cookie {name:?} is not set (the run has no cookies)"),
                        _ => format!(
                            "cookie {name:?} is not set (the run's cookies: {})",
                            names.join(", ")
                        ),
                    }))
                }
            },
            Query::Pick(pick @ Pick::Css { selector, attr }) => {
                let found = self
                    .select(selector, attr.as_deref())
                    .map_err(|e| fail(e.to_string()))?;
                let n = found.len();
                match found.into_iter().flatten().next() {
                    Some(value) => Ok(value),
                    None if n == 0 => Err(fail(format!("{pick} matched nothing"))),
                    None => Err(fail(format!(
                        "{pick}: none of the {n} matched elements has the attribute"
                    ))),
                }
            }
            Query::Pick(pick @ Pick::Regex(re)) => matches(re, r.body)
                .next()
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("{pick} matched nothing"))),
            Query::Pick(pick @ Pick::Header(name)) => r
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .ok_or_else(|| fail(format!("{pick} is missing"))),
            Query::Pick(pick @ Pick::JsonPath(path)) => {
                match path.path.query(self.json().map_err(fail)?).first() {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(other) => Ok(other.to_string()),
                    None => Err(Failure::new(q, format!("{pick} matched nothing"))),
                }
            }
        }
    }
}

impl std::fmt::Display for Textual<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Textual::Text(t) => t.fmt(f),
            Textual::Json(_, p) => p.fmt(f),
        }
    }
}

/// Every match of `re` over `body`: its first group, or the whole match.
fn matches<'r, 'b>(
    re: &'r crate::check::Pattern,
    body: &'b str,
) -> impl Iterator<Item = &'b str> + use<'r, 'b> {
    re.0.captures_iter(body)
        .filter_map(|c| c.get(1).or_else(|| c.get(0)))
        .map(|m| m.as_str())
}

/// Applies `f` to every item, failing with the first complaint.
fn every<T>(items: &[T], f: impl Fn(usize, &T) -> Result<(), Failure>) -> Result<(), Failure> {
    items.iter().enumerate().try_for_each(|(i, v)| f(i, v))
}

/// Judges a text with a comparing predicate; the error is the expectation
/// in words.
fn judge(p: Textual<'_>, value: &str, vars: &dyn Resolve) -> Result<(), String> {
    match p {
        Textual::Text(t) => text(t, value, vars),
        Textual::Json(v, _) if v.as_str() == Some(value) => Ok(()),
        Textual::Json(..) => Err(p.to_string()),
    }
}

/// Judges a text with a text predicate; the error is the expectation in words.
fn text(p: &TextPredicate, value: &str, vars: &dyn Resolve) -> Result<(), String> {
    fn render<'t>(
        t: &'t crate::template::Template,
        vars: &dyn Resolve,
    ) -> Result<Cow<'t, str>, String> {
        t.render(vars).map_err(|e| e.to_string())
    }
    let ok = match p {
        TextPredicate::Equals(t) => value == render(t, vars)?,
        TextPredicate::Contains(t) => value.contains(render(t, vars)?.as_ref()),
        TextPredicate::NotContains(t) => !value.contains(render(t, vars)?.as_ref()),
        TextPredicate::Matches(re) => re.0.is_match(value),
    };
    match ok {
        true => Ok(()),
        false => Err(p.to_string()),
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
/// At most this many characters of a found value go into a failure: one
/// element of a page can hold megabytes, and a failure reaches every sink.
const SHOWN_CHARS: usize = 300;

/// A found value as a failure shows it: redacted first (a cut must not
/// split a secret), then cut.
fn shown(vars: &dyn Resolve, found: &str) -> String {
    crate::text::excerpt(&vars.redact(found), SHOWN_CHARS).into_owned()
}

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
    crate::text::excerpt(&s[start..], 120).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::{CountRange, Css, JsonPath, Patterns, StatusMatch, StatusSet};
    use crate::template::Template;

    /// Values for no placeholder: what the tests' assertions judge with.
    pub(crate) struct NoVars;
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

    fn check(body: &str, status: u16, a: Assertion) -> Result<(), Failure> {
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
        doc.check(&a, &NoVars)
    }

    fn css(s: &str) -> Pick {
        Pick::Css {
            selector: Css::parse(s).unwrap(),
            attr: None,
        }
    }

    fn re(s: &str) -> TextPredicate {
        TextPredicate::Matches(Patterns::default().compile(s).unwrap())
    }

    #[test]
    fn status_codes_lists_and_classes() {
        let set = StatusSet(vec![StatusMatch::Code(200), StatusMatch::Class(3)]);
        assert!(check("", 302, Assertion::Status(set.clone())).is_ok());
        let err = check("", 503, Assertion::Status(set)).unwrap_err();
        assert_eq!(err.message, "expected status 200 or 3xx, got 503");
        assert_eq!(err.query, "status");
        assert_eq!(err.expected.as_deref(), Some("be 200 or 3xx"));
        assert_eq!(err.actual.as_deref(), Some("503"));
    }

    #[test]
    fn css_text_predicates_apply_to_every_element() {
        let temp = Assertion::Pick(css("td.temp"), Predicate::Text(re(r"^-?\d+ °C$")));
        let err = check(PAGE, 200, temp).unwrap_err();
        assert_eq!(
            err.message,
            r#"selector "td.temp": element 3 of 3: expected it to match /^-?\d+ °C$/, got "–""#
        );
        assert_eq!(err.query, r#"selector "td.temp""#);
        assert_eq!(err.expected.as_deref(), Some(r"match /^-?\d+ °C$/"));
        assert_eq!(err.actual.as_deref(), Some("–"));
        let three = Predicate::Count(CountRange::exactly(3));
        assert!(check(PAGE, 200, Assertion::Pick(css("tr.day"), three)).is_ok());
        let liters = Assertion::Pick(
            css("form#order input[name=liters]"),
            Predicate::Exists(true),
        );
        let err = check(PAGE, 200, liters).unwrap_err();
        assert_eq!(
            err.message,
            r#"selector "form#order input[name=liters]" matched nothing"#
        );
        assert_eq!(err.actual, None);
    }

    #[test]
    fn a_huge_found_value_is_cut_in_the_failure() {
        let page = format!("<p class=v>{}</p>", "Wetterdaten ".repeat(100_000));
        let q = Assertion::Pick(css("p.v"), Predicate::Text(re("^Vorhersage")));
        let err = check(&page, 200, q).unwrap_err();
        let actual = err.actual.expect("actual");
        assert_eq!(actual.chars().count(), 300, "{actual}");
        assert!(actual.ends_with('…'));
        assert!(err.message.len() < 500, "{}", err.message);
    }

    #[test]
    fn css_attribute_and_whitespace_folding() {
        let q = Pick::Css {
            selector: Css::parse("input[name=csrf]").unwrap(),
            attr: Some("value".into()),
        };
        let abc = Predicate::Text(TextPredicate::Equals(Template::literal("abc")));
        assert!(check(PAGE, 200, Assertion::Pick(q, abc)).is_ok());
        let nine = Predicate::Text(TextPredicate::Equals(Template::literal("9 °C")));
        let second = css("tr.day:nth-child(2) td.temp");
        assert!(check(PAGE, 200, Assertion::Pick(second, nine)).is_ok());
    }

    #[test]
    fn body_and_header_messages_name_expectation_and_value() {
        let forecast = TextPredicate::Contains(Template::literal("Forecast"));
        let err = check("<h1>Oops</h1>", 200, Assertion::Body(forecast)).unwrap_err();
        assert_eq!(
            err.message,
            r#"body: expected it to contain "Forecast"; body starts "<h1>Oops</h1>""#
        );
        assert_eq!(err.actual.as_deref(), Some("<h1>Oops</h1>"));
        let h = Pick::Header(http::HeaderName::from_static("content-type"));
        let json = Predicate::Text(re("^application/json"));
        let err = check("", 200, Assertion::Pick(h, json)).unwrap_err();
        assert_eq!(
            err.message,
            r#"header content-type: expected it to match /^application/json/, got "text/html""#
        );
        assert_eq!(err.actual.as_deref(), Some("text/html"));
    }

    #[test]
    fn jsonpath_exists_and_equals() {
        let body = r#"{"status":"ok","items":[{"n":1},{"n":2}]}"#;
        let p = |s: &str| Pick::JsonPath(JsonPath::parse(s).unwrap());
        let ok = Predicate::JsonEquals("ok".into());
        assert!(check(body, 200, Assertion::Pick(p("$.status"), ok)).is_ok());
        let one = Predicate::JsonEquals(1.into());
        let err = check(body, 200, Assertion::Pick(p("$.items[*].n"), one)).unwrap_err();
        assert_eq!(err.message, r#"jsonpath "$.items[*].n": expected 1, got 2"#);
        assert_eq!(err.expected.as_deref(), Some("equal 1"));
        assert_eq!(err.actual.as_deref(), Some("2"));
        let exists = Assertion::Pick(p("$.x"), Predicate::Exists(true));
        let err = check("nope", 200, exists).unwrap_err();
        assert!(
            err.message.starts_with("body is not JSON"),
            "{}",
            err.message
        );
    }

    #[test]
    fn timing_and_size_bounds() {
        let fast = Assertion::ResponseTime(Duration::from_millis(100));
        let err = check("", 200, fast).unwrap_err();
        assert_eq!(
            err.message,
            "expected response time under 100ms, took 250 ms"
        );
        assert_eq!(err.actual.as_deref(), Some("250 ms"));
        assert!(check("abc", 200, Assertion::BodySize(4)).is_ok());
    }
}
