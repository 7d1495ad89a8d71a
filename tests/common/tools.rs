//! Outside tools some tests need (promtool, Chromium, PostgreSQL). A missing
//! tool fails the test under `CI=true`, where `.ci/run` installs every one, so
//! CI never goes green without them; elsewhere the test says SKIPPED and passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The first of `candidates` that exists: a name is looked up on `PATH`, a
/// path taken as it is. `None` when none does, after failing under CI or
/// printing a SKIPPED line; the caller then returns.
pub fn require(tool: &str, candidates: &[&str], package: &str) -> Option<PathBuf> {
    let found = candidates.iter().find_map(|c| locate(c));
    if found.is_none() {
        missing(tool, package);
    }
    found
}

fn locate(candidate: &str) -> Option<PathBuf> {
    if candidate.contains('/') {
        return Some(PathBuf::from(candidate)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(candidate))
        .find(|p| Path::new(p).is_file())
}

/// Fails under CI, else prints the SKIPPED line: for a tool found some
/// other way than by [`require`].
pub fn missing(tool: &str, package: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(
        !ci,
        "{tool} is not installed and CI=true: CI must run this test (.ci/run installs it: apt-get install {package})"
    );
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and a skip nobody sees is the bug.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {tool} is not installed (apt-get install {package}); a test that needs it did not run"
    );
}
