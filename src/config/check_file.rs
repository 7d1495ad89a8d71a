//! A check file (`checks/*.toml`) read into a [`Check`].

use std::collections::BTreeMap;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Severity, Source};
use super::expect;
use super::reader::{Ctx, Env, Table, Value, inner_span, valid_location, valid_name};
use super::values::{Reader, pairs, url};
use crate::check::Patterns;
use crate::check::{
    Check, IncidentRules, Quorum, Redirects, Request, Schedule, Step, StepKind, cron::Cron,
};
use crate::template::Template;

/// Settings a check file inherits when it says nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub timeout: Duration,
    pub every: Duration,
    pub incidents: IncidentRules,
    /// The proxy of a check that names none; `None`: direct.
    pub proxy: Option<url::Url>,
    /// Hosts reached directly rather than through `proxy`.
    pub no_proxy: Vec<String>,
    /// What check files may reach (`[[grant]]`): a check file cannot set
    /// it, but every file is read again when it changes.
    pub grants: std::sync::Arc<super::grant::Policy>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: Duration::from_secs(10),
            every: Duration::from_secs(60),
            incidents: IncidentRules::default(),
            proxy: None,
            no_proxy: Vec::new(),
            grants: std::sync::Arc::default(),
        }
    }
}

/// Where a check file names things other files may claim or lack.
#[derive(Debug, Default)]
pub struct Spans {
    /// Where it sets `name`: nowhere when the name comes from the file name.
    pub name: std::ops::Range<usize>,
    /// Each entry of `depends_on`, in order.
    pub depends_on: Vec<std::ops::Range<usize>>,
}

/// Reads one check file's text, reusing the regexes of other checks; also
/// says where it names itself and its parents ([`Spans`]) and whether the
/// grants refused something it names.
pub fn read_file(
    src: &Source,
    defaults: &Defaults,
    env: Env,
    patterns: &Patterns,
) -> (Option<Check>, Vec<Diagnostic>, Spans, bool) {
    let mut cx = Ctx::new(src);
    let (root, errors) = toml::de::DeTable::parse_recoverable(&src.text);
    if !errors.is_empty() {
        for e in errors {
            cx.error(e.span().unwrap_or(0..0), toml_message(&e));
        }
        return (None, cx.diags, Spans::default(), false);
    }
    let stem = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = Reader {
        cx,
        env,
        patterns,
        captures: Vec::new(),
        access: defaults.grants.access(&src.path),
        denied: false,
    };
    let check = read(&mut r, root.get_ref(), &stem, defaults);
    let root = root.get_ref();
    let spans = Spans {
        name: root.get("name").map_or(0..0, toml::Spanned::span),
        depends_on: match root.get("depends_on").map(|v| (v.get_ref(), v.span())) {
            Some((toml::de::DeValue::Array(a), _)) => a.iter().map(toml::Spanned::span).collect(),
            Some((_, span)) => vec![span],
            None => Vec::new(),
        },
    };
    (check, r.cx.diags, spans, r.denied)
}

/// The first line of a TOML syntax error, without the position the
/// diagnostic shows anyway.
fn toml_message(e: &toml::de::Error) -> String {
    let m = e.message().trim();
    format!("invalid TOML: {}", m.lines().next().unwrap_or(m))
}

