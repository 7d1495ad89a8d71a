//! The one query model for a response. A query picks values out of a
//! response; a capture is a query and a name, an assertion a query and a
//! predicate that fits it. Each assertion variant pairs a query with the
//! predicates that mean something for it, so a pair that does not cannot be
//! built. Everything is parsed at load; how a query is named and how each
//! predicate is worded is written here, once.

use std::fmt;
use std::time::Duration;

use super::Reason;
use super::pattern::Pattern;
use super::value::{Freshness, NumberRange};
use super::words::human_size;
use crate::template::Template;

/// What part of a response (or of the run after it) a query looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Status,
    /// The URL of the last request, after redirects.
    Url,
    /// A cookie of the run's jar, by name.
    Cookie(String),
    /// The body as text.
    Body,
    ResponseTime,
    BodySize,
    /// Days until the peer certificate expires (HTTPS only).
    CertDays,
    /// Any number of values: header values, elements, JSON nodes, matches.
    Pick(Pick),
}

/// A query that picks any number of values out of a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Pick {
    /// Every value of a header.
    Header(http::HeaderName),
    /// Elements matched by a CSS selector: their text, or an attribute.
    Css {
        selector: Css,
        attr: Option<String>,
    },
    JsonPath(JsonPath),
    /// Every match of a regular expression over the body: its first group,
    /// or the whole match.
    Regex(Pattern),
}

/// A named value taken from a step's response for later steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub name: String,
    pub query: Query,
    /// The value is redacted from everything a run reports.
    pub secret: bool,
}

/// One assertion on a response: the variant is the query, its fields the
/// predicate that fits it.
#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    Status(StatusSet),
    /// The response came within this long.
    ResponseTime(Duration),
    /// The decoded body is smaller than this many bytes.
    BodySize(u64),
    /// The certificate has more than this many days left.
    CertDays(u32),
    Body(TextPredicate),
    Pick(Pick, Predicate),
}

/// How the values a [`Pick`] found are judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Whether the query found anything.
    Exists(bool),
    /// How many values it found.
    Count(CountRange),
    Text(TextPredicate),
    /// A JSON node equals this value; a text equals it when it is a string.
    JsonEquals(serde_json::Value),
    /// A date no older than a bound (and not in the future).
    Fresh(Freshness),
    /// A number within bounds.
    Number(NumberRange),
}

/// How a text is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum TextPredicate {
    Equals(Template),
    Contains(Template),
    NotContains(Template),
    Matches(Pattern),
}

/// Accepted status codes: exact codes and classes such as `2xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<StatusMatch>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    /// The hundreds digit: `2` for `2xx`.
    Class(u16),
}

/// Inclusive bounds on a number of matched elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRange {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// A compiled CSS selector that remembers its source.
#[derive(Debug, Clone)]
pub struct Css {
    pub source: String,
    pub selector: scraper::Selector,
}

/// A compiled JSONPath that remembers its source.
#[derive(Debug, Clone)]
pub struct JsonPath {
    pub source: String,
    pub path: serde_json_path::JsonPath,
}

impl PartialEq for Css {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Css {
    pub fn parse(source: &str) -> Result<Css, String> {
        scraper::Selector::parse(source)
            .map(|selector| Css {
                source: source.to_owned(),
                selector,
            })
            .map_err(|e| match e {
                // scraper shows these as a multi-line Debug dump asking to
                // be reported; the kind's name alone says what is wrong.
                scraper::error::SelectorErrorKind::UnexpectedSelectorParseError(kind) => {
                    words(&format!("{kind:?}"))
                }
                other => other.to_string(),
            })
    }
}

/// `DanglingCombinator` as `dangling combinator`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.char_indices() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// How deeply `[` and `(` may nest in a JSONPath. serde_json_path parses
/// recursively, so a few thousand levels overflow the stack; a real path
/// nests a handful.
pub const MAX_JSONPATH_NESTING: usize = 32;

impl JsonPath {
    pub fn parse(source: &str) -> Result<JsonPath, String> {
        if JsonPath::too_deep(source).is_some() {
            return Err(format!(
                "`[` and `(` nest deeper than {MAX_JSONPATH_NESTING} levels"
            ));
        }
        serde_json_path::JsonPath::parse(source)
            .map(|path| JsonPath {
                source: source.to_owned(),
                path,
            })
            .map_err(|e| e.to_string())
    }

