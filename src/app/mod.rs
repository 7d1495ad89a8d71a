//! Wiring: turns a parsed command line into work and an exit code. Only this
//! module knows every other part.

mod daemon;
mod heartbeat;
mod incidents;
mod incidents_cli;
mod notify;
mod once;
mod telemetry;

use std::io::Write as _;

use tracing_subscriber::filter::Targets;

use crate::check::words::count;
use crate::cli::{Cli, Command};
use crate::config::{Diagnostic, LogFormat};
use crate::secret::Secrets;

/// How the process ends; the numbers are part of the CLI's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    CheckFailed = 1,
    Config = 2,
}

/// Runs one command to completion.
pub async fn main(cli: Cli) -> Exit {
    match cli.command {
        Command::Run { config } => daemon::run(config.as_deref(), Secrets::default()).await,
        Command::Demo { config, site } => demo(config, site).await,
        Command::Healthcheck { url } => healthcheck(&url).await,
        Command::Notify(args) => notify::run(args).await,
        Command::Postmortem { id, config, format } => {
            init_tracing("warn", LogFormat::Text);
            incidents_cli::postmortem(&id, config.as_deref(), format)
        }
        Command::Incidents(args) => {
            init_tracing("warn", LogFormat::Text);
            incidents_cli::run(args).await
        }
        Command::Once(args) => {
            init_tracing("warn", LogFormat::Text);
            once::run(args).await
        }
        Command::Validate { config, paths } => {
            init_tracing("warn", LogFormat::Text);
            validate(config.as_deref(), paths)
        }
        Command::DemoSite { listen } => {
            init_tracing("info", LogFormat::Text);
            demo_site(listen).await
        }
    }
}

/// Libraries whose debug logs quote response bodies.
const QUIET_TARGETS: [&str; 5] = [
    "html5ever",
    "markup5ever",
    "selectors",
    "scraper",
    "cssparser",
];

/// Logs go to stderr; `RUST_LOG` overrides the level.
fn init_tracing(default: &str, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // `RUST_LOG` in its `target=level,level` form. A plain target filter
    // rather than `EnvFilter`: that one pulls in regex-automata's full-DFA
    // builder, which then compiles every check's regex into a full DFA
    // (about 17 KB each instead of 7 KB).
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter: Targets = spec
        .parse()
        .unwrap_or_else(|_| default.parse().unwrap_or_default());
    if spec.trim().is_empty() {
        filter = default.parse().unwrap_or_default();
    }
    // The HTML parser and selector engine log the pages they read, tokens,
    // attributes and text included: at debug level a CSRF token or an echoed
    // password would reach the logs. Capped even when `RUST_LOG` asks for more.
    for target in QUIET_TARGETS {
        filter = filter.with_target(target, tracing::Level::WARN);
    }
    // Colour codes only for a person at a terminal, not for log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
}

/// Prints diagnostics to stderr, in file and position order.
pub(crate) fn print_diagnostics(diags: &[Diagnostic]) {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "{d}");
    }
}

/// The name of the check loaded from `file`, for messages about the file.
pub(crate) fn check_in<'c>(
    checks: &'c [crate::check::Check],
    file: &std::path::Path,
) -> Option<&'c str> {
    checks
        .iter()
        .find(|c| c.source == file)
        .map(|c| c.name.as_str())
}

fn validate(config: Option<&std::path::Path>, paths: Vec<std::path::PathBuf>) -> Exit {
    let config = match crate::config::load_config(config) {
        Ok(c) => c,
        Err(diags) => {
            print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    let paths = if paths.is_empty() {
        vec![config.checks_dir.clone()]
    } else {
        paths
    };
    let loaded = crate::config::load_checks(&paths, &config.defaults, &crate::config::process_env);
    let diags = crate::config::fold_unset_secrets(
        loaded.diagnostics,
        |file| check_in(&loaded.checks, file),
        |_| true,
    );
    print_diagnostics(&diags);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    println!(
        "{} valid, {}, {}",
        count(loaded.checks.len(), "check"),
        count(errors, "error"),
        count(warnings, "warning")
    );
    if errors > 0 { Exit::Config } else { Exit::Ok }
}

/// The demo site and the daemon in one process: the README's first command.
async fn demo(config: Option<std::path::PathBuf>, site: std::net::SocketAddr) -> Exit {
    let listener = match tokio::net::TcpListener::bind(site).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot serve the demo site on {site}: {e}");
            return Exit::Config;
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let site_task = tokio::spawn(
        crate::demo::DemoSite::new().serve(listener, shutdown.clone().cancelled_owned()),
    );
    eprintln!(
        "demo site on http://{site}/ — break a feature with: curl -X POST http://{site}/_demo/break/diesel"
    );
    // The demo member's password is public; real secrets come from the environment.
    let secrets =
        Secrets::default().with_fallback("SCARECROW_DEMO_PASSWORD", crate::demo::DEMO_PASSWORD);
    let exit = daemon::run(config.as_deref(), secrets).await;
    shutdown.cancel();
    let _ = site_task.await;
    exit
}

/// Asks the daemon's `/healthz`; the container image has no curl.
async fn healthcheck(url: &str) -> Exit {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    let answer = match client {
        Ok(c) => c.get(url).send().await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(r) if r.status().is_success() => Exit::Ok,
        Ok(r) => {
            eprintln!("unhealthy: {url} answered {}", r.status());
            Exit::CheckFailed
        }
        Err(e) => {
            eprintln!("unhealthy: {}", unreachable(url, &e));
            Exit::CheckFailed
        }
    }
}

/// Why nothing useful came back, in the words of the cause: reqwest's own
/// message ("error sending request for url") names none.
fn unreachable(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer from {url} within 5 s");
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            innermost = Some(io.kind().to_string());
            break;
        }
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    let cause = innermost.unwrap_or_else(|| e.to_string());
    if e.is_connect() {
        format!("no scarecrow answers at {url} ({cause})")
    } else {
        format!("{url}: {cause}")
    }
}

async fn demo_site(listen: std::net::SocketAddr) -> Exit {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return Exit::Config;
        }
    };
    // Before the first connection: SIGTERM stops it like the daemon, exit 0.
    let shutdown = daemon::wait_for_signal();
    println!("demo site on http://{listen}/ (Ctrl-C to stop)");
    match crate::demo::DemoSite::new().serve(listener, shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("error: demo site: {e}");
            Exit::Config
        }
    }
}