/// Reads one check file. Returns the check only if the file had no errors.
pub fn read(r: &mut Reader, root: &DeTable, stem: &str, defaults: &Defaults) -> Option<Check> {
    let t = Table::new(root, 0..0, "the check");
    let name = match t.get("name") {
        Some(v) => r.cx.str(v).map(|s| (s.to_owned(), v.span())),
        None => Some((stem.to_owned(), 0..0)),
    };
    if let Some((name, span)) = &name
        && !valid_name(name)
    {
        let whence = if span.is_empty() {
            " (from the file name; set `name` to choose another)"
        } else {
            ""
        };
        r.cx.error(
            span.clone(),
            format!("check name {name:?} may only use a-z, 0-9, `_` and `-`{whence}"),
        );
    }
    let text = |r: &mut Reader, key| t.get(key).and_then(|v| r.cx.str(v)).map(str::to_owned);
    let description = text(r, "description");
    let owner = text(r, "owner");
    let runbook = t.get("runbook").and_then(|v| {
        let s = r.cx.str(v)?;
        match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(s.to_owned()),
            _ => {
                r.cx.error(
                    v.span(),
                    format!("runbook must be an http(s) URL, found {s:?}"),
                );
                None
            }
        }
    });
    let critical = t
        .get("critical")
        .and_then(|v| r.cx.bool(v))
        .unwrap_or(false);
    let labels = t.get("labels").map(|v| labels(r, v)).unwrap_or_default();
    let schedule = schedule(r, &t, defaults);
    let timeout = t
        .get("timeout")
        .map_or(Some(defaults.timeout), |v| r.cx.duration(v));
    let mut incidents = incident_rules(&mut r.cx, &t, defaults.incidents.clone());
    if let Some(v) = t.get("maintenance") {
        incidents.maintenance = super::maintenance::parse(&mut r.cx, v, true);
    }
    let connection = super::connection::read(r, &t, defaults.proxy.as_ref(), &defaults.no_proxy);
    let public_cookies = t.get("public_cookies").map_or_else(Vec::new, |v| {
        r.cx.strings(v)
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect()
    });
    let depends_on = t.get("depends_on").map_or_else(Vec::new, |v| {
        let names = r.cx.strings(v);
        for (parent, span) in &names {
            if !valid_name(parent) {
                r.cx.error(
                    span.clone(),
                    format!("`depends_on` names a check: {parent:?} is not a check name"),
                );
            }
        }
        names.into_iter().map(|(n, _)| n.to_owned()).collect()
    });
    let locations = t.get("locations").map_or_else(Vec::new, |v| {
        let names = r.cx.strings(v);
        for (location, span) in &names {
            if !valid_location(location) {
                r.cx.error(
                    span.clone(),
                    format!("location {location:?} may only use a-z, 0-9 and `-`"),
                );
            }
        }
        names.into_iter().map(|(n, _)| n.to_owned()).collect()
    });
    if let Quorum::Locations(n) = incidents.quorum
        && !locations.is_empty()
        && n as usize > locations.len()
    {
        let span = t
            .get("quorum")
            .or(t.get("locations"))
            .map_or(0..0, |v| v.span());
        r.cx.error(
            span,
            format!(
                "quorum needs {n} locations failing, and the check runs in {} (`locations`): it could never declare",
                locations.len()
            ),
        );
    }
    let steps = match t.get("step") {
        Some(v) => steps(r, v),
        None => {
            r.cx.error(0..0, "a check needs at least one `[[step]]`");
            None
        }
    };
    if let (Some(steps), Some(connection)) = (&steps, &connection)
        && steps.iter().any(|s| matches!(s.kind, StepKind::Browser(_)))
    {
        super::browser::connection_fits(r, &t, connection);
    }
    t.finish(&mut r.cx);
    if r.cx.diags.iter().any(|d| d.is_error()) {
        return None;
    }
    Some(Check {
        name: name?.0,
        description,
        critical,
        owner,
        runbook,
        labels,
        schedule: schedule?,
        timeout: timeout?,
        steps: steps?,
        incidents,
        connection: connection?,
        public_cookies,
        depends_on,
        locations,
        source: r.cx.src.path.clone(),
    })
}

/// `failure_threshold`, `success_threshold`, `recheck`, `remind_every` and
/// `quorum`, in a check file or in `[incidents]` of `config.toml`.
pub fn incident_rules(cx: &mut Ctx, t: &Table, defaults: IncidentRules) -> IncidentRules {
    let mut rules = defaults;
    if let Some(v) = t.get("failure_threshold") {
        rules.failure_threshold = cx
            .uint(v, 1..=1000)
            .map_or(rules.failure_threshold, |n| n as u32);
    }
    if let Some(v) = t.get("success_threshold") {
        rules.success_threshold = cx
            .uint(v, 1..=1000)
            .map_or(rules.success_threshold, |n| n as u32);
    }
    if let Some(v) = t.get("recheck") {
        rules.recheck = cx.duration(v).or(rules.recheck);
    }
    if let Some(v) = t.get("remind_every") {
        rules.remind_every = cx.duration(v).or(rules.remind_every);
    }
    if let Some(v) = t.get("quorum") {
        rules.quorum = quorum(cx, v).unwrap_or(rules.quorum);
    }
    rules
}

