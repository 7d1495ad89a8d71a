//! A `kind = "browser"` step's own keys: the page, what is done on it,
//! when a picture is kept, and which of the page's own errors fail it.
//! Its `[step.expect]` and `capture` are read as an HTTP step's are.

use super::expect::css;
use super::reader::{Table, Value};
use super::values::{Reader, template, url};
use crate::check::{Action, BrowserStep, Connection, NAMED_KEYS, Screenshot, WaitUntil};

/// Reads the keys only a browser step has.
pub fn step(r: &mut Reader, t: &Table) -> Option<BrowserStep> {
    let url = match t.get("url") {
        Some(v) => url(r, v),
        None => {
            r.cx.error(t.span.clone(), "a step needs a `url`");
            None
        }
    };
    let wait_until = match t.get("wait_until") {
        None => Some(WaitUntil::Load),
        Some(v) => one_of(r, v, &["load", "domcontentloaded"]).map(|i| match i {
            0 => WaitUntil::Load,
            _ => WaitUntil::DomContentLoaded,
        }),
    };
    let screenshot = match t.get("screenshot") {
        None => Some(Screenshot::OnFailure),
        Some(v) => one_of(r, v, &["on_failure", "always", "never"]).map(|i| match i {
            0 => Screenshot::OnFailure,
            1 => Screenshot::Always,
            _ => Screenshot::Never,
        }),
    };
    let actions = match t.get("actions") {
        None => Some(Vec::new()),
        Some(v) => actions(r, v),
    };
    let console = t.get("console_errors").map(|v| fails(r, v));
    let requests = t.get("failed_requests").map(|v| fails(r, v));
    let ignore = t.get("ignore_requests").map(|v| {
        r.cx.strings(v)
            .into_iter()
            .map(|(s, span)| match r.patterns.compile(s) {
                Ok(p) => Some(p),
                Err(e) => {
                    r.cx.error(span, format!("invalid regular expression: {e}"));
                    None
                }
            })
            .collect::<Option<Vec<_>>>()
    });
    let failed_requests = match (requests.unwrap_or(Some(false)), ignore) {
        (Some(true), ignore) => ignore.unwrap_or(Some(Vec::new())).map(Some),
        (Some(false), Some(_)) => {
            let span = t.key_span("ignore_requests").unwrap_or(0..0);
            r.cx.error(
                span,
                "`ignore_requests` applies with `failed_requests = \"fail\"`",
            );
            None
        }
        (Some(false), None) => Some(None),
        (None, _) => None,
    };
    Some(BrowserStep {
        url: url?,
        wait_until: wait_until?,
        actions: actions?,
        screenshot: screenshot?,
        fail_on_console_errors: console.unwrap_or(Some(false))?,
        failed_requests: failed_requests?,
    })
}

/// Chromium takes its certificates, name resolution and TLS options for
/// the whole process: a check's own would apply to every other check's
/// pages. A check with a browser step may not set them.
pub fn connection_fits(r: &mut Reader, t: &Table, connection: &Connection) {
    let tls = &connection.tls;
    let process_wide = [
        (!connection.resolve.is_empty(), "resolve"),
        (tls.ca.is_some(), "tls"),
        (tls.client_cert.is_some(), "tls"),
        (tls.insecure, "tls"),
        (!tls.pin_sha256.is_empty(), "tls"),
    ];
    for (set, key) in process_wide {
        if set {
            let span = t.key_span(key).unwrap_or(0..0);
            r.cx.error(
                span,
                format!(
                    "`{key}` cannot apply to a browser step: Chromium sets it for the whole process, every check's pages; move the browser step to a check of its own"
                ),
            );
            return;
        }
    }
}

/// `"fail"` or `"ignore"`, as a bool.
fn fails(r: &mut Reader, v: &Value) -> Option<bool> {
    one_of(r, v, &["ignore", "fail"]).map(|i| i == 1)
}

fn one_of(r: &mut Reader, v: &Value, names: &[&str]) -> Option<usize> {
    let s = r.cx.str(v)?;
    match names.iter().position(|n| *n == s) {
        Some(i) => Some(i),
        None => {
            let expected: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            r.cx.error(
                v.span(),
                format!("expected one of {}, found {s:?}", expected.join(", ")),
            );
            None
        }
    }
}

fn actions(r: &mut Reader, v: &Value) -> Option<Vec<Action>> {
    let items = r.cx.array(v)?;
    let read: Vec<Option<Action>> = items.iter().map(|item| action(r, item)).collect();
    read.into_iter().collect()
}

/// One action: an inline table with one verb (`fill` also has `value`).
fn action(r: &mut Reader, v: &Value) -> Option<Action> {
    let t = r.cx.table(v, "an action")?;
    const VERBS: [&str; 5] = ["click", "fill", "press", "wait_for", "wait_for_text"];
    let verbs: Vec<_> = t
        .entries()
        .filter(|(k, _, _)| VERBS.contains(k))
        .map(|(k, _, v)| (k, v))
        .collect();
    let [(verb, arg)] = verbs[..] else {
        r.cx.error(
            v.span(),
            "an action has exactly one of `click`, `fill`, `press`, `wait_for`, `wait_for_text`",
        );
        return None;
    };
    let action = match verb {
        "click" => selector(r, arg).map(Action::Click),
        "wait_for" => selector(r, arg).map(Action::WaitFor),
        "wait_for_text" => template(r, arg).map(Action::WaitForText),
        "press" => r.cx.str(arg).and_then(|key| {
            let known = key.chars().count() == 1 || NAMED_KEYS.iter().any(|(k, _)| *k == key);
            if known {
                return Some(Action::Press(key.to_owned()));
            }
            let names: Vec<&str> = NAMED_KEYS.iter().map(|(k, _)| *k).collect();
            r.cx.error(
                arg.span(),
                format!(
                    "`press` names one key: a character, or one of {}",
                    names.join(", ")
                ),
            );
            None
        }),
        _ => {
            let selector = selector(r, arg);
            let value = match t.get("value") {
                Some(v) => template(r, v),
                None => {
                    r.cx.error(v.span(), "`fill` needs a `value`");
                    None
                }
            };
            selector
                .zip(value)
                .map(|(selector, value)| Action::Fill { selector, value })
        }
    };
    for verb in VERBS {
        t.get(verb);
    }
    if verb == "fill" {
        t.get("value");
    }
    t.finish(&mut r.cx);
    action
}

fn selector(r: &mut Reader, v: &Value) -> Option<crate::check::Css> {
    let s = r.cx.str(v)?;
    css(r, s, v)
}
