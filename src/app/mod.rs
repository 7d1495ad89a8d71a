//! Wiring: turns a parsed command line into work and an exit code. Only this
//! module knows every other part.

mod actions;
mod alone;
mod console;
mod daemon;
mod heartbeat;
mod incidents;
mod incidents_cli;
mod notify;
mod once;
mod store_cli;
mod telemetry;

use crate::check::words::count;
use crate::cli::{Cli, Command};
use crate::config::LogFormat;
use crate::error_chain;
use crate::secret::Secrets;

pub use console::Exit;
use console::{check_in, init_tracing, print_diagnostics, warn_ignored_proxy_variables};

/// Runs one command to completion.
pub async fn main(cli: Cli) -> Exit {
    match cli.command {
        Command::Run { config } => daemon::run(config.as_deref(), Secrets::default()).await,
        Command::Demo { config, site } => demo(config, site).await,
        Command::Healthcheck { url } => healthcheck(&url).await,
        Command::Notify(args) => notify::run(args).await,
        Command::Store(command) => {
            init_tracing("warn", LogFormat::Text);
            store_cli::run(command).await
        }
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

fn validate(config: Option<&std::path::Path>, paths: Vec<std::path::PathBuf>) -> Exit {
    let config = match crate::config::load_config(config) {
        Ok(c) => c,
        Err(diags) => {
            print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    let env = &crate::config::process_env;
    let loaded = if paths.is_empty() {
        crate::config::load_checks(
            std::slice::from_ref(&config.checks_dir),
            &config.defaults,
            env,
        )
    } else {
        crate::config::load_some_checks(&paths, &config.defaults, env)
    };
    let diags = crate::config::fold_unset_secrets(
        loaded.diagnostics,
        |file| check_in(&loaded.checks, file),
        |_| true,
    );
    print_diagnostics(&diags);
    // Last, so each file's own problems come first.
    let mut warnings = 0;
    if config.defaults.grants.is_open() {
        eprintln!("warning: {}\n", crate::config::grant::NO_GRANTS);
    }
    let browsing: Vec<&str> = loaded
        .checks
        .iter()
        .filter(|c| c.uses_browser())
        .map(|c| c.name.as_str())
        .collect();
    if let Some(why) = crate::probe::browser_missing(&config.browser)
        && !browsing.is_empty()
    {
        eprintln!(
            "warning: {why}: the browser steps of {} fail with reason `setup` until it is\n",
            browsing.join(", ")
        );
        warnings += 1;
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = warnings + diags.len() - errors;
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
        .no_proxy()
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
    // The kind of the first I/O error names the cause plainly ("connection
    // refused"); without one, the innermost cause's message.
    let causes = || error_chain::chain(e).skip(1);
    let cause = causes()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| io.kind().to_string())
        .or_else(|| causes().last().map(|c| c.to_string()))
        .unwrap_or_else(|| e.to_string());
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