/// `quorum = { min_failing = 2 }` or `{ min_failing = "50%" }`.
fn quorum(cx: &mut Ctx, v: &Value) -> Option<Quorum> {
    let t = cx.table(v, "quorum")?;
    let Some(min) = t.get("min_failing") else {
        cx.error(
            v.span(),
            "quorum needs `min_failing`: a number of locations or a share like \"50%\"",
        );
        t.finish(cx);
        return None;
    };
    let quorum = match min.get_ref() {
        DeValue::Integer(_) => cx.uint(min, 1..=1000).map(|n| Quorum::Locations(n as u32)),
        _ => {
            let text = cx.str(min)?;
            let percent = text
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u8>().ok())
                .filter(|n| (1..=100).contains(n));
            if percent.is_none() {
                cx.error(
                    min.span(),
                    format!("min_failing is a number of locations or a share from \"1%\" to \"100%\", found {text:?}"),
                );
            }
            percent.map(Quorum::Percent)
        }
    };
    t.finish(cx);
    quorum
}

fn labels(r: &mut Reader, v: &Value) -> BTreeMap<String, String> {
    let Some(t) = r.cx.table(v, "labels") else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (key, span, value) in t.entries() {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            r.cx.error(
                span,
                format!("label name {key:?} may only use letters, digits and `_`"),
            );
        } else if let Some(s) = r.cx.str(value) {
            out.insert(key.to_owned(), s.to_owned());
        }
    }
    out
}

fn schedule(r: &mut Reader, t: &Table, defaults: &Defaults) -> Option<Schedule> {
    let every = t.get("every");
    let cron = t.get("cron");
    let tz = t.get("timezone");
    match (every, cron) {
        (Some(e), Some(c)) => {
            r.cx.error(c.span(), "a check has either `every` or `cron`, not both");
            let _ = (r.cx.duration(e), tz);
            None
        }
        (Some(e), None) => {
            if let Some(tz) = tz {
                r.cx.error(tz.span(), "`timezone` applies to `cron` schedules only");
            }
            r.cx.duration(e).map(Schedule::Every)
        }
        (None, Some(c)) => {
            let zone = match tz {
                None => Some(chrono_tz::Tz::UTC),
                Some(v) => r.cx.str(v).and_then(|s| match s.parse::<chrono_tz::Tz>() {
                    Ok(z) => Some(z),
                    Err(_) => {
                        r.cx.error(v.span(), format!("unknown time zone {s:?} (use an IANA name such as \"Europe/Berlin\")"));
                        None
                    }
                }),
            };
            let expr = r.cx.str(c)?;
            // Parse even when the zone is wrong, so both problems show at once.
            match Cron::parse(expr, zone.unwrap_or(chrono_tz::Tz::UTC)) {
                Ok(cron) => zone.map(|_| Schedule::Cron(cron)),
                Err(e) => {
                    let at = inner_span(&r.cx, c.span(), e.offset, e.len);
                    r.cx.error(at, format!("invalid cron expression: {e}"));
                    None
                }
            }
        }
        (None, None) => {
            if let Some(tz) = tz {
                r.cx.error(tz.span(), "`timezone` applies to `cron` schedules only");
            }
            Some(Schedule::Every(defaults.every))
        }
    }
}

fn steps(r: &mut Reader, v: &Value) -> Option<Vec<Step>> {
    let items = r.cx.array(v)?;
    if items.is_empty() {
        r.cx.error(v.span(), "a check needs at least one `[[step]]`");
        return None;
    }
    let steps: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(i, item)| step(r, item, i + 1))
        .collect();
    steps.into_iter().collect()
}

