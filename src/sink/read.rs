//! The `[[sinks]]` array of `config.toml`: what every sink has (`name`,
//! `type`, the routing keys), the kind's own keys through the registry
//! ([`super::KINDS`]), and the readers of keys several kinds share. Every
//! problem is a diagnostic at its file:line:col.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use super::{KINDS, Registered, Route, SinkSpec};
use crate::config::Severity;
use crate::config::check_file::{Env, inner_span, template_text, valid_name};
use crate::config::diagnostic::did_you_mean;
use crate::config::reader::{Ctx, Table, Value};
use crate::template::Template;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers scarecrow sets itself; a sink's `headers` may not replace them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Reads the `sinks` array of `config.toml` (`[[sinks]]` tables).
pub fn read_sinks(cx: &mut Ctx, v: &Value, env: Env) -> Vec<SinkSpec> {
    if v.get_ref().as_table().is_some() {
        error_with_help(
            cx,
            v.span(),
            "`sinks` is a list of tables",
            "write `[[sinks]]`, with two brackets, above each sink",
        );
        return Vec::new();
    }
    let Some(items) = cx.array(v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    for item in items {
        let Some(t) = cx.table(item, "[[sinks]]") else {
            continue;
        };
        let (name, spec) = sink(cx, &t, env);
        t.finish(cx);
        // Checked even when the sink has other errors, so all are reported.
        if let Some((name, span)) = name {
            if seen.contains_key(&name) {
                cx.error(span, format!("sink `{name}` is defined twice"));
                continue;
            }
            seen.insert(name, span);
        }
        out.extend(spec);
    }
    out
}

/// One `[[sinks]]` table: its name (and where it is written) when valid,
/// and the sink when all of it is.
fn sink(cx: &mut Ctx, t: &Table, env: Env) -> (Option<(String, Range<usize>)>, Option<SinkSpec>) {
    let name = match t.get("name") {
        Some(v) => cx.str(v).and_then(|s| match valid_name(s) {
            true => Some((s.to_owned(), v.span())),
            false => {
                cx.error(
                    v.span(),
                    format!("sink name {s:?} may only use a-z, 0-9, `_` and `-`"),
                );
                None
            }
        }),
        None => {
            cx.error(t.span.clone(), "a sink needs a `name`");
            None
        }
    };
    let kinds_help = || {
        let names: Vec<String> = KINDS.iter().map(|k| format!("\"{}\"", k.name)).collect();
        format!("a sink's type is {}", and_list(&names))
    };
    let kind = match t.get("type") {
        Some(v) => match cx.str(v) {
            Some(k) => match KINDS.iter().find(|r| r.name == k) {
                Some(registered) => Some(registered),
                None => {
                    let help = match did_you_mean(k, KINDS.iter().map(|r| r.name)) {
                        Some(s) => format!("did you mean \"{s}\"?"),
                        None => kinds_help(),
                    };
                    error_with_help(cx, v.span(), format!("unknown sink type {k:?}"), help);
                    None
                }
            },
            None => None,
        },
        None => {
            error_with_help(cx, t.span.clone(), "a sink needs a `type`", kinds_help());
            None
        }
    };
    let route = route(cx, t);
    let kind = match kind {
        Some(k) => own_keys(cx, t, k, env),
        None => {
            // Only marked read: which of them apply is unknown.
            for key in KINDS.iter().flat_map(|k| k.keys) {
                t.get(key);
            }
            None
        }
    };
    let spec = match (&name, kind) {
        (Some((name, _)), Some(kind)) => Some(SinkSpec {
            name: name.clone(),
            kind,
            route,
        }),
        _ => None,
    };
    (name, spec)
}

/// The kind-specific part of one `[[sinks]]` table, read by its kind; keys
/// of other kinds are reported as not applying.
fn own_keys(cx: &mut Ctx, t: &Table, kind: &Registered, env: Env) -> Option<super::SinkKind> {
    let mut others: Vec<&str> = Vec::new();
    for key in KINDS.iter().flat_map(|k| k.keys) {
        if !kind.keys.contains(key) && !others.contains(key) {
            others.push(key);
        }
    }
    for key in others {
        if t.get(key).is_none() {
            continue;
        }
        let kinds: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.keys.contains(&key))
            .map(|k| k.name)
            .collect();
        if let Some(span) = t.key_span(key) {
            cx.error(
                span,
                format!("`{key}` applies only to {} sinks", and_list(&kinds)),
            );
        }
    }
    (kind.read)(cx, t, env)
}

