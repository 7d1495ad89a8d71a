//! Slack incoming webhooks: one readable message per event (declared,
//! updated, still open, resolved), as blocks with a plain `text` fallback
//! for notifications. Slack takes about one message a second per webhook;
//! the outbox paces sends to that ([`Deliver::pace`]) and waits out the
//! `Retry-After` of a 429. Slack dedupes nothing, so a retried event may show twice.

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::attempt::Attempt;
use super::deliver::Deliver;
use super::http::{self as sink_http, Endpoint, RateLimit};
use super::keys;
use super::words::{affected_lines, failing_locations, location_lines, truncate};
use crate::check::Failure;
use crate::config::Env;
use crate::config::reader::{Ctx, Table};
use crate::incident::{Event, EventKind, Incident};
use crate::template::{Resolve, Template};
use crate::text::excerpt;

pub const HEADER_CHARS: usize = 150;
pub const SECTION_CHARS: usize = 3000;
/// A section's field, each at most 2,000 characters (and 10 to a section).
pub const FIELD_CHARS: usize = 2000;
/// Failed expectations shown, one section each; the rest are counted.
/// With the message's three blocks and the count, far below Slack's 50.
pub const EXPECTATIONS_SHOWN: usize = 5;
/// Characters of each part of an expectation before escaping: a value
/// read at a glance, and at most 1,500 once escaped, inside a field.
const EXPECTATION_CHARS: usize = 300;

/// The keys of `type = "slack"`.
pub(super) const KEYS: &[&str] = &["url", "status_url", "timeout"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSpec {
    /// The incoming-webhook URL: it is the credential, so a placeholder.
    pub url: Template,
    /// Linked from every message, e.g. the status page.
    pub status_url: Option<String>,
    pub timeout: Duration,
}

pub(super) fn read(cx: &mut Ctx, t: &Table, env: Env) -> Option<SlackSpec> {
    let url = keys::credential(
        cx,
        t,
        "url",
        env,
        "a slack sink needs a `url`",
        "the incoming webhook's URL is its credential: write `${secret:SLACK_WEBHOOK_URL}` or `${file:PATH}`",
    );
    let status_url = keys::status_url(cx, t, env);
    Some(SlackSpec {
        url: url?,
        status_url: status_url.ok()?,
        timeout: keys::timeout(cx, t),
    })
}

/// Posts incidents to one Slack incoming webhook.
pub struct SlackSink {
    endpoint: Endpoint,
    status_url: Option<String>,
    limit: RateLimit,
}

/// Shows nothing of the URL: it is the webhook's credential.
impl fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSink").finish_non_exhaustive()
    }
}

impl SlackSink {
    pub fn new(spec: &SlackSpec, secrets: &dyn Resolve) -> Result<SlackSink, String> {
        Ok(SlackSink {
            endpoint: Endpoint::new(&spec.url, &Default::default(), spec.timeout, secrets)?,
            status_url: spec.status_url.clone(),
            limit: RateLimit::new(1, Duration::from_secs(1)),
        })
    }

