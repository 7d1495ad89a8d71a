//! Text written into markup or shown to people: escaping for HTML, XML and
//! Slack's mrkdwn, and excerpts of long text. A leaf: it imports nothing of
//! ours, so every layer may use it.

use std::borrow::Cow;
use std::fmt;

/// Text escaped for HTML element content and quoted attribute values:
/// `& < > " '`. Written without allocating, for `format!` and `write!`.
pub struct EscapeHtml<'a>(pub &'a str);

/// Text escaped for XML 1.0 content and attributes: as for HTML, with `'` as
/// `&apos;`, and the control characters XML 1.0 cannot carry at all dropped.
pub struct EscapeXml<'a>(pub &'a str);

/// Text escaped for Slack's mrkdwn: only `& < >`, which Slack asks for;
/// Slack would show any other entity as it is written.
pub struct EscapeSlack<'a>(pub &'a str);

impl fmt::Display for EscapeHtml<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, |c| match c {
            '\'' => Some("&#39;"),
            c => common(c),
        })
    }
}

impl fmt::Display for EscapeXml<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, |c| match c {
            '\'' => Some("&apos;"),
            '\n' | '\t' | '\r' => None,
            c if u32::from(c) < 0x20 => Some(""),
            c => common(c),
        })
    }
}

impl fmt::Display for EscapeSlack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, |c| match c {
            '"' => None,
            c => common(c),
        })
    }
}

/// What every markup here replaces.
fn common(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        _ => None,
    }
}

/// Writes `text`, each character `replace` has a replacement for replaced.
fn write_escaped(
    f: &mut fmt::Formatter<'_>,
    text: &str,
    replace: impl Fn(char) -> Option<&'static str>,
) -> fmt::Result {
    let mut kept = 0;
    for (i, c) in text.char_indices() {
        if let Some(with) = replace(c) {
            f.write_str(&text[kept..i])?;
            f.write_str(with)?;
            kept = i + c.len_utf8();
        }
    }
    f.write_str(&text[kept..])
}

/// At most `max` characters of `text`; when cut, the part kept ends in `…`
/// (white space before it trimmed).
pub fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()).into(),
        None => text.into(),
    }
}

/// At most `max` characters of `text`, cut at the last white space that
/// keeps it within `max` (a single longer word is cut inside), ending in `…`
/// when cut: an excerpt a person reads.
pub fn excerpt_at_word(text: &str, max: usize) -> Cow<'_, str> {
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text.into();
    };
    let head = &text[..cut];
    // A cut right before white space keeps the last word whole.
    let end = match text[cut..].starts_with(char::is_whitespace) {
        true => cut,
        false => head.rfind(char::is_whitespace).unwrap_or(cut),
    };
    let kept = match head[..end].trim_end() {
        "" => head,
        kept => kept,
    };
    format!("{kept}…").into()
}

/// `text` on one line: each run of white space one space, none at either end.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_markup_escapes_what_it_must() {
        let text = "<a href=\"x\">Tom & 'Jerry'</a>\u{1}\n";
        assert_eq!(
            EscapeHtml(text).to_string(),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;\u{1}\n"
        );
        assert_eq!(
            EscapeXml(text).to_string(),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;\n"
        );
        assert_eq!(
            EscapeSlack(text).to_string(),
            "&lt;a href=\"x\"&gt;Tom &amp; 'Jerry'&lt;/a&gt;\u{1}\n"
        );
        assert_eq!(EscapeHtml("grün °C").to_string(), "grün °C");
    }

    #[test]
    fn excerpts_count_characters_and_mark_the_cut() {
        assert_eq!(excerpt("äöü", 2), "äö…");
        assert_eq!(excerpt("äöü", 3), "äöü");
        assert_eq!(excerpt("ab cd", 3), "ab…");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn word_excerpts_cut_between_words_unless_one_word_is_too_long() {
        assert_eq!(
            excerpt_at_word("Bitte Passwort prüfen", 14),
            "Bitte Passwort…"
        );
        assert_eq!(
            excerpt_at_word("Bitte Passwort prüfen", 16),
            "Bitte Passwort…"
        );
        assert_eq!(
            excerpt_at_word("Bitte Passwort prüfen", 21),
            "Bitte Passwort prüfen"
        );
        assert_eq!(excerpt_at_word("Donaudampfschifffahrt", 5), "Donau…");
        assert_eq!(excerpt_at_word("", 0), "");
    }

    #[test]
    fn one_line_folds_white_space() {
        assert_eq!(one_line("  a\n\tb  c \r\n"), "a b c");
        assert_eq!(one_line(" \n "), "");
    }
}
