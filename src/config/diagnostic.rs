//! Load errors a user can act on: file, line and column, the source line
//! with carets under the culprit, and a hint where one helps.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub source_line: String,
    /// How many characters the carets cover.
    pub width: usize,
    pub help: Option<String>,
    /// The secret this warning says is unset: such warnings are folded into
    /// one a secret by [`fold_unset_secrets`].
    pub unset_secret: Option<String>,
}

/// A file's text with its line starts, to turn byte offsets into positions.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: impl AsRef<Path>, text: String) -> Source {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path: path.as_ref().to_owned(),
            text,
            line_starts,
        }
    }

    /// A diagnostic pointing at the byte range `span` of this file.
    pub fn diagnostic(
        &self,
        severity: Severity,
        span: Range<usize>,
        message: String,
    ) -> Diagnostic {
        let start = floor_boundary(&self.text, span.start.min(self.text.len()));
        let line_idx = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_idx];
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let source_line = self.text[line_start..line_end].trim_end_matches('\r');
        let col = self.text[line_start..start].chars().count() + 1;
        let end = floor_boundary(&self.text, span.end.clamp(start, line_end));
        Diagnostic {
            severity,
            file: self.path.clone(),
            line: line_idx + 1,
            col,
            message,
            source_line: source_line.to_owned(),
            width: self.text[start..end].chars().count().max(1),
            help: None,
            unset_secret: None,
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Diagnostic {
    /// A problem with the file as a whole (it cannot be read, say).
    pub fn file_error(path: &Path, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: path.to_owned(),
            line: 0,
            col: 0,
            message,
            source_line: String::new(),
            width: 0,
            help: None,
            unset_secret: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders as
/// ```text
/// error: unknown key `staus`
///   --> checks/weather.toml:7:1
///    |
///  7 | staus = 200
///    | ^^^^^
///    = help: did you mean `status`?
/// ```
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{level}: {}", self.message)?;
        if self.line == 0 {
            return writeln!(f, "  --> {}", self.file.display());
        }
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.col
        )?;
        writeln!(f, "{pad} |")?;
        let (shown, at, width) = window(&self.source_line, self.col - 1, self.width);
        writeln!(f, "{} | {shown}", self.line)?;
        let indent: String = shown
            .chars()
            .take(at)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{pad} | {indent}{}", "^".repeat(width))?;
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Source lines longer than this many characters are shown in part.
const SHOWN: usize = 120;

/// The part of `line` to show around the 0-based column `col`, with `…`
/// where it is cut, the column in that part, and how many of `width`
/// carets fit under it. A generated or hostile file may have a line of a
/// megabyte.
fn window(line: &str, col: usize, width: usize) -> (Cow<'_, str>, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SHOWN {
        return (Cow::Borrowed(line), col, width);
    }
    let col = col.min(chars.len());
    let start = col.saturating_sub(SHOWN / 3).min(chars.len() - SHOWN);
    let end = start + SHOWN;
    let mut shown = String::new();
    let mut at = col - start;
    if start > 0 {
        shown.push('…');
        at += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (
        Cow::Owned(shown),
        at,
        width.min(end.saturating_sub(col)).max(1),
    )
}

/// One warning a secret instead of one a use: it stays where the first use
/// is, names every check that uses the secret (`check_of` maps a file to its
/// check) and lists the files. Warnings of files `keep` rejects go: a command
/// that runs some checks only warns about theirs. Other diagnostics pass as
/// they are, in order.
pub fn fold_unset_secrets<'a>(
    diags: Vec<Diagnostic>,
    check_of: impl Fn(&Path) -> Option<&'a str>,
    keep: impl Fn(&Path) -> bool,
) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diags.len());
    // Per secret: its diagnostic in `out`, the checks (or files) and the uses.
    let mut folded: BTreeMap<String, (usize, Vec<String>, Vec<PathBuf>, usize)> = BTreeMap::new();
    for d in diags {
        let Some(secret) = d.unset_secret.clone() else {
            out.push(d);
            continue;
        };
        if !keep(&d.file) {
            continue;
        }
        let user = check_of(&d.file).map_or_else(
            || format!("the check in {}", d.file.display()),
            |name| format!("`{name}`"),
        );
        let file = d.file.clone();
        let entry = folded.entry(secret).or_insert_with(|| {
            out.push(d);
            (out.len() - 1, Vec::new(), Vec::new(), 0)
        });
        if !entry.1.contains(&user) {
            entry.1.push(user);
        }
        if !entry.2.contains(&file) {
            entry.2.push(file);
        }
        entry.3 += 1;
    }
    for (secret, (at, users, files, uses)) in folded {
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let d = &mut out[at];
        d.message = format!(
            "secret `{secret}` is not set in the environment; runs of {} fail until it is",
            users.join(", ")
        );
        d.help = (uses > 1).then(|| format!("used {uses} times, in {}", files.join(", ")));
    }
    out
}