    /// Replaces the budget of one message a second.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> SlackSink {
        self.limit = limit;
        self
    }

    /// The message for `event`. Every text field is built from one copy of
    /// the incident whose words are escaped, so no field can quote a `<!channel>`
    /// that Slack would act on.
    pub fn message(&self, event: &Event) -> serde_json::Value {
        let i = &escaped(&event.incident);
        let (icon, headline) = match event.kind {
            EventKind::Declared => ("🔴", "Incident"),
            EventKind::Updated => ("🟠", "Updated"),
            EventKind::Reminder => ("🔴", "Still failing"),
            EventKind::Resolved => ("✅", "Resolved"),
        };
        let header = format!("{icon} {headline}: {}", i.title);
        let section = match event.kind {
            EventKind::Resolved => self.resolved(i),
            _ => self.open(i),
        };
        let context = format!("incident `{}` · key `{}` · scarecrow", i.id, i.key);
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": cut(&header, HEADER_CHARS), "emoji": true}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&section, SECTION_CHARS)}}),
        ];
        if event.kind != EventKind::Resolved {
            blocks.extend(expectation_blocks(&i.evidence.failure_details));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&context, SECTION_CHARS)}]}));
        json!({
            "text": cut(&format!("{headline}: {}", i.title), SECTION_CHARS),
            "blocks": blocks,
        })
    }

    /// Feature, what is wrong, since when, the failing step and why, who
    /// owns it, who is called in, where to start.
    fn open(&self, i: &Incident) -> String {
        let e = &i.evidence;
        let mut s = feature_line(i);
        let _ = writeln!(s, "*What is wrong:* {}", e.message);
        let _ = writeln!(
            s,
            "*Since:* {} ({} failed runs in a row)",
            date(i.first_failure_at),
            e.consecutive_failures
        );
        match &e.step {
            Some(step) => {
                let _ = writeln!(s, "*Failing step:* `{step}` ({})", e.reason);
            }
            None => {
                let _ = writeln!(s, "*Reason:* {}", e.reason);
            }
        }
        locations(i, &mut s);
        if let Some(previous) = &i.previous_incident {
            let _ = writeln!(
                s,
                "*Declared again:* incident `{previous}` was resolved less than an hour before"
            );
        }
        let (affected, left_out) = affected_lines(i, 10, EXPECTATION_CHARS);
        if !affected.is_empty() {
            let _ = writeln!(s, "*Affected features:*");
            for line in affected {
                let _ = writeln!(s, "• {line}");
            }
            if left_out > 0 {
                let _ = writeln!(s, "• … and {left_out} more");
            }
        }
        self.people_and_links(i, &mut s);
        if let Some(url) = &e.url {
            let _ = writeln!(s, "*Failing URL:* {}", link(url));
        }
        s.trim_end().to_owned()
    }

    fn resolved(&self, i: &Incident) -> String {
        let mut s = feature_line(i);
        let how = match i.resolution.as_deref() {
            Some("recovered") => "the check recovered".to_owned(),
            Some("check_removed") => "the check was removed".to_owned(),
            Some("manual") => "resolved by hand".to_owned(),
            Some(other) => other.to_owned(),
            None => "resolved".to_owned(),
        };
        let after = i
            .duration()
            .map(|d| {
                format!(
                    " after {}",
                    crate::check::words::human(d.to_std().unwrap_or_default())
                )
            })
            .unwrap_or_default();
        let _ = writeln!(s, "*Resolved:* {how}{after}");
        let still = failing_locations(i);
        if !still.is_empty() {
            let _ = writeln!(s, "*Still failing in:* {}", still.join(", "));
        }
        let _ = writeln!(s, "*Failing since:* {}", date(i.first_failure_at));
        if let Some(at) = i.resolved_at {
            let _ = writeln!(s, "*Resolved at:* {}", date(at));
        }
        if let Some(note) = &i.note {
            let _ = writeln!(s, "*Note:* {note}");
        }
        locations(i, &mut s);
        self.people_and_links(i, &mut s);
        s.trim_end().to_owned()
    }

    fn people_and_links(&self, i: &Incident, s: &mut String) {
        let f = &i.feature;
        if let Some(owner) = &f.owner {
            let _ = writeln!(s, "*Owner:* {owner}");
        }
        let roles: Vec<String> = [
            ("coordinator", &f.roles.coordinator),
            ("operations", &f.roles.operations),
            ("communications", &f.roles.communications),
        ]
        .into_iter()
        .filter_map(|(role, who)| who.as_ref().map(|w| format!("{role} {w}")))
        .collect();
        if !roles.is_empty() {
            let _ = writeln!(s, "*Roles:* {}", roles.join(" · "));
        }
        if let Some(runbook) = &f.runbook {
            let _ = writeln!(s, "*Runbook:* {}", link(runbook));
        }
        if let Some(status) = &self.status_url {
            let _ = writeln!(s, "*Status page:* {}", link(status));
        }
    }
}

impl Deliver for SlackSink {
    fn send<'a>(&'a self, event: &'a Event) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
        let body = sink_http::json(serde_json::to_vec(&self.message(event)));
        Box::pin(self.endpoint.post(body, Default::default()))
    }

    fn pace(&self) -> Option<&RateLimit> {
        Some(&self.limit)
    }
}

/// One section per failed expectation (at most [`EXPECTATIONS_SHOWN`]):
/// where the step looked, then what it expected and what it found side by
/// side, and a context line counting the ones left out. `failures` are
/// already cut and escaped ([`escaped`]).
fn expectation_blocks(failures: &[Failure]) -> Vec<serde_json::Value> {
    let mut blocks: Vec<serde_json::Value> = failures
        .iter()
        .take(EXPECTATIONS_SHOWN)
        .map(|f| {
            let mut text = format!("*Where:* {}", code(&f.query));
            if f.actual.is_none() {
                // Nothing found to show: the message says what happened.
                let _ = write!(text, "\n{}", f.message);
            }
            let field = |label: &str, value: &str| {
                json!({"type": "mrkdwn", "text": cut(&format!("*{label}*\n{value}"), FIELD_CHARS)})
            };
            let mut fields = Vec::new();
            if let Some(expected) = &f.expected {
                fields.push(field("Expected", expected));
            }
            if let Some(actual) = &f.actual {
                fields.push(field("Actual", &code(actual)));
            }
            let mut block = json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, SECTION_CHARS)}});
            if !fields.is_empty() {
                block["fields"] = fields.into();
            }
            block
        })
        .collect();
    let left_out = failures.len().saturating_sub(EXPECTATIONS_SHOWN);
    if left_out > 0 {
        let more = match left_out {
            1 => "1 more failed expectation is not shown".to_owned(),
            n => format!("{n} more failed expectations are not shown"),
        };
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    blocks
}

