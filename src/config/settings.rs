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
        }
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
