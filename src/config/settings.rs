//! The daemon's own settings, `config.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::check_file::{Defaults, Env};
use super::diagnostic::{Diagnostic, Source};
use super::reader::{Ctx, Table};

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
    pub max_body_size: u64,
    pub log_format: LogFormat,
    /// Where `/metrics` and `/healthz` are served.
    pub listen: SocketAddr,
    /// On SIGTERM, in-flight runs get this long to finish before they are cancelled.
    pub shutdown_grace: std::time::Duration,
    pub defaults: Defaults,
    /// Names this deployment in incident keys (`scarecrow:{group}:{check}`):
    /// replicas watching the same checks share it, so receivers see one incident.
    pub instance_group: String,
    /// Who is called in, globally and per owner.
    pub roles: RoleConfig,
    /// The SQLite database (runs, incidents, the outbox).
    pub store_path: PathBuf,
    /// Runs kept per check.
    pub history: usize,
    /// How long a notification is retried before it is dead-lettered.
    pub notify_retry_for: std::time::Duration,
    /// Where incidents are announced.
    pub sinks: Vec<super::sinks::SinkSpec>,
}

/// Incident roles: names, handles or channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    pub coordinator: Option<String>,
    pub operations: Option<String>,
    pub communications: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleConfig {
    pub global: Roles,
    /// Per owner; a role an owner does not name falls back to the global one.
    pub owners: std::collections::BTreeMap<String, Roles>,
}

impl RoleConfig {
    /// The roles for a check of `owner`.
    pub fn for_owner(&self, owner: Option<&str>) -> Roles {
        let own = owner.and_then(|o| self.owners.get(o));
        let pick = |f: fn(&Roles) -> &Option<String>| {
            own.and_then(|r| f(r).clone())
                .or_else(|| f(&self.global).clone())
        };
        Roles {
            coordinator: pick(|r| &r.coordinator),
            operations: pick(|r| &r.operations),
            communications: pick(|r| &r.communications),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            checks_dir: PathBuf::from("checks"),
            concurrency: 64,
            user_agent: format!("scarecrow/{}", env!("CARGO_PKG_VERSION")),
            max_body_size: 10 * 1024 * 1024,
            log_format: LogFormat::Text,
            listen: SocketAddr::from(([127, 0, 0, 1], 9787)),
            shutdown_grace: std::time::Duration::from_secs(10),
            defaults: Defaults::default(),
            instance_group: "default".to_owned(),
            roles: RoleConfig::default(),
            store_path: PathBuf::from("data/scarecrow.db"),
            history: 1000,
            notify_retry_for: std::time::Duration::from_secs(24 * 3600),
            sinks: Vec::new(),
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
                    super::Severity::Error,
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
    if let Some(v) = t.get("checks_dir") {
        if let Some(s) = cx.str(v) {
            match super::check_file::template_text(s, env) {
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
        c.user_agent = cx.str(v).map_or(c.user_agent, str::to_owned);
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
    if let Some(v) = t.get("listen") {
        if let Some(s) = cx.str(v) {
            match s.parse() {
                Ok(a) => c.listen = a,
                Err(_) => cx.error(
                    v.span(),
                    format!("invalid listen address {s:?} (write e.g. \"127.0.0.1:9787\")"),
                ),
            }
        }
    }
    if let Some(v) = t.get("shutdown_grace") {
        c.shutdown_grace = cx.duration(v).unwrap_or(c.shutdown_grace);
    }
    if let Some(v) = t.get("instance_group") {
        match cx.str(v) {
            Some(g) if super::check_file::valid_name(g) => c.instance_group = g.to_owned(),
            Some(g) => cx.error(
                v.span(),
                format!("instance_group {g:?} may only use a-z, 0-9, `_` and `-`"),
            ),
            None => {}
        }
    }
    if let Some(v) = t.get("incidents") {
        if let Some(it) = cx.table(v, "[incidents]") {
            c.defaults.incidents =
                super::check_file::incident_rules(&mut cx, &it, c.defaults.incidents);
            if let Some(v) = it.get("notify_retry_for") {
                c.notify_retry_for = cx.duration(v).unwrap_or(c.notify_retry_for);
            }
            it.finish(&mut cx);
        }
    }
    if let Some(v) = t.get("roles") {
        if let Some(rt) = cx.table(v, "[roles]") {
            c.roles.global = roles(&mut cx, &rt);
            if let Some(ov) = rt.get("owners") {
                if let Some(ot) = cx.table(ov, "[roles.owners]") {
                    for (owner, _, value) in ot.entries() {
                        if let Some(t) = cx.table(value, "[roles.owners.<owner>]") {
                            let r = roles(&mut cx, &t);
                            t.finish(&mut cx);
                            c.roles.owners.insert(owner.to_owned(), r);
                        }
                    }
                }
            }
            rt.finish(&mut cx);
        }
    }
    if let Some(v) = t.get("store") {
        if let Some(st) = cx.table(v, "[store]") {
            if let Some(v) = st.get("path") {
                if let Some(p) = cx.str(v) {
                    match super::check_file::template_text(p, env) {
                        Ok(p) => c.store_path = base.join(p),
                        Err(e) => cx.error(v.span(), e),
                    }
                }
            }
            if let Some(v) = st.get("history") {
                c.history = cx.uint(v, 1..=1_000_000).map_or(c.history, |n| n as usize);
            }
            st.finish(&mut cx);
        }
    } else {
        c.store_path = base.join(&c.store_path);
    }
    if let Some(v) = t.get("sinks") {
        c.sinks = super::sinks::parse_sinks(&mut cx, v, env);
    }
    if let Some(v) = t.get("defaults") {
        if let Some(d) = cx.table(v, "[defaults]") {
            if let Some(v) = d.get("timeout") {
                c.defaults.timeout = cx.duration(v).unwrap_or(c.defaults.timeout);
            }
            if let Some(v) = d.get("every") {
                c.defaults.every = cx.duration(v).unwrap_or(c.defaults.every);
            }
            d.finish(&mut cx);
        }
    }
    t.finish(&mut cx);
    match cx.diags.iter().any(Diagnostic::is_error) {
        true => Err(cx.diags),
        false => Ok(c),
    }
}
