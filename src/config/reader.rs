//! Typed reads from a span-carrying TOML tree that collect every problem
//! instead of stopping at the first, as serde would.

use std::cell::RefCell;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Severity, Source, did_you_mean};
use crate::check::bounds::{Period, Size};

pub type Value<'i> = Spanned<DeValue<'i>>;

/// Looks up `env:` placeholders; the process environment outside tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Collects the diagnostics of one file.
pub struct Ctx<'s> {
    pub src: &'s Source,
    pub diags: Vec<Diagnostic>,
}

impl<'s> Ctx<'s> {
    pub fn new(src: &'s Source) -> Self {
        Ctx {
            src,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = self.src.diagnostic(Severity::Error, span, message.into());
        self.diags.push(d);
    }

    pub fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = self.src.diagnostic(Severity::Warning, span, message.into());
        self.diags.push(d);
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn type_error(&mut self, v: &Value, expected: &str) {
        let found = v.get_ref().type_str();
        self.error(v.span(), format!("expected {expected}, found {found}"));
    }

    pub fn str<'v>(&mut self, v: &'v Value) -> Option<&'v str> {
        let s = v.get_ref().as_str();
        if s.is_none() {
            self.type_error(v, "a string");
        }
        s
    }

    pub fn bool(&mut self, v: &Value) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.type_error(v, "true or false");
        }
        b
    }

    pub fn int(&mut self, v: &Value) -> Option<i64> {
        match v.get_ref().as_integer() {
            Some(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.error(v.span(), format!("invalid integer: {e}"));
                    None
                }
            },
            None => {
                self.type_error(v, "an integer");
                None
            }
        }
    }

    /// A whole number within `range`.
    pub fn uint(&mut self, v: &Value, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
        let n = self.int(v)?;
        match u64::try_from(n).ok().filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                let (a, b) = (range.start(), range.end());
                self.error(
                    v.span(),
                    format!("expected a number from {a} to {b}, found {n}"),
                );
                None
            }
        }
    }

    pub fn array<'v, 'i>(&mut self, v: &'v Value<'i>) -> Option<&'v [Value<'i>]> {
        let a = v.get_ref().as_array().map(|a| &a[..]);
        if a.is_none() {
            self.type_error(v, "an array");
        }
        a
    }

    /// A string or an array of strings, as a list.
    pub fn strings<'v>(&mut self, v: &'v Value) -> Vec<(&'v str, Range<usize>)> {
        match v.get_ref() {
            DeValue::String(s) => vec![(s.as_ref(), v.span())],
            DeValue::Array(a) => a
                .iter()
                .filter_map(|item| self.str(item).map(|s| (s, item.span())))
                .collect(),
            _ => {
                self.type_error(v, "a string or an array of strings");
                Vec::new()
            }
        }
    }

    pub fn table<'v, 'i>(&mut self, v: &'v Value<'i>, what: &'static str) -> Option<Table<'v, 'i>> {
        match v.get_ref().as_table() {
            Some(t) => Some(Table::new(t, v.span(), what)),
            None => {
                self.type_error(v, "a table");
                None
            }
        }
    }

    /// A duration within the bounds of [`Period`].
    pub fn duration(&mut self, v: &Value) -> Option<Duration> {
        let s = self.str(v)?;
        match s.parse::<Period>() {
            Ok(p) => Some(p.get()),
            Err(e) => {
                self.error(v.span(), e.to_string());
                None
            }
        }
    }

    /// A size within the bounds of [`Size`]: `"10MiB"`, `"512 KB"` or a
    /// plain number of bytes.
    pub fn size(&mut self, v: &Value) -> Option<Size> {
        let parsed = if v.get_ref().is_integer() {
            let n = self.int(v)?;
            Size::new(u64::try_from(n).unwrap_or(0))
        } else {
            self.str(v)?.parse::<Size>()
        };
        match parsed {
            Ok(size) => Some(size),
            Err(e) => {
                self.error(v.span(), e.to_string());
                None
            }
        }
    }
}

/// A table being read: remembers which keys were asked for, so that every
/// other key is reported as unknown, with a suggestion.
pub struct Table<'v, 'i> {
    table: &'v DeTable<'i>,
    pub span: Range<usize>,
    what: &'static str,
    known: RefCell<Vec<&'static str>>,
}

impl<'v, 'i> Table<'v, 'i> {
    pub fn new(table: &'v DeTable<'i>, span: Range<usize>, what: &'static str) -> Self {
        Table {
            table,
            span,
            what,
            known: RefCell::new(Vec::new()),
        }
    }

    pub fn get(&self, key: &'static str) -> Option<&'v Value<'i>> {
        self.known.borrow_mut().push(key);
        self.table.get(key)
    }

    /// The table as parsed, for walks over every value.
    pub fn inner(&self) -> &'v DeTable<'i> {
        self.table
    }

    /// The span of `key` itself, for errors about the key.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(k, _)| k.span())
    }

    /// All entries, for free-form tables such as headers and labels.
    pub fn entries(&self) -> impl Iterator<Item = (&'v str, Range<usize>, &'v Value<'i>)> {
        self.table
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
    }

    /// Reports every key that was never asked for.
    pub fn finish(self, cx: &mut Ctx) {
        let known = self.known.into_inner();
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let mut d = cx.src.diagnostic(
                Severity::Error,
                key.span(),
                format!("unknown key `{name}` in {}", self.what),
            );
            d = match did_you_mean(name, known.iter().copied()) {
                Some(k) => d.with_help(format!("did you mean `{k}`?")),
                None => d.with_help(format!("expected one of {}", list(&known))),
            };
            cx.push(d);
        }
    }
}

fn list(keys: &[&str]) -> String {
    let mut keys: Vec<_> = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a byte range inside a string value to the file, past its opening
/// quotes. A basic string written with escapes (`\u00fc`, `\"`) is longer
/// in the file than its value, so any range in it is the whole value: a
/// caret under the wrong character would mislead.
pub fn inner_span(cx: &Ctx, span: Range<usize>, offset: usize, len: usize) -> Range<usize> {
    let raw = cx.src.text.get(span.clone()).unwrap_or("");
    if raw.starts_with('"') && raw.contains('\\') {
        return span;
    }
    let triple = raw.starts_with("\"\"\"") || raw.starts_with("'''");
    let quote = if triple {
        // TOML drops a newline right after the opening quotes.
        let rest = &raw[3..];
        3 + if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        }
    } else {
        usize::from(raw.starts_with('"') || raw.starts_with('\''))
    };
    let start = (span.start + quote + offset).min(span.end);
    start..(start + len).min(span.end.max(start))
}

/// A check, sink or instance-group name: a-z, 0-9, `_` and `-`.
/// A location's name (`location`, `locations`): a-z, 0-9 and `-`, as a
/// region is written, at most 63 bytes (a DNS label, a Kubernetes label).
pub fn valid_location(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
