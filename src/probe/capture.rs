//! Judging one response: its captures, then its assertions. Synchronous and
//! free of I/O, so the step can run it on the blocking pool when it parses
//! HTML (the parsed document is not `Send`).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::assert::{Document, Response};
use crate::check::{CaptureSource, Reason, Step};

use super::context::RunVars;

/// What a response showed.
#[derive(Debug, Default)]
pub(super) struct Evaluation {
    /// Every assertion that did not hold, then every capture that found
    /// nothing, in order.
    pub failures: Vec<String>,
    /// The class of the first failure: assertions win, since a response that
    /// fails them (a 503 page) usually also lacks what a capture looks for.
    pub failed: Option<Reason>,
    /// The values captured, by name, for the step's result; secret ones
    /// are left out.
    pub captures: BTreeMap<String, String>,
}

/// What the run knows beyond the response: where the step ended up after
/// redirects, and the run's cookies.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The full URL of the last request (query included).
    pub url: String,
    /// Name and value of every cookie in the run's jar, those the last URL
    /// would be sent first.
    pub cookies: Vec<(String, String)>,
}

impl Seen {
    /// What `step` may capture after its last request went to `url`. The
    /// jar is read only when the step captures a cookie.
    pub(super) fn new(jar: &cookie_store::CookieStore, url: &url::Url, step: &Step) -> Seen {
        let wants_cookies = step
            .captures
            .iter()
            .any(|c| matches!(c.source, CaptureSource::Cookie(_)));
        let mut cookies: Vec<(String, String)> = Vec::new();
        if wants_cookies {
            cookies.extend(
                jar.get_request_values(url)
                    .map(|(n, v)| (n.to_owned(), v.to_owned())),
            );
            cookies.extend(
                jar.iter_unexpired()
                    .map(|c| (c.name().to_owned(), c.value().to_owned())),
            );
        }
        Seen {
            url: url.to_string(),
            cookies,
        }
    }
}

/// Stores the step's captures in `vars`, then checks every assertion (which
/// may use them). The body is parsed at most once per view, as HTML only
/// until `deadline`; a page that cannot be parsed fails the step alone.
pub(super) fn evaluate(
    response: Response<'_>,
    seen: &Seen,
    step: &Step,
    vars: &mut RunVars,
    deadline: Instant,
) -> Evaluation {
    let doc = Document::new(response).until(deadline);
    if step.needs_html()
        && let Err(e) = doc.html()
    {
        return Evaluation {
            failures: vec![e.to_string()],
            failed: Some(e.reason()),
            captures: BTreeMap::new(),
        };
    }
    let mut missed = Vec::new();
    let mut shown = BTreeMap::new();
    for capture in &step.captures {
        match take(&doc, seen, &capture.source) {
            Ok(value) => {
                if !capture.secret {
                    shown.insert(capture.name.clone(), value.clone());
                }
                vars.set_capture(&capture.name, value, capture.secret);
            }
            Err(why) => missed.push(format!("capture {:?}: {why}", capture.name)),
        }
    }
    let mut first = None;
    let mut failures: Vec<String> = step
        .assertions
        .iter()
        .filter_map(|a| {
            let f = doc.check(a, vars).err()?;
            first.get_or_insert(a.reason());
            Some(f.message)
        })
        .collect();
    let failed = match (first, missed.is_empty()) {
        (Some(reason), _) => Some(reason),
        (None, false) => Some(Reason::Capture),
        (None, true) => None,
    };
    failures.extend(missed);
    Evaluation {
        failures,
        failed,
        captures: shown,
    }
}