fn step(r: &mut Reader, v: &Value, number: usize) -> Option<Step> {
    let t = r.cx.table(v, "a step")?;
    let name = t
        .get("name")
        .and_then(|v| r.cx.str(v))
        .map_or_else(|| format!("step {number}"), str::to_owned);
    let kind = kind(r, &t);
    // An unknown kind's own keys are not judged: its error says why.
    let step_kind = match kind {
        Some("browser") => super::browser::step(r, &t).map(StepKind::Browser),
        Some(_) => request(r, &t).map(StepKind::Http),
        None => None,
    };
    let redirects = match &step_kind {
        Some(StepKind::Http(q)) => Some(q.redirects),
        // The browser follows redirects as a member's does.
        _ => Some(Redirects::default()),
    };
    let timing = super::request::timing(r, &t);
    let captures = t.get("capture").map(|v| super::capture::captures(r, v));
    let assertions = expect::assertions(r, t.get("expect"), redirects);
    if let (Some(StepKind::Browser(_)), Some(a)) = (&step_kind, &assertions)
        && a.iter()
            .any(|a| matches!(a, crate::check::Assertion::CertDays(_)))
    {
        let span = t.get("expect").map_or(t.span.clone(), |v| v.span());
        r.cx.error(
            span,
            "`min_cert_days` applies to HTTP steps: Chromium does not hand out the certificate",
        );
    }
    if kind.is_some() {
        t.finish(&mut r.cx);
    }
    let (timeout, retry) = timing?;
    Some(Step {
        name,
        kind: step_kind?,
        captures: captures.unwrap_or(Some(Vec::new()))?,
        // Exactly sized: a daemon keeps every step of thousands of checks.
        assertions: assertions.map(|mut a| {
            a.shrink_to_fit();
            a
        })?,
        timeout,
        retry,
    })
}

/// The step's `kind`, `"http"` when absent; `None` after an error.
fn kind(r: &mut Reader, t: &Table) -> Option<&'static str> {
    let Some(v) = t.get("kind") else {
        return Some("http");
    };
    let written = r.cx.str(v)?;
    if let Some(known) = StepKind::NAMES.iter().find(|k| **k == written) {
        return Some(known);
    }
    let mut d = r.cx.src.diagnostic(
        Severity::Error,
        v.span(),
        format!("unknown step kind {written:?}"),
    );
    let known = StepKind::NAMES.iter().copied();
    d = match super::diagnostic::did_you_mean(written, known) {
        Some(k) => d.with_help(format!("did you mean `{k}`?")),
        None => {
            let names: Vec<String> = StepKind::NAMES.iter().map(|k| format!("`{k}`")).collect();
            d.with_help(format!("expected one of {}", names.join(", ")))
        }
    };
    r.cx.push(d);
    None
}

fn request(r: &mut Reader, t: &Table) -> Option<Request> {
    let url = match t.get("url") {
        Some(v) => url(r, v),
        None => {
            r.cx.error(t.span.clone(), "a step needs a `url`");
            None
        }
    };
    let method = match t.get("method") {
        None => Some(http::Method::GET),
        Some(v) => r.cx.str(v).and_then(|s| {
            match http::Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    r.cx.error(v.span(), format!("invalid HTTP method {s:?}"));
                    None
                }
            }
        }),
    };
    let headers = t.get("headers").map(|v| headers(r, v));
    let query = t.get("query").map(|v| pairs(r, v, "query"));
    let body = super::request::body(r, t);
    let auth = t.get("auth").map(|v| {
        let explicit = headers.as_ref().and_then(|h| h.as_ref()).is_some_and(|h| {
            h.iter()
                .any(|(name, _)| name == http::header::AUTHORIZATION)
        });
        if explicit {
            r.cx.error(
                v.span(),
                "`auth` sets the Authorization header; remove it from `headers`",
            );
        }
        super::request::auth(r, v).filter(|_| !explicit)
    });
    let redirects = match t.get("follow_redirects") {
        None => Some(Redirects::default()),
        Some(v) => match v.get_ref() {
            DeValue::Boolean(true) => Some(Redirects::default()),
            DeValue::Boolean(false) => Some(Redirects::None),
            _ => r.cx.uint(v, 0..=100).map(|n| match n {
                0 => Redirects::None,
                n => Redirects::Follow(n as u32),
            }),
        },
    };
    Some(Request {
        method: method?,
        url: url?,
        headers: headers.unwrap_or(Some(Vec::new()))?,
        query: query.unwrap_or(Some(Vec::new()))?,
        body: body?,
        redirects: redirects?,
        auth: auth.map_or(Some(None), |a| a.map(Some))?,
    })
}

fn headers(r: &mut Reader, v: &Value) -> Option<Vec<(http::HeaderName, Template)>> {
    let pairs = pairs(r, v, "headers")?;
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in pairs {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => out.push((h, value)),
            Err(_) => {
                let span =
                    r.cx.src
                        .text
                        .find(&name)
                        .map_or(v.span(), |i| i..i + name.len());
                r.cx.error(span, format!("invalid header name {name:?}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
