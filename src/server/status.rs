//! The public status page at `/`: server-rendered HTML without scripts,
//! one column that reads on a phone. Open incidents first, then the
//! critical features, the others, and the incident history.

use crate::store::{Backend, Reader};
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::ServerState;
use super::html::{CSS, Esc, clip, clock, ms, span, sparkline, time};
use crate::check::Outcome;
use crate::incident::{Incident, LocationState};
use crate::live::{CheckView, State as ViewState, View};

/// Seconds between the browser's reloads of the page.
const REFRESH: u32 = 30;
/// Incidents shown in the history.
const HISTORY: usize = 15;
/// Characters of a failure message shown; the API has all of it.
const MESSAGE: usize = 320;

pub(super) async fn page(State(s): State<ServerState>) -> Response {
    let view = s.view.clone();
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || render(&view, store.as_ref(), Utc::now())).await {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, policy()),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the status page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The page loads nothing and runs nothing: its one style sheet is inline
/// and allowed by its hash, so text from a check or a response cannot bring
/// a style, script, image or frame of its own; no site may frame the page.
fn policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(CSS));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    });
    &POLICY
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Down,
    Pending,
    Up,
}

impl Health {
    fn of(c: &CheckView) -> Health {
        match c.last_run.as_ref().map(|r| r.outcome.is_success()) {
            None => Health::Pending,
            Some(true) => Health::Up,
            Some(false) => Health::Down,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Health::Down => "down",
            Health::Pending => "wait",
            Health::Up => "up",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Health::Down => "Down",
            Health::Pending => "Waiting",
            Health::Up => "Up",
        }
    }
}

/// Open incidents and the latest ones, from the store.
type History = Result<(Vec<Incident>, Vec<Incident>), String>;

fn history(store: Option<&Backend>) -> History {
    let backend = store.ok_or("no store is configured")?;
    let reader = Reader::open(backend).map_err(|e| e.to_string())?;
    let open = reader.incidents(true, 50).map_err(|e| e.to_string())?;
    let recent = reader
        .incidents(false, HISTORY)
        .map_err(|e| e.to_string())?;
    Ok((open, recent))
}

/// The whole page, as of `now`.
pub(super) fn render(view: &View, store: Option<&Backend>, now: DateTime<Utc>) -> String {
    let history = history(store);
    if let Err(e) = &history {
        tracing::debug!(error = %e, "the status page shows no incident history");
    }
    let state = view.read();
    let mut checks: Vec<(&CheckView, Health)> =
        state.checks.values().map(|c| (c, Health::of(c))).collect();
    checks.sort_by(|(a, ha), (b, hb)| {
        (!a.check.critical, ha, &a.check.name).cmp(&(!b.check.critical, hb, &b.check.name))
    });
    let down = checks.iter().filter(|(_, h)| *h == Health::Down).count();
    let critical_down = checks
        .iter()
        .filter(|(c, h)| c.check.critical && *h == Health::Down)
        .count();
    let (class, headline) = match (checks.len(), down) {
        (0, _) => ("wait", "No features are watched yet".to_owned()),
        (_, 0) if checks.iter().all(|(_, h)| *h == Health::Pending) => {
            ("wait", "Checking the features…".to_owned())
        }
        (_, 0) => ("up", "All features are working".to_owned()),
        (_, n) if critical_down == n => (
            "down",
            plural(n, "critical feature is down", "critical features are down"),
        ),
        (_, n) => ("down", plural(n, "feature is down", "features are down")),
    };

    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="refresh" content="{REFRESH}"><title>Status: {}</title><style>{CSS}</style></head><body><div class="wrap">"#,
        Esc(&headline)
    );
    let _ = write!(
        out,
        r#"<header class="top"><strong>scarecrow</strong><span>Updated {}</span></header><section class="summary {class}" id="summary"><h1>{}</h1><p>{}</p></section>"#,
        clock(now, now),
        Esc(&headline),
        summary_detail(&checks)
    );
    open_incidents(&mut out, &state, &history, now);
    let (critical, others): (Vec<_>, Vec<_>) = checks.iter().partition(|(c, _)| c.check.critical);
    for (title, id, group) in [
        ("Critical features", "critical", critical),
        ("Other features", "other", others),
    ] {
        if group.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            r#"<section id="{id}"><h2>{title}</h2><ul class="list">"#
        );
        for (c, h) in group {
            check_card(&mut out, c, h, now);
        }
        out.push_str("</ul></section>");
    }
    incident_history(&mut out, &history, now);
    footer(&mut out, &state, now);
    out.push_str("</div></body></html>");
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

