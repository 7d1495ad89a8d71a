//! The daemon's own settings, `config.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::check_file::Defaults;
use super::diagnostic::{Diagnostic, Severity, Source};
use super::reader::{Ctx, Env, Table, Value, inner_span, valid_location, valid_name};
use super::values::template_text;
use crate::check::roles::{RoleConfig, Roles};
use crate::secret::Refused;
use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the check files live; relative paths are relative to the config file.
    pub checks_dir: PathBuf,
    /// At most this many runs at once, across all checks.
    pub concurrency: usize,
    pub user_agent: String,
    /// Responses larger than this (decoded) fail as `body_too_large`.
    pub max_body_size: crate::check::bounds::Size,
    pub log_format: LogFormat,
    /// The daemon's log level (`error` … `trace`); `RUST_LOG` overrides it.
    pub log_level: tracing::Level,
    /// Where `/metrics` and `/healthz` are served.
    pub listen: SocketAddr,
    /// On SIGTERM, in-flight runs get this long to finish before they are cancelled.
    pub shutdown_grace: std::time::Duration,
    /// `[server]`: how the HTTP server treats its clients.
    pub server: ServerLimits,
    pub defaults: Defaults,
    /// Names this deployment in incident keys (`scarecrow:{group}:{check}`):
    /// replicas watching the same checks share it, so receivers see one incident.
    pub instance_group: String,
    /// Where this daemon probes from (`location`, or `SCARECROW_LOCATION`,
    /// which wins): every location runs every check, its replicas share
    /// them, and a check declares once enough locations see it failing.
    pub location: String,
    /// Who is called in, globally and per owner.
    pub roles: RoleConfig,
    /// The SQLite database (runs, incidents, the outbox), unless
    /// `postgres` is set.
    pub store_path: PathBuf,
    /// `[store] url`: a PostgreSQL store instead of the SQLite file.
    pub postgres: Option<PostgresStore>,
    /// Runs kept per check.
    pub history: usize,
    /// Runs older than this are pruned (except those incidents refer to).
    pub retention: std::time::Duration,
    /// How long a notification is retried before it is dead-lettered.
    pub notify_retry_for: std::time::Duration,
    /// Where incidents are announced.
    pub sinks: Vec<crate::sink::SinkSpec>,
    /// A dead-man's switch pinged from the scheduler's progress.
    pub heartbeat: Option<(String, std::time::Duration)>,
    /// The bearer token every `/api` call must carry: a `${secret:…}` or
    /// `${file:…}` placeholder, read when the server starts.
    pub api_token: Option<Template>,
    /// Credentials `/metrics` asks for.
    pub metrics_auth: Option<MetricsAuth>,
    /// Planned work: checks run, nothing is declared.
    pub maintenance: Vec<crate::check::maintenance::Window>,
    /// The organisation's aim: at most this many incidents per 90 days.
    pub budget_90d: u64,
    /// The outage brake, when `[incidents] outage` sets it.
    pub outage: Option<crate::check::OutageRule>,
    /// `[incidents] store_down`: what replicas do while they cannot reach
    /// the PostgreSQL store.
    pub store_down: StoreDown,
    /// `[metrics]`: the per-check series beyond the default few.
    pub metrics: MetricsSettings,
    /// `[browser]`: the Chromium that browser steps run in.
    pub browser: crate::check::BrowserOptions,
    /// Where receivers reach this daemon (its status page and API), for
    /// links in what sinks send; ends in `/`.
    pub external_url: Option<url::Url>,
}

/// What replicas do while they cannot reach the PostgreSQL store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDown {
    /// Keep probing and hold the runs; declare nothing without the shared
    /// state (a dead-man alert on `scarecrow_store_up` tells of it).
    Hold,
    /// After a lease's length without the store, each replica declares
    /// from its own runs, with no lease: at least once, deduplicated by
    /// the receivers on the incident key, and handed back to the leader
    /// by that key once the store returns.
    Alone,
}

/// `[metrics]`: what each check adds to `/metrics`. By default a check has
/// about a dozen series; each of these opts into more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The bounds of the run-duration histogram, ascending. Without them a
    /// check has a gauge of its last run's duration instead (one series
    /// rather than the buckets + 3).
    pub duration_buckets: Option<Vec<std::time::Duration>>,
    /// The last run's time in each request phase (4 series a check).
    pub phases: bool,
    /// The last run's duration of each step (a series per step).
    pub per_step: bool,
    /// Each browser step's timings (5 series a browser step).
    pub browser: bool,
}