/// The captured value, or why there is none.
fn take(doc: &Document<'_>, seen: &Seen, source: &CaptureSource) -> Result<String, String> {
    match source {
        CaptureSource::Css { selector, attr } => {
            let found = doc
                .select(selector, attr.as_deref())
                .map_err(|e| e.to_string())?;
            let n = found.len();
            let what = match attr {
                None => format!("selector {:?}", selector.source),
                Some(a) => format!("selector {:?} attribute {a:?}", selector.source),
            };
            match found.into_iter().flatten().next() {
                Some(value) => Ok(value),
                None if n == 0 => Err(format!("{what} matched nothing")),
                None => Err(format!(
                    "{what}: none of the {n} matched elements has the attribute"
                )),
            }
        }
        CaptureSource::Regex(re) => {
            let caps =
                re.0.captures(doc.response.body)
                    .ok_or_else(|| format!("regex /{}/ matched nothing", re.0.as_str()))?;
            let m = caps.get(1).or_else(|| caps.get(0));
            Ok(m.map_or_else(String::new, |m| m.as_str().to_owned()))
        }
        CaptureSource::Header(name) => doc
            .response
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .ok_or_else(|| format!("header {name} is missing")),
        CaptureSource::JsonPath(path) => {
            let json = doc.json().map_err(|f| f.message)?;
            match path.path.query(json).first() {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(format!("jsonpath {:?} matched nothing", path.source)),
            }
        }
        CaptureSource::Cookie(name) => match seen.cookies.iter().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => {
                let mut names: Vec<&str> = seen.cookies.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                Err(match names.as_slice() {
                    [] => format!("cookie {name:?} is not set (the run has no cookies)"),
                    _ => format!(
                        "cookie {name:?} is not set (the run's cookies: {})",
                        names.join(", ")
                    ),
                })
            }
        },
        CaptureSource::Url => Ok(seen.url.clone()),
        CaptureSource::Status => Ok(doc.response.status.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::assert::{Assertion, Css, JsonPath, Patterns, Predicate, Query};
    use crate::check::{Capture, Request, StepKind, Target};
    use crate::template::{Resolve, Template};

    fn step(captures: Vec<(&str, CaptureSource)>, assertions: Vec<Assertion>) -> Step {
        Step {
            name: "s".into(),
            kind: StepKind::Http(Request {
                method: http::Method::GET,
                url: Target::new(Template::literal("http://h/")).unwrap(),
                headers: vec![],
                query: vec![],
                body: None,
                redirects: Default::default(),
                auth: None,
            }),
            captures: captures
                .into_iter()
                .map(|(n, source)| Capture {
                    name: n.into(),
                    source,
                    secret: n.starts_with("secret"),
                })
                .collect(),
            assertions,
            timeout: None,
            retry: Default::default(),
        }
    }

    fn run(body: &str, step: &Step) -> (Evaluation, RunVars) {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-token", http::HeaderValue::from_static("h1"));
        let response = Response {
            status: 200,
            headers: &headers,
            body,
            size: body.len() as u64,
            elapsed: Duration::from_millis(5),
            certificate: None,
        };
        let seen = Seen {
            url: "http://h/next?code=7".into(),
            cookies: vec![
                ("sid".into(), "cookie-value".into()),
                ("lang".into(), "en".into()),
            ],
        };
        let mut vars = RunVars::default();
        let later = Instant::now() + Duration::from_secs(60);
        let e = evaluate(response, &seen, step, &mut vars, later);
        (e, vars)
    }

    fn css(s: &str, attr: Option<&str>) -> CaptureSource {
        CaptureSource::Css {
            selector: Css::parse(s).unwrap(),
            attr: attr.map(str::to_owned),
        }
    }

    #[test]
    fn every_kind_of_capture_takes_its_value() {
        let html = r#"<form><input name="csrf" value="tok"><b> Hello
            world </b></form><!-- id=42 -->"#;
        let s = step(
            vec![
                ("a", css("input[name=csrf]", Some("value"))),
                ("b", css("b", None)),
                (
                    "c",
                    CaptureSource::Regex(Patterns::default().compile(r"id=(\d+)").unwrap()),
                ),
                (
                    "d",
                    CaptureSource::Header(http::HeaderName::from_static("x-token")),
                ),
            ],
            vec![],
        );
        let (e, vars) = run(html, &s);
        assert!(e.failures.is_empty(), "{:?}", e.failures);
        let got: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| vars.capture(n).unwrap())
            .collect();
        assert_eq!(got, ["tok", "Hello world", "42", "h1"]);

        let json = r#"{"t":"x","n":{"k":1}}"#;
        let path = |p: &str| CaptureSource::JsonPath(JsonPath::parse(p).unwrap());
        let (e, vars) = run(
            json,
            &step(vec![("t", path("$.t")), ("n", path("$.n"))], vec![]),
        );
        assert!(e.failures.is_empty());
        assert_eq!(vars.capture("t").as_deref(), Some("x"));
        assert_eq!(vars.capture("n").as_deref(), Some(r#"{"k":1}"#));
    }

    #[test]
    fn cookie_url_and_status_captures_and_secret_ones_are_redacted() {
        let s = step(
            vec![
                ("secret_sid", CaptureSource::Cookie("sid".into())),
                ("u", CaptureSource::Url),
                ("code", CaptureSource::Status),
                ("other", CaptureSource::Cookie("session".into())),
            ],
            vec![],
        );
        let (e, vars) = run("", &s);
        assert_eq!(vars.capture("secret_sid").as_deref(), Some("cookie-value"));
        assert_eq!(vars.capture("u").as_deref(), Some("http://h/next?code=7"));
        assert_eq!(vars.capture("code").as_deref(), Some("200"));
        assert_eq!(
            e.failures,
            [r#"capture "other": cookie "session" is not set (the run's cookies: lang, sid)"#]
        );
        assert_eq!(e.failed, Some(Reason::Capture));
        assert_eq!(vars.redactor.redact("cookie-value"), "[redacted]");
    }

    #[test]
    fn a_missing_capture_names_what_it_looked_for_and_assertions_win() {
        let s = step(
            vec![("csrf", css("input[name=csrf]", Some("value")))],
            vec![],
        );
        let (e, _) = run("<p>nothing</p>", &s);
        assert_eq!(e.failed, Some(Reason::Capture));
        assert_eq!(
            e.failures,
            [r#"capture "csrf": selector "input[name=csrf]" attribute "value" matched nothing"#]
        );

        let body_has = Assertion {
            query: Query::Body,
            predicate: Predicate::Contains(Template::literal("Welcome")),
        };
        let s = step(vec![("csrf", css("input", Some("value")))], vec![body_has]);
        let (e, _) = run("<input>", &s);
        assert_eq!(e.failed, Some(Reason::Assertion));
        assert_eq!(e.failures.len(), 2);
        assert!(
            e.failures[1].contains("none of the 1 matched elements"),
            "{:?}",
            e.failures
        );
    }
}