    /// The byte offset of the first `[` or `(` nested deeper than
    /// [`MAX_JSONPATH_NESTING`], outside quoted names and strings. A scan
    /// of the bytes, so nothing about the path's syntax is assumed.
    pub fn too_deep(source: &str) -> Option<usize> {
        let mut depth = 0;
        let mut quote = None;
        let mut escaped = false;
        for (i, b) in source.bytes().enumerate() {
            match quote {
                Some(_) if escaped => escaped = false,
                Some(_) if b == b'\\' => escaped = true,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'\'' | b'"' => quote = Some(b),
                    b'[' | b'(' => {
                        depth += 1;
                        if depth > MAX_JSONPATH_NESTING {
                            return Some(i);
                        }
                    }
                    b']' | b')' => depth -= usize::from(depth > 0),
                    _ => {}
                },
            }
        }
        None
    }
}

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|m| match *m {
            StatusMatch::Code(c) => c == status,
            StatusMatch::Class(h) => status / 100 == h,
        })
    }
}

impl CountRange {
    pub fn exactly(n: u64) -> CountRange {
        CountRange {
            min: Some(n),
            max: Some(n),
        }
    }

    pub fn contains(&self, n: u64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }
}

impl Query {
    /// Whether taking this query's values needs the body parsed as HTML.
    pub fn needs_html(&self) -> bool {
        matches!(self, Query::Pick(Pick::Css { .. }))
    }
}

impl Assertion {
    /// Whether evaluating this assertion needs the body parsed as HTML.
    pub fn needs_html(&self) -> bool {
        matches!(self, Assertion::Pick(Pick::Css { .. }, _))
    }

    /// The failure reason when this assertion does not hold: certificate
    /// expiry is a TLS problem, everything else an assertion.
    pub fn reason(&self) -> Reason {
        match self {
            Assertion::CertDays(_) => Reason::Tls,
            _ => Reason::Assertion,
        }
    }

    /// Where the assertion looks, named as messages name it.
    pub fn query(&self) -> &dyn fmt::Display {
        const STATUS: Query = Query::Status;
        const BODY: Query = Query::Body;
        const RESPONSE_TIME: Query = Query::ResponseTime;
        const BODY_SIZE: Query = Query::BodySize;
        const CERT_DAYS: Query = Query::CertDays;
        match self {
            Assertion::Status(_) => &STATUS,
            Assertion::ResponseTime(_) => &RESPONSE_TIME,
            Assertion::BodySize(_) => &BODY_SIZE,
            Assertion::CertDays(_) => &CERT_DAYS,
            Assertion::Body(_) => &BODY,
            Assertion::Pick(pick, _) => pick,
        }
    }

    /// What the assertion expects, as a verb phrase after "expected it to".
    pub fn expected(&self) -> Expected<'_> {
        Expected(self)
    }
}

/// The wording of an assertion's predicate: see [`Assertion::expected`].
pub struct Expected<'a>(&'a Assertion);

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Assertion::Status(s) => write!(f, "be {s}"),
            Assertion::ResponseTime(d) => {
                write!(f, "be under {}", humantime::format_duration(*d))
            }
            Assertion::BodySize(b) => write!(f, "be under {}", human_size(*b)),
            Assertion::CertDays(n) => write!(f, "be more than {n} days away"),
            Assertion::Body(t) => t.fmt(f),
            Assertion::Pick(_, p) => p.fmt(f),
        }
    }
}