/// At most this many histogram bounds: each is a series of every check.
const MAX_DURATION_BUCKETS: usize = 30;

/// `[server]`: a client connection without a complete request, or idle,
/// is closed after `idle_timeout`; at most `max_connections` are open at
/// once (by default a quarter of the open-file limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub idle_timeout: std::time::Duration,
    pub max_connections: Option<usize>,
}

/// A PostgreSQL store, as `[store]` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresStore {
    /// `postgres://user@host:port/db`, without a password.
    pub url: String,
    /// A `${secret:…}` or `${file:…}` placeholder, read at start.
    pub password: Option<Template>,
    /// libpq's `sslmode`: one of [`SSL_MODES`].
    pub sslmode: String,
    /// PEM certificates trusted besides the system's roots.
    pub ca: Option<PathBuf>,
}

/// The `sslmode`s a PostgreSQL store takes, as libpq spells them (`allow`,
/// which tries plain text first, is left out).
pub const SSL_MODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];

/// How `/metrics` is protected (`[metrics_auth]`). Secrets stay placeholders
/// until the server starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAuth {
    Bearer(Template),
    Basic {
        username: String,
        password: Template,
    },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            checks_dir: PathBuf::from("checks"),
            concurrency: 64,
            user_agent: format!("scarecrow/{}", env!("CARGO_PKG_VERSION")),
            max_body_size: crate::check::bounds::Size::new(10 * 1024 * 1024)
                .expect("within bounds"),
            log_format: LogFormat::Text,
            log_level: tracing::Level::INFO,
            listen: SocketAddr::from(([127, 0, 0, 1], 9787)),
            shutdown_grace: std::time::Duration::from_secs(10),
            server: ServerLimits {
                idle_timeout: std::time::Duration::from_secs(30),
                max_connections: None,
            },
            defaults: Defaults::default(),
            instance_group: "default".to_owned(),
            location: crate::check::DEFAULT_LOCATION.to_owned(),
            roles: RoleConfig::default(),
            store_path: PathBuf::from("data/scarecrow.db"),
            postgres: None,
            history: 1000,
            retention: std::time::Duration::from_secs(30 * 86_400),
            notify_retry_for: std::time::Duration::from_secs(24 * 3600),
            sinks: Vec::new(),
            heartbeat: None,
            maintenance: Vec::new(),
            budget_90d: 1,
            outage: None,
            store_down: StoreDown::Hold,
            api_token: None,
            metrics_auth: None,
            metrics: MetricsSettings::default(),
            browser: crate::check::BrowserOptions::default(),
            external_url: None,
        }
    }
}

fn roles(cx: &mut Ctx, t: &Table) -> Roles {
    let mut text = |key| t.get(key).and_then(|v| cx.str(v)).map(str::to_owned);
    Roles {
        coordinator: text("coordinator"),
        operations: text("operations"),
        communications: text("communications"),
    }
}

pub fn parse(src: &Source, env: Env) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Ctx::new(src);
    let (root, errors) = toml::de::DeTable::parse_recoverable(&src.text);
    if !errors.is_empty() {
        let diags = errors
            .iter()
            .map(|e| {
                src.diagnostic(
                    Severity::Error,
                    e.span().unwrap_or(0..0),
                    format!("invalid TOML: {}", e.message().trim()),
                )
            })
            .collect();
        return Err(diags);
    }
    let mut c = Config::default();
    let t = Table::new(root.get_ref(), 0..0, "config.toml");
    let base = src
        .path
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .to_owned();
    // Sections in this order, so problems are reported as they always were.
    top_level(&mut cx, &t, &mut c, &base, env);
    if let Some(v) = t.get("server") {
        server(&mut cx, v, &mut c.server);
    }
    if let Some(v) = t.get("instance_group") {
        instance_group(&mut cx, v, &mut c.instance_group);
    }
    if let Some(v) = t.get("incidents") {
        incidents(&mut cx, v, &mut c);
    }
    if let Some(v) = t.get("roles") {
        role_config(&mut cx, v, &mut c.roles);
    }
    match t.get("store") {
        Some(v) => store(&mut cx, v, &mut c, &base, env),
        None => c.store_path = base.join(&c.store_path),
    }
    // Beside the store unless `[browser] screenshots` says otherwise.
    c.browser.screenshots = c.store_path.parent().unwrap_or(&base).join("screenshots");
    if let Some(v) = t.get("browser") {
        browser(&mut cx, v, &mut c.browser, &base);
    }
    if let Some(v) = t.get("maintenance") {
        c.maintenance = super::maintenance::parse(&mut cx, v, false);
    }
    if let Some(v) = t.get("heartbeat") {
        c.heartbeat = heartbeat(&mut cx, v, env);
    }
    if let Some(v) = t.get("api_token") {
        c.api_token = secret(&mut cx, v, env);
    }
    if let Some(v) = t.get("metrics_auth") {
        c.metrics_auth = metrics_auth(&mut cx, v, env);
    }
    if let Some(v) = t.get("metrics") {
        metrics(&mut cx, v, &mut c.metrics);
    }
    if let Some(v) = t.get("sinks") {
        c.sinks = crate::sink::read::read_sinks(&mut cx, v, env);
    }
    if let Some(v) = t.get("defaults") {
        defaults(&mut cx, v, env, &mut c.defaults);
    }
    c.defaults.grants = std::sync::Arc::new(grants(&mut cx, &t, &c.checks_dir, &base));
    t.finish(&mut cx);
    match cx.diags.iter().any(Diagnostic::is_error) {
        true => Err(cx.diags),
        false => Ok(c),
    }
}

