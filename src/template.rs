//! The one interpolation grammar of check files.
//!
//! `${env:NAME}` and `${env:NAME:-default}` are plain values resolved once, at
//! load; `${secret:NAME}` (environment), `${file:PATH}` (a secret read from a
//! file) and `${capture:NAME}` (a value captured by an earlier step) are
//! resolved when a run needs them. `$${` writes a literal `${`.
//!
//! Parsing works on the already-parsed TOML string, never on the raw file, so
//! positions stay exact and nothing can inject TOML.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// A parsed string with placeholders that are resolved at run time.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    /// Exactly sized: every step of every loaded check holds a few.
    parts: Box<[Part]>,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Secret(String),
    File(PathBuf),
    Capture(String),
}

/// A placeholder as written, before `env:` values are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder<'a> {
    Env {
        name: &'a str,
        default: Option<&'a str>,
    },
    Secret(&'a str),
    File(&'a str),
    Capture(&'a str),
}

/// A syntax or resolution error at a byte range of the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
}

/// What a run supplies to fill in run-time placeholders.
pub trait Resolve {
    fn secret(&self, name: &str) -> Result<String, String>;
    fn file(&self, path: &std::path::Path) -> Result<String, String>;
    fn capture(&self, name: &str) -> Option<String>;

    /// `text` (a piece of a response about to be quoted in a message) with
    /// the run's secret values hidden. Redacting before quoting means no
    /// escaping or cutting of the quote can hide a secret from redaction.
    fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        Cow::Borrowed(text)
    }
}

/// A placeholder that could not be filled at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("secret `{name}`: {why}")]
    Secret { name: String, why: String },
    #[error("secret file `{path}`: {why}")]
    File { path: String, why: String },
    #[error("capture `{0}` has no value")]
    Capture(String),
}

impl Template {
    /// Parses `text`, resolving `env:` placeholders through `env`.
    pub fn parse(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        for piece in scan(text) {
            match piece? {
                Piece::Lit(s) => lit.push_str(s),
                Piece::Placeholder(p, offset, len) => {
                    let part = match p {
                        Placeholder::Env { name, default } => {
                            match (env(name), default) {
                                (Some(v), _) => lit.push_str(&v),
                                (None, Some(d)) => lit.push_str(d),
                                (None, None) => {
                                    return Err(TemplateError {
                                        offset,
                                        len,
                                        message: format!(
                                            "environment variable `{name}` is not set and has no default (write `${{env:{name}:-default}}`)"
                                        ),
                                    });
                                }
                            }
                            continue;
                        }
                        Placeholder::Secret(n) => Part::Secret(n.to_owned()),
                        Placeholder::File(p) => Part::File(PathBuf::from(p)),
                        Placeholder::Capture(n) => Part::Capture(n.to_owned()),
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts: parts.into_boxed_slice(),
        })
    }

    /// A template without placeholders.
    pub fn literal(text: impl Into<String>) -> Template {
        Template {
            parts: Box::new([Part::Lit(text.into())]),
        }
    }

    /// The text, if the template has no run-time placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match &*self.parts {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Names of the captures this template refers to.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Names of the environment secrets this template refers to.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Fills in run-time placeholders.
    pub fn render(&self, with: &dyn Resolve) -> Result<Cow<'_, str>, RenderError> {
        if let Some(lit) = self.as_literal() {
            return Ok(Cow::Borrowed(lit));
        }
        let mut out = String::new();
        for part in &*self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Secret(name) => {
                    out.push_str(&with.secret(name).map_err(|why| RenderError::Secret {
                        name: name.clone(),
                        why,
                    })?)
                }
                Part::File(path) => {
                    let value = with.file(path).map_err(|why| RenderError::File {
                        path: path.display().to_string(),
                        why,
                    })?;
                    out.push_str(value.trim_end_matches(['\n', '\r']));
                }
                Part::Capture(name) => out.push_str(
                    &with
                        .capture(name)
                        .ok_or_else(|| RenderError::Capture(name.clone()))?,
                ),
            }
        }
        Ok(Cow::Owned(out))
    }
}

/// Shows placeholders as written, never their values: secrets must not leak
/// through `Debug`.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &*self.parts {
            match part {
                Part::Lit(s) => f.write_str(&s.replace("${", "$${"))?,
                Part::Secret(n) => write!(f, "${{secret:{n}}}")?,
                Part::File(p) => write!(f, "${{file:{}}}", p.display())?,
                Part::Capture(n) => write!(f, "${{capture:{n}}}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.to_string())
    }
}

/// Every well-formed placeholder of `text` as written, with its byte offset
/// and length; syntax errors are [`Template::parse`]'s to report.
pub fn placeholders(text: &str) -> impl Iterator<Item = (Placeholder<'_>, usize, usize)> {
    scan(text).filter_map(|piece| match piece {
        Ok(Piece::Placeholder(p, offset, len)) => Some((p, offset, len)),
        _ => None,
    })
}

