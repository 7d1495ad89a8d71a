//! Readers of the keys several sink kinds share: URLs, credentials,
//! headers, `status_url`, `timeout`. Each reports its problems at their
//! file:line:col and gives back what is valid.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use crate::config::diagnostic::Severity;

use crate::config::reader::{Ctx, Table, Value, inner_span};
use crate::config::{Env, template_text};
use crate::secret::Refused;
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
    let parsed = match crate::secret::credential(s, env) {
        Ok(t) => t,
        Err(Refused::Syntax(e)) => {
            cx.error(inner_span(cx, span, e.offset, e.len), e.message);
            return None;
        }
        Err(Refused::Literal { via_env }) => {
            error_with_help(
                cx,
                span,
                "secrets come from the environment or files, never from the config",
                match via_env {
                    // `${env:…}` would put the secret's value into the config itself.
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
        Err(Refused::Capture) => {
            cx.error(span, "`${capture:…}` exists only within a check run");
            return None;
        }
    };
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
    for name in crate::secret::unset(t, env) {
        cx.warning(
            span.clone(),
            format!("secret `{name}` is not set in the environment; this sink will not start until it is"),
        );
    }
}