/// The keys outside any section: where checks are, how runs go, logging,
/// the listen address and the shutdown grace.
fn top_level(cx: &mut Ctx, t: &Table, c: &mut Config, base: &std::path::Path, env: Env) {
    if let Some(v) = t.get("checks_dir") {
        if let Some(s) = cx.str(v) {
            match template_text(s, env) {
                Ok(s) => c.checks_dir = base.join(s),
                Err(e) => cx.error(v.span(), e),
            }
        }
    } else {
        c.checks_dir = base.join("checks");
    }
    if let Some(v) = t.get("concurrency") {
        c.concurrency = cx
            .uint(v, 1..=100_000)
            .map_or(c.concurrency, |n| n as usize);
    }
    if let Some(v) = t.get("user_agent") {
        c.user_agent = cx.str(v).map_or(c.user_agent.clone(), str::to_owned);
    }
    if let Some(v) = t.get("max_body_size") {
        c.max_body_size = cx.size(v).unwrap_or(c.max_body_size);
    }
    if let Some(v) = t.get("log_format") {
        match cx.str(v) {
            Some("text") => c.log_format = LogFormat::Text,
            Some("json") => c.log_format = LogFormat::Json,
            Some(other) => cx.error(
                v.span(),
                format!("log_format is \"text\" or \"json\", found {other:?}"),
            ),
            None => {}
        }
    }
    if let Some(v) = t.get("log_level")
        && let Some(s) = cx.str(v)
    {
        match s.parse::<tracing::Level>() {
            Ok(level) => c.log_level = level,
            Err(_) => cx.error(
                v.span(),
                format!("log_level is \"error\", \"warn\", \"info\", \"debug\" or \"trace\", found {s:?}"),
            ),
        }
    }
    if let Some(v) = t.get("listen")
        && let Some(s) = cx.str(v)
    {
        match s.parse() {
            Ok(a) => c.listen = a,
            Err(_) => cx.error(
                v.span(),
                format!("invalid listen address {s:?} (write e.g. \"127.0.0.1:9787\")"),
            ),
        }
    }
    if let Some(v) = t.get("shutdown_grace") {
        c.shutdown_grace = cx.duration(v).unwrap_or(c.shutdown_grace);
    }
    if let Some(v) = t.get("external_url")
        && let Some(s) = cx.str(v)
    {
        match url::Url::parse(s) {
            Ok(mut u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                // Joined with relative paths: a base without its `/` would
                // lose its last segment.
                if !u.path().ends_with('/') {
                    u.set_path(&format!("{}/", u.path()));
                }
                c.external_url = Some(u);
            }
            _ => cx.error(
                v.span(),
                format!("external_url must be an http(s) URL, found {s:?}"),
            ),
        }
    }
    // The same config.toml serves every location: the environment names
    // the one a daemon is in.
    match (env("SCARECROW_LOCATION"), t.get("location")) {
        (Some(l), _) if valid_location(&l) => c.location = l,
        (Some(l), v) => cx.error(
            v.map_or(0..0, |v| v.span()),
            format!("SCARECROW_LOCATION {l:?} is not a location: a-z, 0-9 and `-`, at most 63"),
        ),
        (None, Some(v)) => match cx.str(v) {
            Some(l) if valid_location(l) => l.clone_into(&mut c.location),
            Some(l) => cx.error(
                v.span(),
                format!("location {l:?} may only use a-z, 0-9 and `-` (at most 63)"),
            ),
            None => {}
        },
        (None, None) => {}
    }
}