/// `value` as inline code, which Slack shows as written (no `*bold*`),
/// unless a backtick or a line break would end the code early.
fn code(value: &str) -> String {
    match value.contains(['`', '\n']) || value.is_empty() {
        true => value.to_owned(),
        false => format!("`{value}`"),
    }
}

/// Each location's state, when the check runs in several; `i` is already
/// [`escaped`].
fn locations(i: &Incident, s: &mut String) {
    let (lines, left_out) = location_lines(i, 10, EXPECTATION_CHARS);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(s, "*Locations:*");
    for line in lines {
        let _ = writeln!(s, "• {line}");
    }
    if left_out > 0 {
        let _ = writeln!(s, "• … and {left_out} more");
    }
}

fn feature_line(i: &Incident) -> String {
    let f = &i.feature;
    match &f.description {
        Some(d) => format!("*Feature:* {d} (`{}`)\n", f.check),
        None => format!("*Feature:* `{}`\n", f.check),
    }
}

/// The incident with every word a person or a page wrote escaped: the one
/// place Slack's text is made safe. URLs stay as they are; [`link`] encodes them.
fn escaped(i: &Incident) -> Incident {
    let mut i = i.clone();
    let opt = |s: &mut Option<String>| {
        if let Some(s) = s.as_mut() {
            *s = escape(s);
        }
    };
    for s in [
        &mut i.id,
        &mut i.key,
        &mut i.title,
        &mut i.feature.check,
        &mut i.evidence.message,
        &mut i.evidence.reason,
    ] {
        *s = escape(s);
    }
    for s in [
        &mut i.feature.description,
        &mut i.feature.owner,
        &mut i.feature.roles.coordinator,
        &mut i.feature.roles.operations,
        &mut i.feature.roles.communications,
        &mut i.evidence.step,
        &mut i.resolution,
        &mut i.note,
        &mut i.previous_incident,
    ] {
        opt(s);
    }
    // Each part cut before it is escaped, so no escape is cut in two.
    let shown = |s: &str| escape(&excerpt(s, EXPECTATION_CHARS));
    for a in &mut i.affected {
        a.check = escape(&a.check);
        a.reason = escape(&a.reason);
        a.message = escape(&a.message);
        opt(&mut a.step);
    }
    for l in &mut i.evidence.locations {
        l.location = escape(&l.location);
        opt(&mut l.reason);
        opt(&mut l.step);
        opt(&mut l.message);
    }
    for f in &mut i.evidence.failure_details {
        f.message = shown(&f.message);
        f.query = shown(&f.query);
        f.expected = f.expected.as_deref().map(shown);
        f.actual = f.actual.as_deref().map(shown);
    }
    i
}

/// Slack needs `&`, `<` and `>` escaped in text.
fn escape(s: &str) -> String {
    crate::text::EscapeSlack(s).to_string()
}

/// `<url>`; a URL holding `|` or `>` would end the link early.
fn link(url: &str) -> String {
    let url = url
        .replace('|', "%7C")
        .replace('>', "%3E")
        .replace('<', "%3C");
    format!("<{url}>")
}

/// A time each reader sees in their own time zone, UTC where that fails.
fn date(t: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        t.timestamp(),
        t.format("%Y-%m-%d %H:%M UTC")
    )
}

