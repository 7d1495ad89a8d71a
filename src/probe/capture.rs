//! Judging one response for a step: takes its captures into the run's
//! variables, then checks its assertions, both through `assert`'s one
//! evaluation of the query model. Synchronous and free of I/O, so the step
//! can run it on the blocking pool when it parses HTML (the parsed document
//! is not `Send`).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::assert::{Around, Document, Response};
use crate::check::{Failure, Query, Reason, Step};

use super::context::RunVars;

/// What a response showed.
#[derive(Debug, Default)]
pub(super) struct Evaluation {
    /// Every assertion that did not hold, then every capture that found
    /// nothing, in order.
    pub failures: Vec<Failure>,
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
            .any(|c| matches!(c.query, Query::Cookie(_)));
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

    fn around(&self) -> Around<'_> {
        Around {
            url: &self.url,
            cookies: &self.cookies,
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
            failures: vec![Failure::new(Query::Body, e.to_string())],
            failed: Some(e.reason()),
            captures: BTreeMap::new(),
        };
    }
    let mut missed = Vec::new();
    let mut shown = BTreeMap::new();
    for capture in &step.captures {
        match doc.take(&capture.query, seen.around()) {
            Ok(value) => {
                if !capture.secret {
                    shown.insert(capture.name.clone(), value.clone());
                }
                vars.set_capture(&capture.name, value, capture.secret);
            }
            Err(mut why) => {
                why.message = format!("capture {:?}: {}", capture.name, why.message);
                missed.push(why);
            }
        }
    }
    let mut first = None;
    let mut failures: Vec<Failure> = step
        .assertions
        .iter()
        .filter_map(|a| {
            let f = doc.check(a, vars).err()?;
            first.get_or_insert(a.reason());
            Some(f)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::TextPredicate;
    use crate::check::{
        Assertion, Capture, Css, JsonPath, Patterns, Pick, Request, StepKind, Target,
    };
    use crate::template::{Resolve, Template};

    fn step(captures: Vec<(&str, Query)>, assertions: Vec<Assertion>) -> Step {
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
                .map(|(n, query)| Capture {
                    name: n.into(),
                    query,
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

    fn css(s: &str, attr: Option<&str>) -> Query {
        Query::Pick(Pick::Css {
            selector: Css::parse(s).unwrap(),
            attr: attr.map(str::to_owned),
        })
    }

    fn messages(e: &Evaluation) -> Vec<&str> {
        e.failures.iter().map(|f| f.message.as_str()).collect()
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
                    Query::Pick(Pick::Regex(
                        Patterns::default().compile(r"id=(\d+)").unwrap(),
                    )),
                ),
                (
                    "d",
                    Query::Pick(Pick::Header(http::HeaderName::from_static("x-token"))),
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
        let path = |p: &str| Query::Pick(Pick::JsonPath(JsonPath::parse(p).unwrap()));
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
                ("secret_sid", Query::Cookie("sid".into())),
                ("u", Query::Url),
                ("code", Query::Status),
                ("other", Query::Cookie("session".into())),
            ],
            vec![],
        );
        let (e, vars) = run("", &s);
        assert_eq!(vars.capture("secret_sid").as_deref(), Some("cookie-value"));
        assert_eq!(vars.capture("u").as_deref(), Some("http://h/next?code=7"));
        assert_eq!(vars.capture("code").as_deref(), Some("200"));
        assert_eq!(
            messages(&e),
            [r#"capture "other": cookie "session" is not set (the run's cookies: lang, sid)"#]
        );
        assert_eq!(e.failures[0].query, r#"cookie "session""#);
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
            messages(&e),
            [r#"capture "csrf": selector "input[name=csrf]" attribute "value" matched nothing"#]
        );

        let body_has = Assertion::Body(TextPredicate::Contains(Template::literal("Welcome")));
        let s = step(vec![("csrf", css("input", Some("value")))], vec![body_has]);
        let (e, _) = run("<input>", &s);
        assert_eq!(e.failed, Some(Reason::Assertion));
        assert_eq!(e.failures.len(), 2);
        assert!(
            e.failures[1]
                .message
                .contains("none of the 1 matched elements"),
            "{:?}",
            e.failures
        );
    }
}