/// `[browser]`.
fn browser(cx: &mut Ctx, v: &Value, b: &mut crate::check::BrowserOptions, base: &std::path::Path) {
    let Some(t) = cx.table(v, "[browser]") else {
        return;
    };
    if let Some(v) = t.get("path") {
        // A bare name is looked up on PATH; a path is relative to this file.
        b.path = cx.str(v).map(|p| match p.contains('/') {
            true => base.join(p),
            false => p.into(),
        });
    }
    if let Some(v) = t.get("sandbox") {
        b.sandbox = cx.bool(v).unwrap_or(b.sandbox);
    }
    if let Some(v) = t.get("concurrency") {
        b.concurrency = cx.uint(v, 1..=64).map_or(b.concurrency, |n| n as usize);
    }
    if let Some(p) = t.get("screenshots").and_then(|v| cx.str(v)) {
        b.screenshots = base.join(p);
    }
    if let Some(v) = t.get("locale") {
        match cx.str(v) {
            Some(l)
                if !l.is_empty()
                    && l.len() <= 35
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                l.clone_into(&mut b.locale);
            }
            Some(l) => cx.error(
                v.span(),
                format!("locale {l:?} is not a language tag such as \"de-DE\""),
            ),
            None => {}
        }
    }
    if let Some(v) = t.get("timezone") {
        match cx.str(v) {
            Some(z) if z.parse::<chrono_tz::Tz>().is_ok() => z.clone_into(&mut b.timezone),
            Some(z) => cx.error(
                v.span(),
                format!("unknown time zone {z:?} (write e.g. \"Europe/Berlin\")"),
            ),
            None => {}
        }
    }
    if let Some(v) = t.get("user_agent") {
        b.user_agent = cx.str(v).map(str::to_owned);
    }
    t.finish(cx);
}

/// `[server]`.
fn server(cx: &mut Ctx, v: &Value, limits: &mut ServerLimits) {
    let Some(st) = cx.table(v, "[server]") else {
        return;
    };
    if let Some(v) = st.get("idle_timeout") {
        limits.idle_timeout = cx.duration(v).unwrap_or(limits.idle_timeout);
    }
    if let Some(v) = st.get("max_connections") {
        limits.max_connections = cx.uint(v, 1..=1_000_000).map(|n| n as usize);
    }
    st.finish(cx);
}

/// `instance_group`: a name, as check names are written.
fn instance_group(cx: &mut Ctx, v: &Value, group: &mut String) {
    match cx.str(v) {
        Some(g) if valid_name(g) => g.clone_into(group),
        Some(g) => cx.error(
            v.span(),
            format!("instance_group {g:?} may only use a-z, 0-9, `_` and `-`"),
        ),
        None => {}
    }
}

/// `[incidents]`: the defaults of every check's incident rules, the budget
/// and how long a notification is retried.
fn incidents(cx: &mut Ctx, v: &Value, c: &mut Config) {
    let Some(it) = cx.table(v, "[incidents]") else {
        return;
    };
    c.defaults.incidents = super::check_file::incident_rules(cx, &it, c.defaults.incidents.clone());
    if let Some(v) = it.get("budget_90d") {
        c.budget_90d = cx.uint(v, 0..=100_000).unwrap_or(c.budget_90d);
    }
    if let Some(v) = it.get("notify_retry_for") {
        c.notify_retry_for = cx.duration(v).unwrap_or(c.notify_retry_for);
    }
    if let Some(v) = it.get("outage") {
        c.outage = outage(cx, v);
    }
    if let Some(v) = it.get("store_down") {
        match cx.str(v) {
            Some("hold") => c.store_down = StoreDown::Hold,
            Some("alone") => c.store_down = StoreDown::Alone,
            Some(other) => cx.error(
                v.span(),
                format!("store_down is \"hold\" or \"alone\", found {other:?}"),
            ),
            None => {}
        }
    }
    it.finish(cx);
}

/// `outage = { min_checks = 5, min_share = "30%", window = "2m" }`.
fn outage(cx: &mut Ctx, v: &Value) -> Option<crate::check::OutageRule> {
    let t = cx.table(v, "outage")?;
    let min_checks = match t.get("min_checks") {
        Some(v) => cx.uint(v, 1..=1_000_000)? as u32,
        None => 1,
    };
    let min_share = match t.get("min_share") {
        Some(v) => {
            let text = cx.str(v)?;
            let share = text
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n));
            match share {
                Some(n) => n / 100.0,
                None => {
                    cx.error(
                        v.span(),
                        format!(
                            "min_share is a percentage from \"0%\" to \"100%\", found {text:?}"
                        ),
                    );
                    return None;
                }
            }
        }
        None => 0.0,
    };
    let window = match t.get("window") {
        Some(v) => cx.duration(v)?,
        None => std::time::Duration::from_secs(120),
    };
    t.finish(cx);
    Some(crate::check::OutageRule {
        min_checks,
        min_share,
        window,
    })
}