enum Piece<'a> {
    Lit(&'a str),
    /// The placeholder, its byte offset and length in the string.
    Placeholder(Placeholder<'a>, usize, usize),
}

/// Splits `text` into literal pieces and placeholders.
fn scan(text: &str) -> impl Iterator<Item = Result<Piece<'_>, TemplateError>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = text.get(pos..).filter(|r| !r.is_empty())?;
        if rest.starts_with("$${") {
            pos += 3;
            return Some(Ok(Piece::Lit("${")));
        }
        if rest.starts_with("${") {
            let start = pos;
            let Some(close) = rest.find('}') else {
                pos = text.len();
                return Some(Err(TemplateError {
                    offset: start,
                    len: rest.len(),
                    message: "unterminated placeholder: `${` without a closing `}`".into(),
                }));
            };
            pos += close + 1;
            let len = close + 1;
            return Some(
                placeholder(&rest[2..close], start, len).map(|p| Piece::Placeholder(p, start, len)),
            );
        }
        // A literal runs up to the next `$` (a lone `$` is literal too),
        // searched for after the first character, which may be `°` or `ü`.
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let end = rest[first..].find('$').map_or(rest.len(), |i| i + first);
        pos += end;
        Some(Ok(Piece::Lit(&rest[..end])))
    })
}

fn placeholder(inner: &str, offset: usize, len: usize) -> Result<Placeholder<'_>, TemplateError> {
    let err = |message: String| TemplateError {
        offset,
        len,
        message,
    };
    let Some((kind, arg)) = inner.split_once(':') else {
        return Err(err(format!(
            "placeholder `${{{inner}}}` needs a kind: env:, secret:, file: or capture:"
        )));
    };
    if arg.is_empty() {
        return Err(err(format!("placeholder `${{{kind}:}}` names nothing")));
    }
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    match kind {
        "env" => {
            let (name, default) = match arg.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (arg, None),
            };
            if !name_ok(name) {
                return Err(err(format!("`{name}` is not a valid variable name")));
            }
            Ok(Placeholder::Env { name, default })
        }
        "secret" if name_ok(arg) => Ok(Placeholder::Secret(arg)),
        "capture" if name_ok(arg) => Ok(Placeholder::Capture(arg)),
        "secret" | "capture" => Err(err(format!("`{arg}` is not a valid {kind} name"))),
        "file" => Ok(Placeholder::File(arg)),
        _ => Err(err(format!(
            "unknown placeholder kind `{kind}`; expected env:, secret:, file: or capture:"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "example.org".to_owned())
    }

    struct Fixed;
    impl Resolve for Fixed {
        fn secret(&self, name: &str) -> Result<String, String> {
            Err(format!("{name} is not set"))
        }
        fn file(&self, _: &std::path::Path) -> Result<String, String> {
            Ok("s3cret\n".into())
        }
        fn capture(&self, name: &str) -> Option<String> {
            (name == "csrf").then(|| "tok".into())
        }
    }

    #[test]
    fn env_is_resolved_at_parse_time() {
        let t = Template::parse("https://${env:HOST}/x?y=${env:PORT:-80}", env).unwrap();
        assert_eq!(t.as_literal(), Some("https://example.org/x?y=80"));
    }

    #[test]
    fn unset_env_without_default_is_an_error_at_its_position() {
        let e = Template::parse("a ${env:NOPE} b", env).unwrap_err();
        assert_eq!((e.offset, e.len), (2, 11));
        assert!(e.message.contains("`NOPE` is not set"));
    }

    #[test]
    fn runtime_placeholders_render_and_display_without_values() {
        let t = Template::parse("t=${capture:csrf}&p=${file:/run/secrets/p}", env).unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "t=tok&p=s3cret");
        assert_eq!(t.to_string(), "t=${capture:csrf}&p=${file:/run/secrets/p}");
        assert_eq!(t.captures().collect::<Vec<_>>(), ["csrf"]);
        let s = Template::parse("${secret:PW}", env).unwrap();
        assert_eq!(
            s.render(&Fixed).unwrap_err().to_string(),
            "secret `PW`: PW is not set"
        );
    }

    #[test]
    fn escapes_and_plain_dollars_stay_literal() {
        let t = Template::parse("cost $5, $${env:X} and $", env).unwrap();
        assert_eq!(t.as_literal(), Some("cost $5, ${env:X} and $"));
    }

    #[test]
    fn literal_pieces_may_start_with_any_character() {
        let t = Template::parse("${env:HOST}°C für €${env:HOST}ü$", env).unwrap();
        assert_eq!(t.as_literal(), Some("example.org°C für €example.orgü$"));
        let e = Template::parse("München ${env:NOPE}", env).unwrap_err();
        assert_eq!((e.offset, e.len), (9, 11));
    }

    #[test]
    fn syntax_errors_name_the_problem() {
        for (text, msg) in [
            ("${env:A", "unterminated"),
            ("${foo:A}", "unknown placeholder kind `foo`"),
            ("${A}", "needs a kind"),
            ("${secret:a b}", "not a valid secret name"),
        ] {
            let e = Template::parse(text, env).unwrap_err();
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }
}
