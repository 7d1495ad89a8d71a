//! Keeps a run's secrets out of what it reports. The run records every secret
//! value it uses (secrets, secret files, auth credentials, captures marked
//! secret, cookie values) here; before a result leaves the probe, every
//! string in it passes through [`Redactor::redact`].
//!
//! Matching is done with one Aho–Corasick automaton over every recorded
//! form of every value: as is, Latin-1 (for `%E9`-style percent bytes),
//! as Rust's `{:?}` escapes it, and base64 / base64url at each of the three
//! alignments a value can take inside a longer base64 string. The text is
//! searched as it is and in up to [`DEPTH`] decoded layers (`decode.rs`:
//! URL, JSON and HTML escapes); a match in a decoded layer replaces the span
//! of the original text it came from, so the decoded text is never shown.

mod decode;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use self::decode::Encoding;
use crate::check::{Outcome, Redacted, RunResult, StepDetail};

/// What a redacted value is replaced with.
pub const MARK: &str = "[redacted]";

/// Values shorter than this (in bytes) are not redacted: replacing every
/// `ab` in a page would shred the evidence and hide nothing worth hiding.
pub const MIN_LEN: usize = 4;

/// Cookie values shorter than this (in bytes) are not redacted: `lang=en`
/// or `consent=1` are not credentials, and a session token is longer.
pub const MIN_COOKIE_LEN: usize = 8;

/// How many layers of encoding inside each other are undone.
const DEPTH: usize = 3;

/// A prefix of a secret at least this long, cut off by an excerpt's `…`,
/// is redacted too.
const MIN_CUT: usize = 3;

/// The secret values of one run. Cheap to clone; clones share the values, so
/// whatever part of the run records a value, the redaction at the end sees it.
#[derive(Clone, Default)]
pub(super) struct Redactor(Arc<Mutex<Set>>);

/// Every form of every recorded value, and the automaton over them, built
/// when a text is redacted after a value joined (never for an empty set).
#[derive(Default)]
struct Set {
    needles: Vec<Vec<u8>>,
    /// Whether some needle holds a space, so `+` is worth decoding as one.
    space: bool,
    matcher: Option<AhoCorasick>,
}

/// Shows how many values it holds, never the values.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.set().needles.len())
    }
}

impl Redactor {
    /// Records a secret value in every form a response or message may show
    /// it in (see the module's documentation).
    pub(super) fn add(&self, value: &str) {
        if value.len() < MIN_LEN {
            return;
        }
        let mut set = self.set();
        set.push(value.as_bytes().to_vec());
        if !value.is_ascii()
            && let Some(latin1) = value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
        {
            set.push(latin1);
        }
        set.push(trim_quotes(format!("{value:?}")).into_bytes());
        for form in base64_forms(value.as_bytes()) {
            set.push(form.into_bytes());
        }
    }

    /// Records a cookie's value, unless it is shorter than
    /// [`MIN_COOKIE_LEN`].
    pub(super) fn add_cookie(&self, value: &str) {
        if value.len() >= MIN_COOKIE_LEN {
            self.add(value);
        }
    }

    /// Records Basic credentials: the password, and the base64 of
    /// `user:pass` that the Authorization header (and a site echoing it)
    /// carries.
    pub(super) fn add_basic(&self, username: &str, password: &str) {
        self.add(password);
        self.add(&STANDARD.encode(format!("{username}:{password}")));
    }