/// The predicate as a verb phrase after "expected it to".
impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Exists(true) => f.write_str("exist"),
            Predicate::Exists(false) => f.write_str("not exist"),
            Predicate::Count(c) => write!(f, "match {c} elements"),
            Predicate::Text(t) => t.fmt(f),
            Predicate::JsonEquals(v) => write!(f, "equal {v}"),
            Predicate::Fresh(fresh) => write!(f, "be {fresh}"),
            Predicate::Number(range) => write!(f, "be a number {range}"),
        }
    }
}

/// The predicate as a verb phrase after "expected it to".
impl fmt::Display for TextPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextPredicate::Equals(t) => write!(f, "equal {:?}", t.to_string()),
            TextPredicate::Contains(t) => write!(f, "contain {:?}", t.to_string()),
            TextPredicate::NotContains(t) => write!(f, "not contain {:?}", t.to_string()),
            TextPredicate::Matches(p) => write!(f, "match /{}/", p.0.as_str()),
        }
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == self.0.len() { " or " } else { ", " })?;
            }
            match m {
                StatusMatch::Code(c) => write!(f, "{c}")?,
                StatusMatch::Class(h) => write!(f, "{h}xx")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => write!(f, "exactly {a}"),
            (Some(a), Some(b)) => write!(f, "between {a} and {b}"),
            (Some(a), None) => write!(f, "at least {a}"),
            (None, Some(b)) => write!(f, "at most {b}"),
            (None, None) => write!(f, "any number of"),
        }
    }
}

/// The query as a user would name it in a message.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Status => f.write_str("status"),
            Query::Url => f.write_str("url"),
            Query::Cookie(name) => write!(f, "cookie {name:?}"),
            Query::Body => f.write_str("body"),
            Query::ResponseTime => f.write_str("response time"),
            Query::BodySize => f.write_str("body size"),
            Query::CertDays => f.write_str("certificate expiry"),
            Query::Pick(pick) => pick.fmt(f),
        }
    }
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pick::Header(name) => write!(f, "header {name}"),
            Pick::Css {
                selector,
                attr: None,
            } => write!(f, "selector {:?}", selector.source),
            Pick::Css {
                selector,
                attr: Some(a),
            } => write!(f, "selector {:?} attribute {a:?}", selector.source),
            Pick::JsonPath(p) => write!(f, "jsonpath {:?}", p.source),
            Pick::Regex(p) => write!(f, "regex /{}/", p.0.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_nesting_counts_brackets_and_parentheses_outside_quotes() {
        let at_limit = format!("$.a{}", "[0]".repeat(40));
        assert_eq!(JsonPath::too_deep(&at_limit), None, "siblings, not nested");
        let quoted = format!("$['{}\\']{}']", "[(".repeat(100), "(".repeat(100));
        assert_eq!(JsonPath::too_deep(&quoted), None);
        assert!(JsonPath::parse(&quoted).is_ok());
        let deep = format!("$[?{}@.a{}]", "(".repeat(33), ")".repeat(33));
        assert_eq!(JsonPath::too_deep(&deep), Some(34));
        let ok = format!("$[?{}@.a{}]", "(".repeat(31), ")".repeat(31));
        assert!(JsonPath::parse(&ok).is_ok());
    }

    #[test]
    fn each_predicate_is_worded_once_for_messages() {
        let header = Pick::Header(http::HeaderName::from_static("x-a"));
        let a = Assertion::Pick(header, Predicate::Exists(false));
        assert_eq!(
            format!("{} {}", a.query(), a.expected()),
            "header x-a not exist"
        );
        let s = Assertion::Status(StatusSet(vec![
            StatusMatch::Code(200),
            StatusMatch::Class(3),
        ]));
        assert_eq!(s.expected().to_string(), "be 200 or 3xx");
        assert_eq!(s.query().to_string(), "status");
    }
}
