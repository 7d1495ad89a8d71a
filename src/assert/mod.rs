//! Assertions on a step's response: a query that picks a value out of the
//! response and a predicate that judges it. Everything is parsed at load; a
//! failure says what was expected and what was seen.

mod cert;
mod eval;
mod page;
mod pattern;
mod value;

use std::fmt;
use std::time::Duration;

pub use cert::PeerCertificate;
pub use eval::{Document, Failure, Response};
pub use page::{MAX_PAGE_DEPTH, PageError};
pub use pattern::{Pattern, Patterns};
pub use value::{CLOCK_SKEW, DateFormat, FormatError, Found, Freshness, NumberRange, first_number};

use crate::check::words::human_size;
use crate::template::Template;

/// One assertion on a response, `{ query, predicate }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub query: Query,
    pub predicate: Predicate,
}

/// What part of the response an assertion looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Status,
    Header(http::HeaderName),
    Body,
    /// Elements matched by a CSS selector: their text, or an attribute.
    Css {
        selector: Css,
        attr: Option<String>,
    },
    JsonPath(JsonPath),
    /// Every match of a regular expression over the body: its first group,
    /// or the whole match.
    BodyRegex(Pattern),
    ResponseTime,
    BodySize,
    /// Days until the peer certificate expires (HTTPS only).
    CertDays,
}

/// How the queried value is judged. Which predicates fit which query is
/// decided at load.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Status(StatusSet),
    Exists(bool),
    Equals(Template),
    Contains(Template),
    NotContains(Template),
    Matches(Pattern),
    Count(CountRange),
    JsonEquals(serde_json::Value),
    Under(Duration),
    UnderBytes(u64),
    /// A date no older than a bound (and not in the future).
    Fresh(Freshness),
    /// A number within bounds.
    Number(NumberRange),
    MoreThanDays(u32),
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

impl Assertion {
    /// Whether evaluating this assertion needs the body parsed as HTML.
    pub fn needs_html(&self) -> bool {
        matches!(self.query, Query::Css { .. })
    }

    /// The failure reason when this assertion does not hold: certificate
    /// expiry is a TLS problem, everything else an assertion.
    pub fn reason(&self) -> crate::check::Reason {
        match self.query {
            Query::CertDays => crate::check::Reason::Tls,
            _ => crate::check::Reason::Assertion,
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

/// Renders the query as a user would name it in a message.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Status => f.write_str("status"),
            Query::Header(name) => write!(f, "header {name}"),
            Query::Body => f.write_str("body"),
            Query::Css {
                selector,
                attr: None,
            } => write!(f, "selector {:?}", selector.source),
            Query::Css {
                selector,
                attr: Some(a),
            } => write!(f, "selector {:?} attribute {a:?}", selector.source),
            Query::JsonPath(p) => write!(f, "jsonpath {:?}", p.source),
            Query::BodyRegex(p) => write!(f, "regex /{}/", p.0.as_str()),
            Query::ResponseTime => f.write_str("response time"),
            Query::BodySize => f.write_str("body size"),
            Query::CertDays => f.write_str("certificate expiry"),
        }
    }
}

/// Renders the expectation, e.g. `matches /^\d+$/`.
impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Status(s) => write!(f, "is {s}"),
            Predicate::Exists(true) => f.write_str("exists"),
            Predicate::Exists(false) => f.write_str("does not exist"),
            Predicate::Equals(t) => write!(f, "equals {:?}", t.to_string()),
            Predicate::Contains(t) => write!(f, "contains {:?}", t.to_string()),
            Predicate::NotContains(t) => write!(f, "does not contain {:?}", t.to_string()),
            Predicate::Matches(p) => write!(f, "matches /{}/", p.0.as_str()),
            Predicate::Count(c) => write!(f, "matches {c} elements"),
            Predicate::JsonEquals(v) => write!(f, "equals {v}"),
            Predicate::Under(d) => write!(f, "is under {}", humantime::format_duration(*d)),
            Predicate::UnderBytes(b) => write!(f, "is under {}", human_size(*b)),
            Predicate::Fresh(fresh) => write!(f, "is {fresh}"),
            Predicate::Number(range) => write!(f, "is a number {range}"),
            Predicate::MoreThanDays(n) => write!(f, "is more than {n} days away"),
        }
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.query, self.predicate)
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
}