/// `[roles]` and `[roles.owners.<owner>]`.
fn role_config(cx: &mut Ctx, v: &Value, config: &mut RoleConfig) {
    let Some(rt) = cx.table(v, "[roles]") else {
        return;
    };
    config.global = roles(cx, &rt);
    if let Some(ov) = rt.get("owners")
        && let Some(ot) = cx.table(ov, "[roles.owners]")
    {
        for (owner, _, value) in ot.entries() {
            if let Some(t) = cx.table(value, "[roles.owners.<owner>]") {
                let r = roles(cx, &t);
                t.finish(cx);
                config.owners.insert(owner.to_owned(), r);
            }
        }
    }
    rt.finish(cx);
}

/// `[store]`: where the database is and how much history it keeps.
fn store(cx: &mut Ctx, v: &Value, c: &mut Config, base: &std::path::Path, env: Env) {
    let Some(st) = cx.table(v, "[store]") else {
        return;
    };
    if let Some(v) = st.get("path")
        && let Some(p) = cx.str(v)
    {
        match template_text(p, env) {
            Ok(p) => c.store_path = base.join(p),
            Err(e) => cx.error(v.span(), e),
        }
    }
    if let Some(v) = st.get("url") {
        if st.get("path").is_some() {
            cx.error(
                v.span(),
                "`url` and `path` name two stores: PostgreSQL at `url`, or SQLite at `path`",
            );
        }
        c.postgres = postgres_url(cx, v, env).map(|url| PostgresStore {
            url,
            password: st.get("password").and_then(|p| secret(cx, p, env)),
            sslmode: st
                .get("sslmode")
                .and_then(|m| {
                    let mode = cx.str(m)?;
                    if SSL_MODES.contains(&mode) {
                        return Some(mode.to_owned());
                    }
                    cx.error(
                        m.span(),
                        format!("`sslmode` is one of {}", SSL_MODES.join(", ")),
                    );
                    None
                })
                .unwrap_or_else(|| "prefer".to_owned()),
            ca: st.get("ca").and_then(|p| cx.str(p)).map(|p| base.join(p)),
        });
    } else {
        for key in ["password", "sslmode", "ca"] {
            if let Some(v) = st.get(key) {
                cx.error(
                    v.span(),
                    format!("`{key}` belongs to a PostgreSQL store: set `url` too"),
                );
            }
        }
    }
    if let Some(v) = st.get("retention") {
        c.retention = cx.duration(v).unwrap_or(c.retention);
    }
    if let Some(v) = st.get("history") {
        c.history = cx.uint(v, 1..=1_000_000).map_or(c.history, |n| n as usize);
    }
    st.finish(cx);
}

/// `[store] url`: a `postgres://` URL, its password left to `password`.
fn postgres_url(cx: &mut Ctx, v: &Value, env: Env) -> Option<String> {
    let text = cx.str(v)?;
    let text = match template_text(text, env) {
        Ok(t) => t,
        Err(e) => {
            cx.error(v.span(), e);
            return None;
        }
    };
    let problem = match url::Url::parse(&text) {
        Err(e) => format!("not a URL: {e}"),
        Ok(u) if !matches!(u.scheme(), "postgres" | "postgresql") => {
            format!("a PostgreSQL URL starts with postgres://, not {}://", u.scheme())
        }
        Ok(u) if u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password") => {
            "the URL holds a password: write `password = \"${secret:NAME}\"` instead (a URL also breaks on `@` or `/` in one)".to_owned()
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => "the URL names no host".to_owned(),
        Ok(_) => return Some(text),
    };
    cx.error(v.span(), problem);
    None
}

/// `[heartbeat]`: the URL pinged and how often.
fn heartbeat(cx: &mut Ctx, v: &Value, env: Env) -> Option<(String, std::time::Duration)> {
    let h = cx.table(v, "[heartbeat]")?;
    let url = h.get("url").and_then(|v| {
        let s = cx.str(v)?;
        match template_text(s, env).map(|u| (url::Url::parse(&u), u)) {
            Ok((Ok(_), u)) => Some(u),
            Ok((Err(e), _)) => {
                cx.error(v.span(), format!("invalid heartbeat URL: {e}"));
                None
            }
            Err(e) => {
                cx.error(v.span(), e);
                None
            }
        }
    });
    let every = h
        .get("every")
        .map_or(Some(std::time::Duration::from_secs(60)), |v| cx.duration(v));
    if h.get("url").is_none() {
        cx.error(h.span.clone(), "[heartbeat] needs a `url`");
    }
    h.finish(cx);
    url.zip(every)
}