    /// `text` with every recorded value, in any recorded form and any
    /// decoded layer, replaced by [`MARK`], and a prefix of one cut off by a
    /// `…` (the end of an excerpt) as well.
    pub(super) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if text.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut set = self.set();
        let Some(spans) = set.spans(text) else {
            return Cow::Borrowed(text);
        };
        drop(set);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in spans {
            out.push_str(&text[copied..start]);
            out.push_str(MARK);
            copied = end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Whether no value has been recorded.
    pub(super) fn is_empty(&self) -> bool {
        self.set().needles.is_empty()
    }

    /// Redacts every string of `run`: the one way a run's result becomes
    /// what every output takes.
    pub(super) fn seal(&self, mut run: RunResult) -> Redacted<RunResult> {
        if !self.is_empty() {
            self.redact_run(&mut run);
        }
        Redacted::vouched(run)
    }

    fn redact_run(&self, run: &mut RunResult) {
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
                StepDetail::Browser(b) => {
                    let b = &mut b.browser;
                    b.final_url.iter_mut().for_each(fix);
                    b.console.iter_mut().for_each(fix);
                    b.failed_requests.iter_mut().for_each(fix);
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

    fn set(&self) -> MutexGuard<'_, Set> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Set {
    fn push(&mut self, form: Vec<u8>) {
        if form.len() >= MIN_LEN && !self.needles.contains(&form) {
            self.space |= form.contains(&b' ');
            self.needles.push(form);
            self.matcher = None;
        }
    }

    /// The spans of `text` to replace, in order, apart, on character
    /// boundaries; `None` when there are none.
    fn spans(&mut self, text: &str) -> Option<Vec<(usize, usize)>> {
        if self.needles.is_empty() {
            return None;
        }
        if self.matcher.is_none() {
            self.matcher = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.needles)
                .ok();
        }
        let Some(matcher) = &self.matcher else {
            // Fails closed: an automaton too large to build hides everything.
            return Some(vec![(0, text.len())]);
        };
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = matcher
            .find_iter(bytes)
            .map(|m| (m.start(), m.end()))
            .collect();
        for (cut, _) in text.match_indices('…') {
            if let Some(len) = self.cut_prefix(&bytes[..cut]) {
                spans.push((cut - len, cut));
            }
        }
        let plus = self.space && bytes.contains(&b'+');
        for encoding in encodings(plus) {
            if let Some(view) = decode::first(bytes, encoding) {
                scan(matcher, &view, 1, plus, &mut spans);
            }
        }
        (!spans.is_empty()).then(|| merge(text, spans))
    }

    /// The length of the longest proper prefix, at least [`MIN_CUT`] bytes
    /// long, of some needle that `before` (the text up to a `…`) ends with.
    fn cut_prefix(&self, before: &[u8]) -> Option<usize> {
        self.needles
            .iter()
            .filter_map(|n| {
                (MIN_CUT..n.len())
                    .rev()
                    .find(|&len| before.ends_with(&n[..len]))
            })
            .max()
    }
}

/// The encodings a layer may be in. `+` is tried as a space, besides as
/// itself, only when `plus`: when some value holds a space and the text a
/// `+`.
fn encodings(plus: bool) -> impl Iterator<Item = Encoding> {
    [
        Encoding::Url { plus: false },
        Encoding::Json,
        Encoding::Html,
        Encoding::Url { plus: true },
    ]
    .into_iter()
    .take(3 + usize::from(plus))
}

/// Matches in `view` and the layers below it, down to [`DEPTH`].
fn scan(
    matcher: &AhoCorasick,
    view: &decode::View,
    depth: usize,
    plus: bool,
    spans: &mut Vec<(usize, usize)>,
) {
    spans.extend(
        matcher
            .find_iter(&view.bytes)
            .map(|m| view.origin(m.start(), m.end())),
    );
    if depth < DEPTH {
        for encoding in encodings(plus) {
            if let Some(next) = view.decode(encoding) {
                scan(matcher, &next, depth + 1, plus, spans);
            }
        }
    }
}

/// `spans` sorted, widened to character boundaries (a Latin-1 form can
/// match part of a UTF-8 character), overlapping ones joined.
fn merge(text: &str, mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (mut start, mut end) in spans {
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        match out.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The base64 and base64url forms of `value`: whole, padded and not, and
/// the characters that stand for it alone at each of the three alignments
/// it can take inside the base64 of a longer text.
fn base64_forms(value: &[u8]) -> Vec<String> {
    let mut forms = vec![
        STANDARD.encode(value),
        STANDARD_NO_PAD.encode(value),
        URL_SAFE.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ];
    for skip in 0..3 {
        let mut shifted = vec![0; skip];
        shifted.extend_from_slice(value);
        let encoded = STANDARD_NO_PAD.encode(&shifted);
        // Characters whose six bits all come from `value`.
        let from = (8 * skip).div_ceil(6);
        let to = 8 * shifted.len() / 6;
        if let Some(middle) = encoded.get(from..to) {
            forms.push(middle.replace('+', "-").replace('/', "_"));
            forms.push(middle.to_owned());
        }
    }
    forms
}

fn trim_quotes(s: String) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(s)
}
#[cfg(test)]
mod properties;

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
        let header = STANDARD.encode("demo:harvest-2026");
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
        let run = RunResult {
            check: "c".into(),
            started_at: chrono::Utc::now(),
            duration: std::time::Duration::ZERO,
            outcome: Outcome::Success,
            steps: vec![crate::check::StepResult {
                failure_details: vec![failure],
                ..Default::default()
            }],
        };
        let json = crate::report::json(&[r.seal(run)]);
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains(r#""actual": "token=[redacted]""#), "{json}");
        assert!(
            json.contains(r#""expected": "equal \"[redacted]\"""#),
            "{json}"
        );
    }

    fn redacted(secret: &str, text: &str) -> String {
        let r = Redactor::default();
        r.add(secret);
        r.redact(text).into_owned()
    }

    #[test]
    fn url_encoding_in_either_case_and_plus_is_seen_through() {
        let secret = "s3cret/tok+en wide";
        for text in [
            "q=s3cret%2Ftok%2Ben+wide&x=1",
            "q=s3cret%2ftok%2ben%20wide&x=1",
            "q=%73%33%63%72%65%74%2F%74%6F%6B%2B%65%6E%20%77%69%64%65&x=1",
        ] {
            assert_eq!(redacted(secret, text), "q=[redacted]&x=1", "{text}");
        }
    }

    #[test]
    fn latin1_percent_bytes_are_seen_through() {
        assert_eq!(redacted("café-crème", "a=caf%E9-cr%E8me;"), "a=[redacted];");
        assert_eq!(redacted("café-crème", "a=café-crème"), "a=[redacted]");
    }

    #[test]
    fn json_escapes_and_surrogate_pairs_are_seen_through() {
        let secret = "p/w\"d😀-long";
        let text = r#"{"v":"p\/w\u0022d\ud83d\ude00-long","n":1}"#;
        assert_eq!(redacted(secret, text), r#"{"v":"[redacted]","n":1}"#);
        let all = r#"\u0070\u002F\u0077\u0022\u0064\uD83D\uDE00\u002d\u006c\u006f\u006e\u0067"#;
        assert_eq!(redacted(secret, all), "[redacted]");
    }

    #[test]
    fn html_entities_named_decimal_and_hex_are_seen_through() {
        let secret = "a&b<c>'d\"e\u{a0}f";
        for text in [
            "a&amp;b&lt;c&gt;&apos;d&quot;e&nbsp;f",
            "a&#38;b&#60;c&#62;&#39;d&#34;e&#160;f",
            "a&#x26;b&#x3C;c&#x3e;&#x27;d&#X22;e&#xA0;f",
        ] {
            assert_eq!(
                redacted(secret, &format!("<p>{text}</p>")),
                "<p>[redacted]</p>",
                "{text}"
            );
        }
    }

    #[test]
    fn nested_layers_are_seen_through_to_a_bounded_depth() {
        let secret = "s3cret&token";
        // HTML inside JSON inside a URL: three layers.
        let three = "x=s3cret%5Cu0026amp%3Btoken";
        assert_eq!(redacted(secret, three), "x=[redacted]");
        let twice = "s3cret%2526token";
        assert_eq!(redacted(secret, twice), "[redacted]");
        // A fourth layer is past the bound.
        let four = "s3cret%25255Cu0026amp%253Btoken";
        assert_eq!(redacted(secret, four), four);
    }

    #[test]
    fn only_the_original_span_is_replaced_and_nothing_decoded_is_shown() {
        let text = "a%20b &amp; s3cret%2Dtoken &lt;tag&gt;";
        assert_eq!(
            redacted("s3cret-token", text),
            "a%20b &amp; [redacted] &lt;tag&gt;"
        );
    }

    #[test]
    fn base64_and_base64url_at_every_alignment_padded_or_not() {
        let secret = "s3cret?token>>";
        for prefix in ["", "x", "xy", "xyz"] {
            let whole = format!("{prefix}{secret}-and-more");
            for (encoded, engine) in [
                (STANDARD.encode(&whole), "standard"),
                (URL_SAFE_NO_PAD.encode(&whole), "url"),
            ] {
                let out = redacted(secret, &format!("token {encoded} end"));
                assert!(out.contains(MARK), "{prefix:?} {engine}: {out}");
                for form in base64_forms(secret.as_bytes()) {
                    assert!(!out.contains(&form), "{prefix:?} {engine}: {out}");
                }
            }
        }
        for encoded in [
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ] {
            assert_eq!(redacted(secret, &format!("<{encoded}>")), "<[redacted]>");
        }
    }

    #[test]
    fn short_cookies_stay() {
        let r = Redactor::default();
        r.add_cookie("en-GB");
        assert!(r.is_empty());
        r.add_cookie("0123456789abcdef");
        assert_eq!(r.redact("sid=0123456789abcdef"), "sid=[redacted]");
    }

    #[test]
    fn debug_shows_no_values() {
        let r = Redactor::default();
        r.add("s3cret-token");
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
