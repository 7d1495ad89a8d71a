//! What every command shares at the terminal: the exit code, the log
//! subscriber, and how diagnostics are printed.

use std::io::Write as _;

use tracing_subscriber::filter::Targets;

use crate::config::{Diagnostic, LogFormat};

/// How the process ends; the numbers are part of the CLI's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    CheckFailed = 1,
    Config = 2,
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
pub(super) fn init_tracing(default: &str, format: LogFormat) {
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

/// The proxy variables of the environment that are set: reqwest would
/// honour them, scarecrow does not (a proxy sees every request, credentials
/// included), so each one set is worth a warning.
const PROXY_VARIABLES: [&str; 3] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];

/// Warns once at start-up when proxy variables are set but ignored.
pub(super) fn warn_ignored_proxy_variables() {
    let set = ignored_proxy_variables(|name| std::env::var_os(name));
    if !set.is_empty() {
        tracing::warn!(
            "{} set but ignored: scarecrow uses a proxy only where config.toml (`[defaults] proxy`) or a check (`proxy`) names one",
            set.join(", ")
        );
    }
}

/// The proxy variables `var` says are set and not empty, in either case.
fn ignored_proxy_variables(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<String> {
    PROXY_VARIABLES
        .iter()
        .flat_map(|name| [name.to_string(), name.to_lowercase()])
        .filter(|name| var(name).is_some_and(|v| !v.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_variables_are_found_in_either_case() {
        let set = ignored_proxy_variables(|name| match name {
            "https_proxy" | "ALL_PROXY" => Some("http://proxy:3128".into()),
            "HTTP_PROXY" => Some("".into()),
            _ => None,
        });
        assert_eq!(set, ["https_proxy", "ALL_PROXY"]);
    }
}
