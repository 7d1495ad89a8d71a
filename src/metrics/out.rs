//! The text format's primitives: the output handed on a chunk at a time, label
//! values escaped and floats spelled as Prometheus parses them. A leaf: every
//! family's writer uses it, and it knows none of them.

use std::fmt::Write as _;

/// The text being rendered, handed on a chunk at a time so that a scrape of
/// thousands of checks never holds the whole page (tens of MB) in memory.
pub(super) struct Out<'a> {
    buf: String,
    chunk: usize,
    emit: &'a mut dyn FnMut(String) -> bool,
    /// The receiver went away (the scraper hung up): stop rendering.
    pub(super) closed: bool,
}

impl<'a> Out<'a> {
    pub(super) fn new(chunk: usize, emit: &'a mut dyn FnMut(String) -> bool) -> Self {
        Out {
            buf: String::with_capacity(chunk + chunk / 4),
            chunk,
            emit,
            closed: false,
        }
    }

    /// Hands the text so far on once it fills a chunk; called between
    /// samples, so a chunk always ends with a whole line.
    pub(super) fn boundary(&mut self) {
        if self.buf.len() >= self.chunk && !self.closed {
            let full = std::mem::replace(
                &mut self.buf,
                String::with_capacity(self.chunk + self.chunk / 4),
            );
            self.closed = !(self.emit)(full);
        }
    }

    /// Hands on what is left.
    pub(super) fn finish(mut self) {
        if !self.buf.is_empty() && !self.closed {
            (self.emit)(std::mem::take(&mut self.buf));
        }
    }
}

impl std::ops::Deref for Out<'_> {
    type Target = String;
    fn deref(&self) -> &String {
        &self.buf
    }
}

impl std::ops::DerefMut for Out<'_> {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.buf
    }
}

/// Writes `name="value"`, the value escaped.
pub(super) fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Escapes a label value as the text format wants: `\`, `"` and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The `le` label value of each bucket bound.
pub(super) fn le_values(buckets: &[f64]) -> Vec<String> {
    buckets
        .iter()
        .map(|b| {
            let mut s = String::new();
            push_float(&mut s, *b);
            s
        })
        .collect()
}

pub(super) fn write_float(out: &mut String, v: f64) {
    push_float(out, v);
    out.push('\n');
}

/// A float as Prometheus parses it: Rust's shortest round-trip form, and Go's
/// spelling of the special values.
pub(super) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