/// Like [`truncate`], without cutting an `&amp;`-style escape in two.
fn cut(s: &str, max: usize) -> String {
    let t = truncate(s, max);
    if t.len() == s.len() {
        return t;
    }
    let body = t.trim_end_matches('…');
    match body.rfind('&') {
        Some(amp) if !body[amp..].contains(';') => format!("{}…", &body[..amp]),
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{LocationResult, LocationState};

    fn failure(n: usize) -> Failure {
        Failure::new("status", format!("failure {n}"))
            .expected("be 200")
            .actual(format!("50{n}"))
    }

    #[test]
    fn each_expectation_is_a_section_with_its_fields_and_the_rest_are_counted() {
        let [mut e, _] = crate::sink::test_events("default", Default::default(), Utc::now());
        let mut failures: Vec<Failure> = (0..8).map(failure).collect();
        failures[0].actual = Some(format!("`x` <b>{}</b> &", "ä".repeat(2000)));
        failures[1] = Failure::new("css \"h1 > a\"", "css \"h1 > a\" matched nothing".into())
            .expected("contain \"Bestellt\"");
        e.incident.evidence.failure_details = failures;
        let blocks = expectation_blocks(&escaped(&e.incident).evidence.failure_details);
        assert_eq!(blocks.len(), EXPECTATIONS_SHOWN + 1, "{blocks:#?}");
        for b in &blocks[..EXPECTATIONS_SHOWN] {
            let fields = b["fields"].as_array().unwrap();
            assert!(!fields.is_empty() && fields.len() <= 10, "{b}");
            for f in fields {
                assert!(f["text"].as_str().unwrap().chars().count() <= FIELD_CHARS);
            }
        }
        let actual = blocks[0]["fields"][1]["text"].as_str().unwrap();
        assert!(actual.starts_with("*Actual*\n`x` &lt;b&gt;ää"), "{actual}");
        assert!(
            actual.ends_with("ää…"),
            "cut before it is escaped: {actual}"
        );
        assert_eq!(
            blocks[1],
            json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Where:* `css \"h1 &gt; a\"`\ncss \"h1 &gt; a\" matched nothing"},
                "fields": [{"type": "mrkdwn", "text": "*Expected*\ncontain \"Bestellt\""}]
            })
        );
        assert_eq!(blocks[2]["fields"][1]["text"], "*Actual*\n`502`");
        assert_eq!(
            blocks[5]["elements"][0]["text"],
            "3 more failed expectations are not shown"
        );
        assert!(expectation_blocks(&[]).is_empty());
    }

    fn sink() -> SlackSink {
        let spec = SlackSpec {
            url: Template::literal("http://127.0.0.1:9/hook"),
            status_url: None,
            timeout: Duration::from_secs(1),
        };
        SlackSink::new(&spec, &crate::secret::Secrets::default()).unwrap()
    }

    fn location(name: &str, state: LocationState, message: Option<&str>) -> LocationResult {
        LocationResult {
            location: name.into(),
            state,
            run_id: "run_1".into(),
            at: "2025-03-04T14:49:02Z".parse().unwrap(),
            consecutive_failures: 3,
            reason: message.map(|_| "assertion".into()),
            step: message.map(|_| "Wetterseite".into()),
            message: message.map(Into::into),
        }
    }

    fn section(message: &serde_json::Value) -> &str {
        message["blocks"][1]["text"]["text"].as_str().unwrap()
    }

    #[test]
    fn each_location_is_a_line_and_a_resolution_names_those_still_failing() {
        let [mut declared, mut resolved] =
            crate::sink::test_events("default", Default::default(), Utc::now());
        let locations = vec![
            location(
                "fra",
                LocationState::Failing,
                Some("step \"Wetterseite\": status <502>"),
            ),
            location("ams", LocationState::Passing, None),
            location("ber", LocationState::Stale, None),
        ];
        declared.incident.evidence.locations = locations.clone();
        let message = sink().message(&declared);
        let text = section(&message);
        assert!(
            text.contains(concat!(
                "*Locations:*\n",
                "• fra: failing (assertion): step \"Wetterseite\": status &lt;502&gt;\n",
                "• ams: passing\n",
                "• ber: stale (last run 2025-03-04 14:49:02 UTC)\n",
            )),
            "{text}"
        );
        assert!(!text.contains("Still failing in"), "{text}");

        resolved.incident.resolution = Some("recovered".into());
        resolved.incident.evidence.locations = locations;
        let message = sink().message(&resolved);
        let text = section(&message);
        assert!(text.contains("*Still failing in:* fra\n"), "{text}");
        assert!(text.contains("• ams: passing"), "{text}");

        for l in &mut resolved.incident.evidence.locations {
            l.state = LocationState::Passing;
        }
        let message = sink().message(&resolved);
        assert!(!section(&message).contains("Still failing"));
        declared.incident.evidence.locations.clear();
        let message = sink().message(&declared);
        assert!(!section(&message).contains("Locations"));
    }

    #[test]
    fn values_are_code_unless_a_backtick_or_line_would_end_it() {
        assert_eq!(code("500"), "`500`");
        assert_eq!(code("a `b`"), "a `b`");
        assert_eq!(code("a\nb"), "a\nb");
        assert_eq!(code(""), "");
    }

    #[test]
    fn escapes_are_not_cut_in_two() {
        assert_eq!(cut("ab &amp; c", 6), "ab …");
        assert_eq!(cut("ab &amp; c", 9), "ab &amp;…");
        assert_eq!(escape("<a> & b"), "&lt;a&gt; &amp; b");
        assert_eq!(link("https://x.org/a|b"), "<https://x.org/a%7Cb>");
    }
}