fn route(cx: &mut Ctx, t: &Table) -> Route {
    let mut route = Route {
        critical_only: true,
        ..Route::default()
    };
    if let Some(v) = t.get("critical_only") {
        route.critical_only = cx.bool(v).unwrap_or(true);
    }
    if let Some(v) = t.get("owners") {
        route.owners = cx
            .strings(v)
            .into_iter()
            .map(|(s, _)| s.to_owned())
            .collect();
    }
    if let Some(v) = t.get("labels")
        && let Some(labels) = cx.table(v, "sink labels")
    {
        for (key, span, value) in labels.entries() {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                cx.error(
                    span,
                    format!("label name {key:?} may only use letters, digits and `_`"),
                );
            } else if let Some(s) = cx.str(value) {
                route.labels.insert(key.to_owned(), s.to_owned());
            }
        }
    }
    route
}

/// An error at `span` with a hint of what to write instead.
pub(super) fn error_with_help(
    cx: &mut Ctx,
    span: Range<usize>,
    message: impl Into<String>,
    help: impl Into<String>,
) {
    let d = cx.src.diagnostic(Severity::Error, span, message.into());
    cx.push(d.with_help(help));
}

/// An http(s) URL, checked now unless it holds a secret (a token in the
/// path, say): then when the sink is built.
pub(super) fn url(cx: &mut Ctx, v: &Value, env: Env) -> Option<Template> {
    let s = cx.str(v)?;
    let t = sink_template(cx, v, s, env)?;
    let Some(text) = t.as_literal() else {
        return Some(t);
    };
    match url::Url::parse(text) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            cx.error(
                v.span(),
                format!("a webhook URL is http or https, found {:?}", u.scheme()),
            );
            None
        }
        Ok(u) if u.password().is_some() => {
            cx.error(
                v.span(),
                "secrets come from the environment or files: write the password as `${secret:NAME}`",
            );
            None
        }
        Ok(_) => Some(t),
        Err(e) => {
            cx.error(
                v.span(),
                format!(
                    "invalid URL {text:?}: {e} (write e.g. \"https://hooks.example.org/scarecrow\")"
                ),
            );
            None
        }
    }
}

/// A string that must hold a `${secret:…}` or `${file:…}` placeholder: a
/// secret written in the config, or copied into it by `${env:…}`, is an error.
pub(super) fn secret_only(cx: &mut Ctx, s: &str, span: Range<usize>, env: Env) -> Option<Template> {
    // `${env:…}` would put the secret's value into the config itself.
    let used_env = std::cell::Cell::new(false);
    let flag_env = |name: &str| {
        used_env.set(true);
        env(name)
    };
    let parsed = match Template::parse(s, flag_env) {
        Ok(t) => t,
        Err(e) => {
            cx.error(inner_span(cx, span, e.offset, e.len), e.message);
            return None;
        }
    };
    if parsed.as_literal().is_some() {
        error_with_help(
            cx,
            span,
            "secrets come from the environment or files, never from the config",
            match used_env.get() {
                true => {
                    "`${env:…}` is resolved into the config; write `${secret:NAME}`, read when the sink starts"
                }
                false => {
                    "write `${secret:NAME}` (an environment variable) or `${file:/run/secrets/…}`"
                }
            },
        );
        return None;
    }
    if captures_used(cx, &parsed, span.clone()) {
        return None;
    }
    warn_unset(cx, &parsed, span, env);
    Some(parsed)
}

