//! Keeps a run's secrets out of what it reports. The run records every secret
//! value it uses (secrets, secret files, auth credentials, captures marked
//! secret) here, in each form a site might echo it in; before a result leaves
//! the probe, every string in it passes through [`Redactor::redact`].

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::check::{Outcome, RunResult, StepDetail};

/// What a redacted value is replaced with.
pub const MARK: &str = "[redacted]";

/// Values shorter than this (in bytes) are not redacted: replacing every
/// `ab` in a page would shred the evidence and hide nothing worth hiding.
pub const MIN_LEN: usize = 4;

/// A prefix of a secret at least this long, cut off by an excerpt's `…`,
/// is redacted too.
const MIN_CUT: usize = 3;

/// How much of a body [`Redactor::redact_head`] looks at.
const HEAD: usize = 64 * 1024;

/// The secret values of one run. Cheap to clone; clones share the values, so
/// whatever part of the run records a value, the redaction at the end sees it.
#[derive(Clone, Default)]
pub(super) struct Redactor(Arc<Mutex<Vec<String>>>);

/// Shows how many values it holds, never the values.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values().len())
    }
}

impl Redactor {
    /// Records a secret value in every form a response or message may show
    /// it in: as is, URL-encoded (form style with `+` or `%20` for spaces,
    /// and as a URL path keeps it), JSON-escaped, escaped as Rust's `{:?}`
    /// shows strings, and HTML-escaped.
    pub(super) fn add(&self, value: &str) {
        if value.len() < MIN_LEN {
            return;
        }
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let forms = [
            value.to_owned(),
            form.replace('+', "%20"),
            form,
            path_encode(value),
            trim_quotes(serde_json::to_string(value).unwrap_or_default()),
            trim_quotes(format!("{value:?}")),
            html_escape(value),
        ];
        let mut values = self.values();
        for f in forms {
            if f.len() >= MIN_LEN && !values.contains(&f) {
                values.push(f);
            }
        }
        // Longest first: a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Records Basic credentials: the password, and the base64 of
    /// `user:pass` that the Authorization header (and a site echoing it)
    /// carries.
    pub(super) fn add_basic(&self, username: &str, password: &str) {
        self.add(password);
        self.add(&BASE64.encode(format!("{username}:{password}")));
    }

    /// `text` with every recorded value replaced by [`MARK`], and a prefix
    /// of one cut off by a `…` (the end of an excerpt) as well.
    pub(super) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let values = self.values();
        if values.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        let bytes = text.as_bytes();
        let cuts: Vec<usize> = text.match_indices('…').map(|(at, _)| at).collect();
        let mut next_cut = cuts.iter().copied().peekable();
        while i < bytes.len() {
            while next_cut.next_if(|&c| c < i).is_some() {}
            let rest = &bytes[i..];
            // A match starts at a char boundary: values are UTF-8 and never
            // start with a continuation byte.
            let found = match values.iter().find(|v| rest.starts_with(v.as_bytes())) {
                Some(v) => Some(v.len()),
                None => next_cut
                    .peek()
                    .and_then(|&cut| cut_prefix(&values, &bytes[i..cut])),
            };
            match found {
                Some(len) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(MARK);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// [`Redactor::redact`] of the first 64 KiB of `text`: enough for any
    /// excerpt, and a bounded cost however large the body.
    pub(super) fn redact_head<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut end = text.len().min(HEAD);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.redact(&text[..end])
    }

    /// Redacts every string of `run` in place.
    pub(super) fn redact_run(&self, run: &mut RunResult) {
        if self.values().is_empty() {
            return;
        }
        let fix = |s: &mut String| {
            if let Cow::Owned(clean) = self.redact(s) {
                *s = clean;
            }
        };
        if let Outcome::Failure { step, message, .. } = &mut run.outcome {
            fix(message);
            if let Some(step) = step {
                fix(step);
            }
        }
        for step in &mut run.steps {
            fix(&mut step.name);
            fix(&mut step.url);
            match &mut step.detail {
                StepDetail::Http(http) => {
                    for hop in &mut http.redirects {
                        fix(&mut hop.location);
                    }
                }
            }
            step.failures.iter_mut().for_each(fix);
            for failure in &mut step.failure_details {
                fix(&mut failure.message);
                fix(&mut failure.query);
                failure.expected.iter_mut().for_each(fix);
                failure.actual.iter_mut().for_each(fix);
            }
            step.captures.values_mut().for_each(fix);
            if let Some(excerpt) = &mut step.excerpt {
                fix(excerpt);
            }
        }
    }

    fn values(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The length of `piece` (the text from here up to a `…`) if it is a
/// proper prefix, at least [`MIN_CUT`] bytes long, of some value.
fn cut_prefix(values: &[String], piece: &[u8]) -> Option<usize> {
    (piece.len() >= MIN_CUT
        && values
            .iter()
            .any(|v| v.len() > piece.len() && v.as_bytes().starts_with(piece)))
    .then_some(piece.len())
}

/// `s` percent-encoded as the URL parser encodes a path (WHATWG path
/// percent-encode set): how a secret in a URL's path shows in a result.
fn path_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'!' | b'$'..=b';' | b'=' | b'@'..=b'_' | b'a'..=b'z' | b'|' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn trim_quotes(s: String) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(s)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_value_is_replaced_longest_first() {
        let r = Redactor::default();
        r.add("p@ss w/\"é\"");
        r.add("p@ss");
        let samples = [
            "p@ss%20w/%22%C3%A9%22",
            "p@ss w/\"é\"",
            "p%40ss+w%2F%22%C3%A9%22",
            "p%40ss%20w%2F%22%C3%A9%22",
            "p@ss w/\\\"é\\\"",
            "p@ss w/&quot;é&quot;",
        ];
        for s in samples {
            assert_eq!(r.redact(&format!("<{s}>")), "<[redacted]>", "{s}");
        }
        assert_eq!(
            r.redact("p@ss and p@ssword"),
            "[redacted] and [redacted]word"
        );
    }

    #[test]
    fn basic_credentials_are_redacted_as_base64() {
        let r = Redactor::default();
        r.add_basic("demo", "harvest-2026");
        let header = BASE64.encode("demo:harvest-2026");
        assert_eq!(r.redact(&format!("Basic {header}")), "Basic [redacted]");
    }

    #[test]
    fn short_values_stay_and_text_without_values_is_borrowed() {
        let r = Redactor::default();
        r.add("abc");
        assert!(matches!(r.redact("abc abc"), Cow::Borrowed(_)));
        r.add("s3cret-token");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_value_cut_off_by_an_excerpt_is_redacted_from_its_third_byte() {
        let r = Redactor::default();
        r.add("s3cret-token");
        assert_eq!(
            r.redact("body starts \"x s3cr…\""),
            "body starts \"x [redacted]…\""
        );
        assert_eq!(r.redact("Loading…"), "Loading…");
        assert_eq!(r.redact("so s3…"), "so s3…");
    }

    #[test]
    fn a_secret_in_a_failures_expected_or_actual_leaves_no_json_output() {
        let r = Redactor::default();
        r.add("s3cret-token");
        let failure = crate::check::Failure::new("header x-echo", "wrong".into())
            .expected("equal \"s3cret-token\"")
            .actual("token=s3cret-token");
        let mut run = RunResult {
            check: "c".into(),
            started_at: chrono::Utc::now(),
            duration: std::time::Duration::ZERO,
            outcome: Outcome::Success,
            steps: vec![crate::check::StepResult {
                failure_details: vec![failure],
                ..Default::default()
            }],
        };
        r.redact_run(&mut run);
        let json = crate::report::json(&[run]);
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains(r#""actual": "token=[redacted]""#), "{json}");
        assert!(
            json.contains(r#""expected": "equal \"[redacted]\"""#),
            "{json}"
        );
    }

    #[test]
    fn debug_shows_no_values() {
        let r = Redactor::default();
        r.add("s3cret-token");
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