/// `[defaults]`: what a check file that says nothing gets.
fn defaults(cx: &mut Ctx, v: &Value, env: Env, defaults: &mut Defaults) {
    let Some(d) = cx.table(v, "[defaults]") else {
        return;
    };
    if let Some(v) = d.get("timeout") {
        defaults.timeout = cx.duration(v).unwrap_or(defaults.timeout);
    }
    if let Some(v) = d.get("every") {
        defaults.every = cx.duration(v).unwrap_or(defaults.every);
    }
    if let Some(v) = d.get("proxy") {
        defaults.proxy = super::connection::proxy(cx, v, env);
    }
    if let Some(v) = d.get("no_proxy") {
        for (host, span) in cx.strings(v) {
            if host.trim().is_empty() || host.contains(',') {
                cx.error(span, "expected a host, domain or IP network, one per entry");
            } else {
                defaults.no_proxy.push(host.trim().to_owned());
            }
        }
        if defaults.proxy.is_none() {
            cx.error(v.span(), "`no_proxy` needs a `proxy` in `[defaults]`");
        }
    }
    d.finish(cx);
}

/// `[[grant]]`: what check files may reach, and the daemon's own secrets
/// (every other `${secret:}` and `${file:}` of `config.toml`), which they
/// never reach.
fn grants(
    cx: &mut Ctx,
    t: &Table,
    checks_dir: &std::path::Path,
    base: &std::path::Path,
) -> super::grant::Policy {
    let grants = t.get("grant").map(|v| super::grant::read(cx, v, base));
    let reserved = super::grant::reserved(t.inner());
    super::grant::Policy::new(grants, checks_dir.to_owned(), reserved)
}

/// `[metrics_auth]`: `bearer = "${secret:…}"` or
/// `basic = { username = "…", password = "${secret:…}" }`.
fn metrics_auth(cx: &mut Ctx, v: &Value, env: Env) -> Option<MetricsAuth> {
    let t = cx.table(v, "[metrics_auth]")?;
    let auth = match (t.get("bearer"), t.get("basic")) {
        (Some(b), None) => secret(cx, b, env).map(MetricsAuth::Bearer),
        (None, Some(b)) => {
            let bt = cx.table(b, "[metrics_auth.basic]")?;
            let username = match bt.get("username") {
                Some(u) => username(cx, u, env),
                None => {
                    cx.error(bt.span.clone(), "[metrics_auth.basic] needs a `username`");
                    None
                }
            };
            let password = match bt.get("password") {
                Some(p) => secret(cx, p, env),
                None => {
                    cx.error(bt.span.clone(), "[metrics_auth.basic] needs a `password`");
                    None
                }
            };
            bt.finish(cx);
            username
                .zip(password)
                .map(|(username, password)| MetricsAuth::Basic { username, password })
        }
        (Some(_), Some(_)) => {
            cx.error(
                t.span.clone(),
                "[metrics_auth] takes `bearer` or `basic`, not both",
            );
            None
        }
        (None, None) => {
            cx.error(t.span.clone(), "[metrics_auth] needs `bearer` or `basic`");
            None
        }
    };
    t.finish(cx);
    auth
}

/// `[metrics]`: `duration_buckets`, `phases`, `per_step`.
fn metrics(cx: &mut Ctx, v: &Value, m: &mut MetricsSettings) {
    let Some(mt) = cx.table(v, "[metrics]") else {
        return;
    };
    if let Some(v) = mt.get("duration_buckets") {
        m.duration_buckets = duration_buckets(cx, v);
    }
    if let Some(v) = mt.get("phases") {
        m.phases = cx.bool(v).unwrap_or(m.phases);
    }
    if let Some(v) = mt.get("per_step") {
        m.per_step = cx.bool(v).unwrap_or(m.per_step);
    }
    if let Some(v) = mt.get("browser") {
        m.browser = cx.bool(v).unwrap_or(m.browser);
    }
    mt.finish(cx);
}

