//! `[[maintenance]]` windows, in `config.toml` (global, per check or per
//! label) or in a check file (that check only).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use toml::de::DeValue;

use super::reader::{Ctx, Table, Value};
use crate::check::cron::Cron;
use crate::check::maintenance::{Scope, When, Window};

/// Reads an array of `[[maintenance]]` tables. `own_check` is set for a
/// check file: its windows cover that check, and naming others is an error.
pub fn parse(cx: &mut Ctx, v: &Value, own_check: bool) -> Vec<Window> {
    let Some(items) = cx.array(v) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| window(cx, item, own_check))
        .collect()
}

fn window(cx: &mut Ctx, v: &Value, own_check: bool) -> Option<Window> {
    let t = cx.table(v, "[[maintenance]]")?;
    let name = t
        .get("name")
        .and_then(|v| cx.str(v))
        .unwrap_or("maintenance")
        .to_owned();
    let zone = match t.get("timezone") {
        None => Some(chrono_tz::Tz::UTC),
        Some(v) => cx.str(v).and_then(|s| match s.parse::<chrono_tz::Tz>() {
            Ok(z) => Some(z),
            Err(_) => {
                cx.error(
                    v.span(),
                    format!("unknown time zone {s:?} (use an IANA name such as \"Europe/Berlin\")"),
                );
                None
            }
        }),
    };
    let when = match (
        t.get("cron"),
        t.get("duration"),
        t.get("start"),
        t.get("end"),
    ) {
        (Some(c), Some(d), None, None) => {
            let duration = cx.duration(d);
            let expr = cx.str(c);
            let cron = match (expr, zone) {
                (Some(expr), Some(zone)) => match Cron::parse(expr, zone) {
                    Ok(cron) => Some(cron),
                    Err(e) => {
                        cx.error(c.span(), format!("invalid cron expression: {e}"));
                        None
                    }
                },
                _ => None,
            };
            cron.zip(duration)
                .map(|(cron, duration)| When::Recurring { cron, duration })
        }
        (None, None, Some(s), Some(e)) => {
            let start = zone.and_then(|z| instant(cx, s, z));
            let end = zone.and_then(|z| instant(cx, e, z));
            match (start, end) {
                (Some(start), Some(end)) if start < end => Some(When::Fixed { start, end }),
                (Some(_), Some(_)) => {
                    cx.error(e.span(), "a maintenance window must end after it starts");
                    None
                }
                _ => None,
            }
        }
        _ => {
            cx.error(
                t.span.clone(),
                "a maintenance window has `cron` and `duration`, or `start` and `end`",
            );
            None
        }
    };
    let scope = scope(cx, &t, own_check);
    t.finish(cx);
    Some(Window {
        name,
        when: when?,
        scope,
    })
}

fn scope(cx: &mut Ctx, t: &Table, own_check: bool) -> Scope {
    let mut scope = Scope::default();
    if let Some(v) = t.get("checks") {
        if own_check {
            cx.error(
                v.span(),
                "a window in a check file covers that check; name other checks in config.toml",
            );
        } else {
            scope.checks = cx
                .strings(v)
                .into_iter()
                .map(|(s, _)| s.to_owned())
                .collect();
        }
    }
    if let Some(v) = t.get("labels")
        && let Some(lt) = cx.table(v, "labels")
    {
        let mut labels = BTreeMap::new();
        for (k, _, value) in lt.entries() {
            if let Some(s) = cx.str(value) {
                labels.insert(k.to_owned(), s.to_owned());
            }
        }
        scope.labels = labels;
    }
    scope
}

/// A TOML datetime or an RFC 3339 string; a local date-time is read in `zone`.
fn instant(cx: &mut Ctx, v: &Value, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let text = match v.get_ref() {
        DeValue::Datetime(d) => d.to_string(),
        DeValue::String(s) => s.to_string(),
        other => {
            cx.error(
                v.span(),
                format!(
                    "expected a date-time like 2026-12-01T08:00:00, found {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    match NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S"))
    {
        Ok(local) => match zone.from_local_datetime(&local).earliest() {
            Some(t) => Some(t.with_timezone(&Utc)),
            None => {
                cx.error(
                    v.span(),
                    format!("{text} does not exist in {zone} (a daylight-saving gap)"),
                );
                None
            }
        },
        Err(_) => {
            cx.error(
                v.span(),
                format!("invalid date-time {text:?} (write e.g. 2026-12-01T08:00:00)"),
            );
            None
        }
    }
}