fn summary_detail(checks: &[(&CheckView, Health)]) -> String {
    let down: Vec<String> = checks
        .iter()
        .filter(|(_, h)| *h == Health::Down)
        .map(|(c, _)| Esc(c.check.description.as_deref().unwrap_or(&c.check.name)).to_string())
        .collect();
    if !down.is_empty() {
        return format!("Not working: {}.", down.join(", "));
    }
    let critical = checks.iter().filter(|(c, _)| c.check.critical).count();
    format!(
        "{} watched, {critical} of them critical.",
        plural(checks.len(), "feature", "features")
    )
}

/// An open incident as the page shows it.
struct Open<'a> {
    id: &'a str,
    title: &'a str,
    check: &'a str,
    /// The feature's description, or the check's name.
    feature: &'a str,
    declared_at: DateTime<Utc>,
    evidence: Option<&'a crate::incident::Evidence>,
    /// The roles called in and the runbook, as declared.
    declared: Option<&'a crate::incident::Feature>,
}

fn open_incidents(out: &mut String, state: &ViewState, history: &History, now: DateTime<Utc>) {
    // The store has the evidence; without it, the view still knows which
    // incidents are open.
    let list: Vec<Open> = match history {
        Ok((open, _)) => open
            .iter()
            .map(|i| Open {
                id: &i.id,
                title: &i.title,
                check: &i.feature.check,
                feature: i.feature.description.as_deref().unwrap_or(&i.feature.check),
                declared_at: i.declared_at,
                evidence: Some(&i.evidence),
                declared: Some(&i.feature),
            })
            .collect(),
        Err(_) => state
            .by_name()
            .into_iter()
            .filter_map(|c| {
                let i = c.open_incident.as_ref()?;
                Some(Open {
                    id: &i.id,
                    title: &i.title,
                    check: &c.check.name,
                    feature: c.check.description.as_deref().unwrap_or(&c.check.name),
                    declared_at: i.declared_at,
                    evidence: None,
                    declared: None,
                })
            })
            .collect(),
    };
    if list.is_empty() {
        return;
    }
    out.push_str(r#"<section id="incidents"><h2>Open incidents</h2><ul class="list">"#);
    for i in list {
        let _ = write!(
            out,
            r#"<li class="card incident down" data-incident="{}" data-check="{}" title="{}"><div class="head"><h3>{}</h3><span class="badge">Open</span></div><p class="since">Declared {} · open for {}</p>"#,
            Esc(i.id),
            Esc(i.check),
            Esc(i.title),
            Esc(i.feature),
            clock(now, i.declared_at),
            span(now - i.declared_at)
        );
        if let Some(e) = i.evidence {
            out.push_str(r#"<p class="why">"#);
            if let Some(step) = &e.step {
                let _ = write!(out, "<b>Failing step:</b> “{}” ", Esc(step));
            }
            let _ = write!(out, r#"<span class="tag">{}</span></p>"#, Esc(&e.reason));
        }
        if let Some(f) = i.declared {
            called_in(out, f);
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
}

/// Who was called in, and the runbook: what the people who open the page
/// during an incident look for first.
fn called_in(out: &mut String, f: &crate::incident::Feature) {
    let roles = [
        ("Coordinator", &f.roles.coordinator),
        ("Operations", &f.roles.operations),
        ("Communications", &f.roles.communications),
    ];
    let named: Vec<_> = roles
        .iter()
        .filter_map(|(role, who)| Some((role, who.as_deref()?)))
        .collect();
    if !named.is_empty() {
        out.push_str(r#"<p class="roles">"#);
        for (n, (role, who)) in named.iter().enumerate() {
            let sep = if n == 0 { "" } else { " · " };
            let _ = write!(out, "{sep}<b>{role}:</b> {}", Esc(who));
        }
        out.push_str("</p>");
    }
    // Checked at load too; an incident stored by an older version is not.
    if let Some(runbook) = f
        .runbook
        .as_deref()
        .filter(|u| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
    {
        let _ = write!(
            out,
            r#"<p class="runbook"><a href="{}" rel="noopener noreferrer">Runbook</a></p>"#,
            Esc(runbook)
        );
    }
}

fn check_card(out: &mut String, c: &CheckView, h: Health, now: DateTime<Utc>) {
    let _ = write!(
        out,
        r#"<li class="card {}" id="check-{}" data-check="{}" data-state="{}" data-critical="{}"><div class="head"><h3>{}</h3><span class="badge">{}</span></div>"#,
        h.class(),
        Esc(&c.check.name),
        Esc(&c.check.name),
        h.class(),
        c.check.critical,
        Esc(c.check.description.as_deref().unwrap_or(&c.check.name)),
        h.label()
    );
    out.push_str(r#"<div class="name">"#);
    let _ = write!(out, "{}", Esc(&c.check.name));
    if let Some(owner) = &c.check.owner {
        let _ = write!(out, " · {}", Esc(owner));
    }
    out.push_str("</div>");
    since(out, c, h, now);
    if let Some(parent) = &c.blocked_by {
        let _ = write!(
            out,
            r##"<p class="blocked">Blocked by <a href="#check-{}">{}</a>: part of its incident</p>"##,
            Esc(parent),
            Esc(parent)
        );
    }
    locations(out, c, now);
    if let Some(Outcome::Failure {
        reason,
        step,
        message,
    }) = c.last_run.as_ref().map(|r| &r.outcome)
    {
        out.push_str(r#"<p class="why">"#);
        if let Some(step) = step {
            let _ = write!(
                out,
                r#"<b>Failing step:</b> “<span class="step">{}</span>” "#,
                Esc(step)
            );
        }
        let _ = write!(
            out,
            r#"<span class="tag reason">{reason}</span><span class="message">{}</span></p>"#,
            Esc(&clip(message, MESSAGE))
        );
    }
    out.push_str(r#"<div class="foot"><span>"#);
    match c.last_run.as_ref() {
        Some(r) => {
            out.push_str("Last run ");
            time(out, now, r.started_at);
            let _ = write!(out, " · {}", ms(r.duration.as_secs_f64() * 1e3));
        }
        None => out.push_str("Not run yet"),
    }
    if let Some(next) = c.next_run_at {
        out.push_str(" · next ");
        time(out, now, next);
    }
    out.push_str("</span>");
    sparkline(out, &c.recent);
    out.push_str("</div></li>");
}

/// Each location's state, when the check runs in several: which fail (and
/// why), which pass, which have gone quiet.
fn locations(out: &mut String, c: &CheckView, now: DateTime<Utc>) {
    let states = c.location_states(now);
    if states.is_empty() {
        return;
    }
    out.push_str(r#"<ul class="locations">"#);
    for l in &states {
        let _ = write!(
            out,
            r#"<li data-location="{}" data-state="{}"><b>{}</b> <span class="state">{}</span>"#,
            Esc(&l.location),
            l.state.as_str(),
            Esc(&l.location),
            l.state.as_str()
        );
        match (&l.reason, &l.message) {
            (Some(reason), Some(message)) if l.state == LocationState::Failing => {
                let _ = write!(
                    out,
                    r#" <span class="tag reason">{}</span> {}"#,
                    Esc(reason),
                    Esc(&clip(message, MESSAGE))
                );
            }
            _ => {
                out.push_str(" · last run ");
                time(out, now, l.at);
            }
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}

/// "Down since …" or "Up since …": since the run that turned it, or since
/// the first run the daemon saw.
fn since(out: &mut String, c: &CheckView, h: Health, now: DateTime<Utc>) {
    let text = match (h, c.streak_since) {
        (Health::Pending, _) => "Waiting for the first run".to_owned(),
        (_, Some(t)) => format!("{} since {} ({})", h.label(), clock(now, t), span(now - t)),
        (_, None) => h.label().to_owned(),
    };
    let _ = write!(out, r#"<p class="since">{}</p>"#, Esc(&text));
}

fn incident_history(out: &mut String, history: &History, now: DateTime<Utc>) {
    out.push_str(r#"<section id="history"><h2>Incident history</h2>"#);
    let recent = match history {
        Ok((_, recent)) => recent,
        Err(_) => {
            out.push_str(r#"<p class="muted">The incident history is not available right now.</p></section>"#);
            return;
        }
    };
    if recent.is_empty() {
        out.push_str(r#"<p class="muted">No incidents so far.</p></section>"#);
        return;
    }
    out.push_str("<table><thead><tr><th>Feature</th><th>Declared</th><th>Lasted</th><th>Ended</th></tr></thead><tbody>");
    for i in recent {
        let ended = match (&i.resolved_at, i.resolution.as_deref()) {
            (None, _) => "ongoing",
            (Some(_), Some("recovered")) => "recovered",
            (Some(_), Some("manual")) => "resolved by hand",
            (Some(_), Some("check_removed")) => "check removed",
            (Some(_), _) => "resolved",
        };
        let _ = write!(
            out,
            r#"<tr data-incident="{}"><td>{}</td><td class="t">{}</td><td class="t">{}</td><td>{ended}</td></tr>"#,
            Esc(&i.id),
            Esc(&i.feature.check),
            clock(now, i.declared_at),
            span(i.resolved_at.unwrap_or(now) - i.declared_at),
        );
    }
    out.push_str("</tbody></table></section>");
}

fn footer(out: &mut String, state: &ViewState, now: DateTime<Utc>) {
    out.push_str("<footer>");
    if let Some(at) = state.config.loaded_at {
        out.push_str("<p>Checks loaded ");
        time(out, now, at);
        let broken = state
            .config
            .files
            .iter()
            .filter(|f| !f.errors.is_empty())
            .count();
        if broken > 0 {
            let _ = write!(
                out,
                r#" · <span class="warn">{} with errors; the last good version keeps running</span>"#,
                plural(broken, "file", "files")
            );
        }
        out.push_str("</p>");
    }
    if let Some(at) = state.scheduler_last_tick {
        out.push_str("<p>Scheduler active ");
        time(out, now, at);
        out.push_str("</p>");
    }
    let _ = write!(
        out,
        "<p>Times in UTC · this page refreshes every {REFRESH} s · scarecrow {}</p></footer>",
        env!("CARGO_PKG_VERSION")
    );
}

#[cfg(test)]
mod tests {
    use crate::check::roles::Roles;
    use crate::incident::Feature;

    fn card(runbook: &str) -> String {
        let feature = Feature {
            check: "diesel-order".into(),
            runbook: Some(runbook.into()),
            roles: Roles {
                coordinator: Some("<Anna & Ben>".into()),
                ..Roles::default()
            },
            ..Feature::default()
        };
        let mut out = String::new();
        super::called_in(&mut out, &feature);
        out
    }

    #[test]
    fn the_incident_card_names_the_roles_escaped_and_links_only_a_web_runbook() {
        let https = card("https://wiki.example.org/runbooks/a?b=1&c=2");
        assert!(
            https.contains("<b>Coordinator:</b> &lt;Anna &amp; Ben&gt;"),
            "{https}"
        );
        assert!(
            !https.contains("Operations"),
            "a role nobody holds: {https}"
        );
        assert!(
            https.contains(r#"href="https://wiki.example.org/runbooks/a?b=1&amp;c=2""#),
            "{https}"
        );
        for hostile in ["javascript:alert(1)", "data:text/html,x", "wiki/runbook"] {
            assert!(!card(hostile).contains("href"), "{hostile} linked");
        }
    }
}