/// Histogram bounds: durations, each above the one before.
fn duration_buckets(cx: &mut Ctx, v: &Value) -> Option<Vec<std::time::Duration>> {
    let items = cx.array(v)?;
    if items.is_empty() || items.len() > MAX_DURATION_BUCKETS {
        cx.error(
            v.span(),
            format!("duration_buckets takes 1 to {MAX_DURATION_BUCKETS} bounds, found {}; leave it out for a gauge of the last run's duration", items.len()),
        );
        return None;
    }
    let mut bounds: Vec<std::time::Duration> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        let Some(d) = cx.duration(item) else {
            ok = false;
            continue;
        };
        if let Some(&before) = bounds.last()
            && d <= before
        {
            cx.error(
                item.span(),
                format!(
                    "bucket bounds go up: {} follows {}",
                    crate::check::words::human(d),
                    crate::check::words::human(before)
                ),
            );
            ok = false;
        }
        bounds.push(d);
    }
    ok.then_some(bounds)
}

/// A basic-auth user name: not a secret, so written plainly or with `${env:…}`.
fn username(cx: &mut Ctx, v: &Value, env: Env) -> Option<String> {
    let s = cx.str(v)?;
    match template_text(s, env) {
        Ok(u) if u.is_empty() || u.contains(':') => {
            cx.error(
                v.span(),
                "a basic-auth username is not empty and has no `:`",
            );
            None
        }
        Ok(u) => Some(u),
        Err(e) => {
            cx.error(v.span(), e);
            None
        }
    }
}

/// A secret: `${secret:NAME}` (the environment, read at start) or
/// `${file:PATH}`, never the value itself written in the config.
fn secret(cx: &mut Ctx, v: &Value, env: Env) -> Option<Template> {
    let s = cx.str(v)?;
    let parsed = match crate::secret::credential(s, env) {
        Ok(t) => t,
        Err(Refused::Syntax(e)) => {
            let span = inner_span(cx, v.span(), e.offset, e.len);
            cx.error(span, e.message);
            return None;
        }
        Err(Refused::Literal { via_env }) => {
            let d = cx.src.diagnostic(
                Severity::Error,
                v.span(),
                "secrets come from the environment or files, never from the config".to_owned(),
            );
            cx.push(d.with_help(match via_env {
                true => "`${env:…}` is resolved into the config; write `${secret:NAME}`, read when the server starts",
                false => "write `${secret:NAME}` (an environment variable) or `${file:/run/secrets/…}`",
            }));
            return None;
        }
        Err(Refused::Capture) => {
            cx.error(v.span(), "`${capture:…}` exists only within a check run");
            return None;
        }
    };
    for name in crate::secret::unset(&parsed, env) {
        cx.warning(
            v.span(),
            format!("secret `{name}` is not set in the environment; the daemon will not start until it is"),
        );
    }
    Some(parsed)
}

