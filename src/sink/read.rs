//! The `[[sinks]]` array of `config.toml`: what every sink has (`name`,
//! `type`, the routing keys), the kind's own keys through the registry
//! ([`super::KINDS`]). Every problem is a diagnostic at its file:line:col.

use std::collections::HashMap;
use std::ops::Range;

use super::keys::error_with_help;
use super::{KINDS, Registered, Route, SinkKind, SinkSpec};
use crate::config::diagnostic::did_you_mean;
use crate::config::reader::{Ctx, Table, Value};
use crate::config::{Env, valid_name};

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
fn own_keys(cx: &mut Ctx, t: &Table, kind: &Registered, env: Env) -> Option<SinkKind> {
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
