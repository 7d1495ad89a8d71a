//! `scarecrow once`: the checks as smoke tests in a deploy pipeline. Runs
//! the selected checks now, prints the results, records and declares nothing.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::time::Instant;

use super::{Exit, print_diagnostics};
use crate::check::{Check, Redacted, RunResult};
use crate::cli::{Format, OnceArgs};
use crate::config::{self, Config};
use crate::probe::{Probe, ProbeSettings};
use crate::report;
use crate::secret::Secrets;

/// Pause between rounds of `--wait`, so a restarting service is not hammered.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

pub async fn run(args: OnceArgs) -> Exit {
    super::warn_ignored_proxy_variables();
    let config = match config::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(diags) => {
            print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    let loaded = config::load_checks(
        std::slice::from_ref(&config.checks_dir),
        &config.defaults,
        &config::process_env,
    );
    let selected = select(&loaded.checks, &args);
    // Unset secrets matter for the checks that run, once a secret.
    let runs = |file: &std::path::Path| {
        selected
            .as_ref()
            .is_ok_and(|s| s.iter().any(|c| c.source == file))
    };
    print_diagnostics(&config::fold_unset_secrets(
        loaded.diagnostics.clone(),
        |file| super::check_in(&loaded.checks, file),
        runs,
    ));
    let selected = match selected {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Config;
        }
    };
    let probe = match probe(&config, Secrets::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Config;
        }
    };
    let selected = without_browser_if_missing(&probe, selected);
    for e in probe.prepare(selected.iter().copied()) {
        eprintln!("error: {e}");
    }
    let mut results = run_all(&probe, &selected, config.concurrency).await;
    if let Some(wait) = args.wait {
        retry_failing(&probe, &selected, &mut results, wait, config.concurrency).await;
    }
    probe.close().await;
    let text = match args.format {
        Format::Human => report::human(&results),
        Format::Json => report::json(&results),
        Format::Junit => report::junit(&results),
    };
    print!("{text}");
    if loaded.has_errors() {
        Exit::Config
    } else if results.iter().any(|r| !r.outcome.is_success()) {
        Exit::CheckFailed
    } else {
        Exit::Ok
    }
}

/// The checks to run: without those with browser steps where Chromium is
/// not installed, each named on standard error, so a pipeline on a machine
/// without a browser still runs the rest.
fn without_browser_if_missing<'c>(probe: &Probe, checks: Vec<&'c Check>) -> Vec<&'c Check> {
    let Some(why) = probe.browser_missing() else {
        return checks;
    };
    checks
        .into_iter()
        .filter(|c| {
            let skip = c.uses_browser();
            if skip {
                eprintln!("skipped {}: it has browser steps. {why}", c.name);
            }
            !skip
        })
        .collect()
}

/// The probe of check runs, whose resolver withholds the daemon's own
/// secrets by value.
pub(crate) fn probe(config: &Config, secrets: Secrets) -> Result<Probe, crate::probe::ProbeError> {
    let reserved = config.defaults.grants.reserved();
    Probe::new(ProbeSettings {
        user_agent: config.user_agent.clone(),
        max_body_bytes: config.max_body_size.bytes(),
        secrets: secrets.withholding(
            reserved.names.iter().map(String::as_str),
            reserved.files.iter().map(std::path::PathBuf::as_path),
        ),
        browser: config.browser.clone(),
    })
}

/// The checks the flags pick, in file order. Naming a check that does not
/// exist is a usage error, not an empty run that passes.
fn select<'c>(checks: &'c [Check], args: &OnceArgs) -> Result<Vec<&'c Check>, String> {
    for name in &args.checks {
        if !checks.iter().any(|c| &c.name == name) {
            let hint =
                config::diagnostic::did_you_mean(name, checks.iter().map(|c| c.name.as_str()))
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
            return Err(format!("no check named `{name}`{hint}"));
        }
    }
    let picked: Vec<_> = checks
        .iter()
        .filter(|c| args.checks.is_empty() || args.checks.contains(&c.name))
        .filter(|c| args.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        .filter(|c| !args.critical || c.critical)
        .collect();
    if picked.is_empty() {
        return Err("no check matches the selection".into());
    }
    Ok(picked)
}

async fn run_all(probe: &Probe, checks: &[&Check], concurrency: usize) -> Vec<Redacted<RunResult>> {
    futures_util::stream::iter(checks)
        .map(|c| crate::schedule::caught(c, probe.run(c)))
        .buffered(concurrency)
        .collect()
        .await
}

/// Re-runs failing checks until all pass or `wait` has passed; each check
/// keeps its latest result.
async fn retry_failing(
    probe: &Probe,
    checks: &[&Check],
    results: &mut [Redacted<RunResult>],
    wait: Duration,
    concurrency: usize,
) {
    // `wait` is bounded at parsing, but a deadline past the clock's range
    // would panic; waiting "forever" is the honest reading of one.
    let deadline = Instant::now().checked_add(wait);
    loop {
        let failing: Vec<usize> = (0..results.len())
            .filter(|&i| !results[i].outcome.is_success())
            .collect();
        let left = deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
        if failing.is_empty() || left.is_zero() {
            return;
        }
        eprintln!(
            "{} failing, retrying for up to {}",
            failing.len(),
            crate::check::words::human(left)
        );
        tokio::time::sleep(RETRY_PAUSE.min(left)).await;
        let again: Vec<&Check> = failing.iter().map(|&i| checks[i]).collect();
        for (i, r) in failing
            .into_iter()
            .zip(run_all(probe, &again, concurrency).await)
        {
            results[i] = r;
        }
    }
}