/// A credential key such as `routing_key`: a placeholder only, and
/// required; `missing` and `help` are the error when it is not given.
pub(super) fn credential(
    cx: &mut Ctx,
    t: &Table,
    key: &'static str,
    env: Env,
    missing: &str,
    help: &str,
) -> Option<Template> {
    match t.get(key) {
        Some(v) => cx.str(v).and_then(|s| secret_only(cx, s, v.span(), env)),
        None => {
            error_with_help(cx, t.span.clone(), missing, help);
            None
        }
    }
}

/// Extra headers: names in lower case, none of those scarecrow sets itself.
pub(super) fn headers(cx: &mut Ctx, t: &Table, env: Env) -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    let Some(t) = t.get("headers").and_then(|v| cx.table(v, "sink headers")) else {
        return out;
    };
    for (key, key_span, value) in t.entries() {
        let Ok(name) = http::HeaderName::from_bytes(key.as_bytes()) else {
            cx.error(key_span, format!("{key:?} is not a valid header name"));
            continue;
        };
        let name = name.as_str().to_owned();
        if RESERVED_HEADERS.contains(&name.as_str()) {
            cx.error(key_span, format!("`{name}` is set by scarecrow itself"));
            continue;
        }
        if out.contains_key(&name) {
            cx.error(
                key_span,
                format!("header `{name}` is given twice (names ignore case)"),
            );
            continue;
        }
        let Some(s) = cx.str(value) else {
            continue;
        };
        let Some(template) = sink_template(cx, value, s, env) else {
            continue;
        };
        if let Some(text) = template.as_literal()
            && http::HeaderValue::from_str(text).is_err()
        {
            cx.error(
                value.span(),
                "a header value may not hold control characters",
            );
            continue;
        }
        warn_unset(cx, &template, value.span(), env);
        out.insert(name, template);
    }
    out
}

/// `status_url`: absent is `Ok(None)`, invalid is `Err` (and reported).
pub(super) fn status_url(cx: &mut Ctx, t: &Table, env: Env) -> Result<Option<String>, ()> {
    let Some(v) = t.get("status_url") else {
        return Ok(None);
    };
    let text = plain_text(cx, v, env).ok_or(())?;
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(text)),
        _ => {
            cx.error(
                v.span(),
                format!("status_url {text:?} is not an http(s) URL"),
            );
            Err(())
        }
    }
}

/// A string that may use `${env:…}` only.
pub(super) fn plain_text(cx: &mut Ctx, v: &Value, env: Env) -> Option<String> {
    let s = cx.str(v)?;
    match template_text(s, env) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.error(v.span(), e);
            None
        }
    }
}

/// `timeout`, 10 s unless given (an invalid one is reported).
pub(super) fn timeout(cx: &mut Ctx, t: &Table) -> Duration {
    t.get("timeout")
        .and_then(|v| cx.duration(v))
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// A string with `env:` resolved now and `secret:`/`file:` kept for build.
fn sink_template(cx: &mut Ctx, v: &Value, s: &str, env: Env) -> Option<Template> {
    match Template::parse(s, env) {
        Ok(t) if captures_used(cx, &t, v.span()) => None,
        Ok(t) => Some(t),
        Err(e) => {
            cx.error(inner_span(cx, v.span(), e.offset, e.len), e.message);
            None
        }
    }
}

fn captures_used(cx: &mut Ctx, t: &Template, span: Range<usize>) -> bool {
    let used = t.captures().next().is_some();
    if used {
        cx.error(span, "`${capture:…}` exists only within a check run");
    }
    used
}

/// A secret that is not set yet is worth a warning at load: the sink will
/// not start until it is.
fn warn_unset(cx: &mut Ctx, t: &Template, span: Range<usize>, env: Env) {
    let unset: Vec<String> = t
        .secrets()
        .filter(|n| env(n).is_none())
        .map(str::to_owned)
        .collect();
    for name in unset {
        cx.warning(
            span.clone(),
            format!("secret `{name}` is not set in the environment; this sink will not start until it is"),
        );
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[impl AsRef<str>]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    match &items[..] {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
pub(super) mod tests;