#[cfg(test)]
mod server_auth_tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SCARECROW_API_TOKEN").then(|| "t0ken".to_owned())
    }

    fn load(text: &str) -> Result<Config, Vec<String>> {
        let src = Source::new("config.toml", text.to_owned());
        parse(&src, &env).map_err(|ds| {
            ds.iter()
                .filter(|d| d.is_error())
                .map(|d| d.message.clone())
                .collect()
        })
    }

    #[test]
    fn server_secrets_stay_placeholders() {
        let c = load(
            "api_token = \"${secret:SCARECROW_API_TOKEN}\"\n[metrics_auth]\nbasic = { username = \"prom\", password = \"${file:/run/secrets/metrics}\" }\n",
        )
        .unwrap();
        assert_eq!(
            c.api_token.unwrap().to_string(),
            "${secret:SCARECROW_API_TOKEN}"
        );
        match c.metrics_auth {
            Some(MetricsAuth::Basic { username, password }) => {
                assert_eq!(username, "prom");
                assert_eq!(password.to_string(), "${file:/run/secrets/metrics}");
            }
            other => panic!("{other:?}"),
        }
        let c = load("[metrics_auth]\nbearer = \"${secret:SCARECROW_API_TOKEN}\"\n").unwrap();
        assert!(matches!(c.metrics_auth, Some(MetricsAuth::Bearer(_))));
    }

    #[test]
    fn a_literal_server_secret_is_an_error() {
        for text in [
            "api_token = \"hunter2\"\n",
            "api_token = \"${env:SCARECROW_API_TOKEN}\"\n",
            "[metrics_auth]\nbearer = \"hunter2\"\n",
            "[metrics_auth]\nbasic = { username = \"prom\", password = \"hunter2\" }\n",
        ] {
            assert_eq!(
                load(text).unwrap_err(),
                ["secrets come from the environment or files, never from the config"],
                "{text}"
            );
        }
        assert_eq!(
            load("[metrics_auth]\nbasic = { username = \"a:b\", password = \"${secret:X}\" }\n")
                .unwrap_err(),
            ["a basic-auth username is not empty and has no `:`"]
        );
        assert_eq!(
            load("[metrics_auth]\n").unwrap_err(),
            ["[metrics_auth] needs `bearer` or `basic`"]
        );
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    fn load(text: &str) -> Result<MetricsSettings, Vec<String>> {
        let src = Source::new("config.toml", text.to_owned());
        parse(&src, &|_| None).map(|c| c.metrics).map_err(|ds| {
            ds.iter()
                .filter(|d| d.is_error())
                .map(|d| d.message.clone())
                .collect()
        })
    }

    #[test]
    fn metrics_are_lean_unless_asked() {
        assert_eq!(load("").unwrap(), MetricsSettings::default());
        let m = load(
            "[metrics]\nduration_buckets = [\"100ms\", \"1s\", \"1m\"]\nphases = true\nper_step = true\nbrowser = true\n",
        )
        .unwrap();
        assert_eq!(
            m,
            MetricsSettings {
                duration_buckets: Some(vec![
                    std::time::Duration::from_millis(100),
                    std::time::Duration::from_secs(1),
                    std::time::Duration::from_secs(60),
                ]),
                phases: true,
                per_step: true,
                browser: true,
            }
        );
    }

    #[test]
    fn bad_metrics_settings_are_load_errors() {
        assert_eq!(
            load("[metrics]\nduration_buckets = [\"1s\", \"500ms\"]\n").unwrap_err(),
            ["bucket bounds go up: 500ms follows 1s"]
        );
        assert_eq!(
            load("[metrics]\nduration_buckets = []\n").unwrap_err(),
            [
                "duration_buckets takes 1 to 30 bounds, found 0; leave it out for a gauge of the last run's duration"
            ]
        );
        assert_eq!(load("[metrics]\nphases = 1\n").unwrap_err().len(), 1);
        let unknown = load("[metrics]\nper_steps = true\n").unwrap_err();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Vec<String>> {
        let src = Source::new("config.toml", text.to_owned());
        let env = |name: &str| (name == "PG_PASSWORD").then(|| "p@ss/w".to_owned());
        parse(&src, &env).map_err(|ds| {
            ds.iter()
                .filter(|d| d.is_error())
                .map(|d| d.message.clone())
                .collect()
        })
    }

    #[test]
    fn replicas_hold_while_the_store_is_down_unless_told_to_declare_alone() {
        assert_eq!(load("").unwrap().store_down, StoreDown::Hold);
        let alone = load("[incidents]\nstore_down = \"alone\"\n").unwrap();
        assert_eq!(alone.store_down, StoreDown::Alone);
        let e = load("[incidents]\nstore_down = \"panic\"\n").unwrap_err();
        assert_eq!(e, ["store_down is \"hold\" or \"alone\", found \"panic\""]);
    }

    #[test]
    fn a_postgres_store_takes_its_password_apart_from_the_url() {
        let c = load(
            "[store]\nurl = \"postgres://scarecrow@db:5432/monitor\"\npassword = \"${secret:PG_PASSWORD}\"\nsslmode = \"verify-full\"\n",
        )
        .unwrap();
        let pg = c.postgres.unwrap();
        assert_eq!(pg.url, "postgres://scarecrow@db:5432/monitor");
        assert_eq!(pg.password.unwrap().to_string(), "${secret:PG_PASSWORD}");
        assert_eq!(pg.sslmode, "verify-full");
        assert_eq!(load("").unwrap().postgres, None);
    }

    #[test]
    fn a_postgres_store_is_refused_what_would_leak_or_mislead() {
        for (text, error) in [
            (
                "url = \"postgres://u:secret@db/x\"",
                "the URL holds a password",
            ),
            (
                "url = \"postgres://db/x?password=secret\"",
                "the URL holds a password",
            ),
            ("url = \"mysql://db/x\"", "starts with postgres://"),
            (
                "url = \"postgres://db/x\"\npassword = \"hunter2\"",
                "never from the config",
            ),
            (
                "url = \"postgres://db/x\"\nsslmode = \"allow\"",
                "`sslmode` is one of",
            ),
            (
                "url = \"postgres://db/x\"\npath = \"a.db\"",
                "name two stores",
            ),
            ("sslmode = \"require\"", "set `url` too"),
        ] {
            let errors = load(&format!("[store]\n{text}\n")).unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains(error)),
                "{text}: {errors:?}"
            );
        }
    }
}
