//! Reading state for one check file, and string values read as templates:
//! what check files, `config.toml` and sink settings share when they read
//! placeholders.

use super::diagnostic::Severity;
use super::reader::{Ctx, Env, Value, inner_span};
use crate::check::{Patterns, Target};
use crate::template::Template;

/// Reading state for one file: the diagnostics plus what templates refer to.
pub struct Reader<'s, 'e> {
    pub cx: Ctx<'s>,
    pub env: Env<'e>,
    /// Regexes already compiled for other checks.
    pub patterns: &'e Patterns,
    /// Captures defined so far by earlier steps (and the current one).
    pub captures: Vec<String>,
    /// What `[[grant]]` gives this file.
    pub access: crate::config::grant::Access<'e>,
    /// A reference was refused by the grants: the file's last good
    /// version must not keep running on what was revoked.
    pub denied: bool,
}

/// Reports, where `s` (the string of `v`) writes it, every placeholder
/// the file's grants refuse; says whether none was.
fn granted(r: &mut Reader, v: &Value, s: &str) -> bool {
    let mut ok = true;
    for (p, offset, len) in crate::template::placeholders(s) {
        if let Err(message) = r.access.placeholder(&p, r.env) {
            let at = inner_span(&r.cx, v.span(), offset, len);
            deny(r, at, message);
            ok = false;
        }
    }
    ok
}

/// A refusal of the grants, at `span`.
pub(super) fn deny(r: &mut Reader, span: std::ops::Range<usize>, message: String) {
    r.cx.error(span, message);
    r.denied = true;
}

/// A string value that may only use `env:` placeholders (a path, a URL),
/// resolved now, once the grants allow its placeholders.
pub(super) fn text(r: &mut Reader, v: &Value) -> Option<String> {
    let s = r.cx.str(v)?;
    if !granted(r, v, s) {
        return None;
    }
    template_text(s, r.env)
        .map_err(|e| r.cx.error(v.span(), e))
        .ok()
}

/// A table of string values, kept in file order.
pub(super) fn pairs(
    r: &mut Reader,
    v: &Value,
    what: &'static str,
) -> Option<Vec<(String, Template)>> {
    let t = r.cx.table(v, what)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (key, _, value) in t.entries() {
        match template(r, value) {
            Some(tpl) => out.push((key.to_owned(), tpl)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A string value parsed as a template; problems point inside the string.
pub fn template(r: &mut Reader, v: &Value) -> Option<Template> {
    let s = r.cx.str(v)?;
    if !granted(r, v, s) {
        return None;
    }
    let env = r.env;
    match Template::parse(s, env) {
        Ok(t) => {
            let missing: Vec<_> = t
                .captures()
                .filter(|c| !r.captures.iter().any(|k| k == c))
                .map(str::to_owned)
                .collect();
            for name in missing {
                let at = inner_span(
                    &r.cx,
                    v.span(),
                    s.find(&format!("${{capture:{name}}}")).unwrap_or(0),
                    name.len() + 11,
                );
                r.cx.error(
                    at,
                    format!("capture `{name}` is not defined by an earlier step"),
                );
            }
            let unset: Vec<_> = crate::secret::unset(&t, r.env)
                .into_iter()
                .map(str::to_owned)
                .collect();
            for name in unset {
                let at = inner_span(
                    &r.cx,
                    v.span(),
                    s.find(&format!("${{secret:{name}}}")).unwrap_or(0),
                    name.len() + 10,
                );
                let mut d = r.cx.src.diagnostic(
                    Severity::Warning,
                    at,
                    format!("secret `{name}` is not set in the environment; runs of this check fail until it is"),
                );
                d.unset_secret = Some(name);
                r.cx.push(d);
            }
            Some(t)
        }
        Err(e) => {
            let at = inner_span(&r.cx, v.span(), e.offset, e.len);
            r.cx.error(at, e.message);
            None
        }
    }
}

/// A string that may only use `env:` placeholders, resolved now.
pub fn template_text(s: &str, env: Env) -> Result<String, String> {
    let t = Template::parse(s, env).map_err(|e| e.message)?;
    t.as_literal()
        .map(str::to_owned)
        .ok_or_else(|| "only `${env:…}` placeholders are allowed here".into())
}

/// A step's `url`: a template, or a URL parsed now; a literal URL's host
/// must be one the file's grants allow.
pub fn url(r: &mut Reader, v: &Value) -> Option<Target> {
    let t = template(r, v)?;
    // Only a literal URL names its host at load; a templated one is the
    // grant's `secrets` and `env` to answer for.
    if let Some(host) = t
        .as_literal()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host().map(|h| h.to_owned()))
        && let Err(message) = r.access.host(&host_ref(&host))
    {
        deny(r, v.span(), message);
        return None;
    }
    Target::new(t).map_err(|e| r.cx.error(v.span(), e)).ok()
}

fn host_ref(h: &url::Host<String>) -> url::Host<&str> {
    match h {
        url::Host::Domain(d) => url::Host::Domain(d),
        url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
        url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
    }
}
