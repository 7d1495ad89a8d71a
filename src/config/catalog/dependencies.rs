//! `depends_on` among the checks that run: a check file that names a check
//! no file runs, or closes a cycle, is a load error and keeps its last good
//! version. A file that did not change keeps running when a check it
//! depends on goes away: a warning, and the dependency is ignored (the
//! engine treats a parent it does not know as passing).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::Check;
use crate::config::diagnostic::{Diagnostic, Severity};

/// A check that runs, as the dependency rules see it.
pub(super) struct Running<'a> {
    pub path: &'a Path,
    pub check: &'a Arc<Check>,
    /// It did not run before this scan: its problems are errors.
    pub new: bool,
    /// Where its file names each parent, when this version was read now.
    pub depends_at: &'a [Diagnostic],
}

/// What is wrong with one file's `depends_on`; `refuse` when it is new.
pub(super) struct Verdict {
    pub path: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
    pub refuse: bool,
}

/// The problems of the running checks' parents: unknown names and cycles.
/// With `partial` (some of the files), an unknown name is only a warning.
pub(super) fn check(running: &[Running], partial: bool) -> Vec<Verdict> {
    let names: HashSet<&str> = running.iter().map(|r| r.check.name.as_str()).collect();
    let cycles = cycles(running);
    let mut verdicts = Vec::new();
    for r in running.iter().filter(|r| !r.check.depends_on.is_empty()) {
        let c = r.check;
        let mut diagnostics = Vec::new();
        for (n, parent) in c.depends_on.iter().enumerate() {
            let mut error = r.new;
            let message = if !names.contains(parent.as_str()) {
                match (r.new, partial) {
                    (_, true) => {
                        error = false;
                        format!("`depends_on`: no check named `{parent}` among the files read")
                    }
                    (true, false) => format!("`depends_on`: no check named `{parent}` runs"),
                    (false, false) => format!(
                        "`{}` depends on `{parent}`, which no longer runs: the dependency is ignored",
                        c.name
                    ),
                }
            } else if let Some(cycle) = cycles.get(c.name.as_str())
                && cycle.contains(&parent.as_str())
            {
                format!(
                    "`depends_on` makes a cycle: {} → {}",
                    cycle.join(" → "),
                    cycle[0]
                )
            } else {
                continue;
            };
            let severity = if error {
                Severity::Error
            } else {
                Severity::Warning
            };
            diagnostics.push(match r.depends_at.get(n) {
                Some(at) => Diagnostic {
                    message,
                    severity,
                    ..at.clone()
                },
                None => Diagnostic {
                    severity,
                    ..Diagnostic::file_error(r.path, message)
                },
            });
        }
        if !diagnostics.is_empty() {
            let refuse = diagnostics.iter().any(|d| d.severity == Severity::Error);
            verdicts.push(Verdict {
                path: r.path.to_owned(),
                diagnostics,
                refuse,
            });
        }
    }
    verdicts
}

/// For each check on a cycle of `depends_on`, the cycle from that check
/// around.
fn cycles<'a>(running: &[Running<'a>]) -> HashMap<&'a str, Vec<&'a str>> {
    let parents: HashMap<&str, &[String]> = running
        .iter()
        .map(|r| (r.check.name.as_str(), r.check.depends_on.as_slice()))
        .collect();
    let mut on_cycle = HashMap::new();
    for &start in parents.keys() {
        if on_cycle.contains_key(start) {
            continue;
        }
        // Depth-first from `start`, iteratively: a path back to `start`
        // is its cycle. Checks are few enough per cycle search that the
        // visited set per start keeps this linear in edges per start.
        let mut seen = HashSet::new();
        let mut stack: Vec<(&str, Vec<&'a str>)> = vec![(start, vec![start])];
        while let Some((at, path)) = stack.pop() {
            for parent in parents.get(at).copied().unwrap_or_default() {
                if parent == start {
                    on_cycle.insert(start, path.clone());
                    stack.clear();
                    break;
                }
                if parents.contains_key(parent.as_str()) && seen.insert(parent.as_str()) {
                    let mut next = path.clone();
                    next.push(parent);
                    stack.push((parent, next));
                }
            }
        }
    }
    on_cycle
}

#[cfg(test)]
mod tests {
    use crate::config::catalog::Catalog;
    use crate::config::check_file::Defaults;
    use crate::config::diagnostic::Severity;

    fn check(deps: &str) -> String {
        format!("depends_on = [{deps}]\n[[step]]\nurl = \"http://127.0.0.1:9/\"\n")
    }

    #[test]
    fn a_parent_gone_on_reload_is_a_warning_and_a_new_unknown_one_an_error() {
        let tmp = tempfile::Builder::new()
            .prefix("scarecrow-test-dependencies-")
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write("gateway.toml", &check(""));
        write("weather.toml", &check("\"gateway\""));
        let mut c = Catalog::default();
        let scan = |c: &mut Catalog| c.scan(dir, &Defaults::default(), &|_| None, false).unwrap();
        scan(&mut c);
        assert!(!c.has_errors());

        // The gateway goes: the unchanged weather check runs on, warned.
        std::fs::remove_file(dir.join("gateway.toml")).unwrap();
        let d = scan(&mut c);
        assert_eq!(d.removed, ["gateway"]);
        assert!(c.checks().any(|k| k.name == "weather"));
        let warnings: Vec<_> = c
            .diagnostics()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(
            warnings,
            ["`weather` depends on `gateway`, which no longer runs: the dependency is ignored"]
        );
        assert!(!c.has_errors());

        // A new version naming an unknown check is refused: the last good
        // one runs.
        write("weather.toml", &format!("# v2\n{}", check("\"gatway\"")));
        let d = scan(&mut c);
        assert!(d.changed.is_empty(), "{d:?}");
        assert!(c.has_errors());
        let running: Vec<_> = c.checks().map(|k| k.depends_on.clone()).collect();
        assert_eq!(running, [vec!["gateway".to_owned()]]);
    }
}
