//! Command-line interface definitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "scarecrow",
    version,
    about = "Synthetic monitoring and smoke tests for business-critical web features"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: every check on its schedule, metrics on /metrics.
    Run {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The demo site on 127.0.0.1:8780 and the daemon with the shipped checks against it.
    Demo {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:8780")]
        site: SocketAddr,
    },
    /// List incidents from the store (works while the daemon runs), or resolve one by hand.
    Incidents(IncidentsArgs),
    /// Print a post-mortem draft of an incident from the store.
    Postmortem {
        id: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DraftFormat::Markdown)]
        format: DraftFormat,
    },
    /// Send a [TEST] declaration and its resolution through one sink, now; exit 0 if both were delivered.
    Notify(NotifyArgs),
    /// Work on a store: copy a SQLite store into PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Exit 0 if the daemon's /healthz answers (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9787/healthz")]
        url: String,
    },
    /// Run the selected checks now and exit: 0 all passed, 1 a check failed, 2 config or usage error.
    Once(OnceArgs),
    /// Load and check the config and check files, run nothing; exit 0 or 2.
    Validate {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check files or directories (default: the config's checks directory).
        paths: Vec<PathBuf>,
    },
    /// Serve the built-in demo site alone.
    DemoSite {
        #[arg(long, default_value = "127.0.0.1:8780")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
pub struct OnceArgs {
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    /// Only checks with this label (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Only critical checks.
    #[arg(long)]
    pub critical: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Re-run failing checks until they pass or this much time has passed (rolling deploys).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,
}

#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// The sink's `name` in config.toml.
    #[arg(long = "test", value_name = "SINK")]
    pub sink: String,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy runs, incidents with their timelines and notifications, and check states from a
    /// SQLite store into a PostgreSQL one; run it again to finish an interrupted copy. The
    /// password comes from PGPASSWORD; no daemon may write to the target meanwhile.
    Copy {
        /// The SQLite database file (`[store] path`).
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// postgres://user@host:port/db, without the password.
        #[arg(long, value_name = "URL")]
        to: String,
        /// As libpq: disable, prefer, require, verify-ca, verify-full.
        #[arg(long, default_value = "prefer")]
        sslmode: String,
        /// PEM certificates to trust besides the system's roots.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub command: Option<IncidentsCommand>,
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Only open incidents.
    #[arg(long)]
    pub open: bool,
    #[arg(long, value_enum, default_value_t = ListFormat::Human)]
    pub format: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Resolve an open incident by hand and send the resolution.
    Resolve {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DraftFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))
}

/// Within the bounds every duration a user writes has.
fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<crate::check::bounds::Period>()
        .map(|p| p.get())
        .map_err(|e| e.to_string())
}