/// The closest known word to a misspelt one, if it is close enough.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|&(d, k)| d <= (k.len() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_and_carets() {
        let src = Source::new("checks/w.toml", "name = \"w\"\nstaus = 200\n".into());
        let d = src
            .diagnostic(Severity::Error, 11..16, "unknown key `staus`".into())
            .with_help("did you mean `status`?");
        assert_eq!((d.line, d.col), (2, 1));
        assert_eq!(
            d.to_string(),
            "error: unknown key `staus`\n --> checks/w.toml:2:1\n  |\n2 | staus = 200\n  | ^^^^^\n  = help: did you mean `status`?\n"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = Source::new("a.toml", "x = \"°C\" # é\ny".into());
        let d = src.diagnostic(Severity::Error, 13..14, "m".into());
        assert_eq!((d.line, d.col), (1, 12));
    }

    #[test]
    fn a_long_line_is_shown_around_the_culprit() {
        let text = format!("path = \"{}ü{}\"", "[".repeat(1000), "(".repeat(1000));
        let src = Source::new("c.toml", text);
        let at = 8 + 1000;
        let d = src.diagnostic(Severity::Error, at..at + 2000, "m".into());
        let shown = d.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        let source = format!("1 | …{}ü{}…", "[".repeat(40), "(".repeat(79));
        let carets = format!("  | {}{}", " ".repeat(41), "^".repeat(80));
        assert_eq!(lines[3], source);
        assert_eq!(lines[4], carets);
    }

    #[test]
    fn unset_secrets_fold_into_one_warning_for_the_kept_files() {
        let unset = |file: &str, secret: &str| {
            let mut d =
                Source::new(file, "x = 1\n".into()).diagnostic(Severity::Warning, 0..1, "m".into());
            d.unset_secret = Some(secret.into());
            d
        };
        let other = Diagnostic::file_error(Path::new("c.toml"), "cannot read".into());
        let diags = vec![
            unset("a.toml", "S"),
            unset("a.toml", "S"),
            other.clone(),
            unset("b.toml", "S"),
            unset("b.toml", "T"),
        ];
        let check_of = |p: &Path| Some(if p == Path::new("a.toml") { "a" } else { "b" });
        let all = fold_unset_secrets(diags.clone(), check_of, |_| true);
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[0].message,
            "secret `S` is not set in the environment; runs of `a`, `b` fail until it is"
        );
        assert_eq!(
            all[0].help.as_deref(),
            Some("used 3 times, in a.toml, b.toml")
        );
        assert_eq!(all[1], other);
        assert_eq!(all[2].help, None);
        let only_a = fold_unset_secrets(diags, check_of, |p| p == Path::new("a.toml"));
        assert_eq!(only_a.len(), 2);
        assert!(only_a[0].message.contains("runs of `a` fail"));
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(did_you_mean("staus", ["status", "step"]), Some("status"));
        assert_eq!(did_you_mean("frobnicate", ["status", "step"]), None);
    }
}
