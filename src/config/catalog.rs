//! The one loader of check files, for `validate`, `once` and the daemon.
//! It remembers each file's content hash and the check that runs from it,
//! so a rescan yields a diff — added, changed, removed — and a broken file
//! keeps its last good version. A one-shot load is the first scan of an
//! empty catalog.
//!
//! Check names are unique: the file that already runs a name keeps it; on
//! the first load the first file in path order does. Any other file that
//! claims the name is a load error, with the same message everywhere.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod dependencies;

use super::check_file::Defaults;
use super::diagnostic::{Diagnostic, Severity, Source};
use super::reader::Env;
use crate::check::Check;
use crate::check::Patterns;

#[derive(Debug, Default)]
pub struct Catalog {
    files: BTreeMap<PathBuf, Entry>,
    patterns: Patterns,
    /// The files are some of the checks: a parent outside them may exist.
    partial: bool,
}

#[derive(Debug)]
struct Entry {
    /// The hash of the text last read; `None` when the file could not be read.
    hash: Option<u64>,
    /// The file as it is now, if it reads into a check.
    read: Option<Read>,
    /// Problems of the file as it is now.
    diagnostics: Vec<Diagnostic>,
    /// What runs: the last version that loaded and kept its name.
    running: Option<Arc<Check>>,
    /// Another file owns the name this one claims.
    conflict: Option<Diagnostic>,
    /// What is wrong with its `depends_on` among the checks that run.
    dependencies: Vec<Diagnostic>,
}

/// A file's text read into a check, with where it names the check, for the
/// error should another file own that name.
#[derive(Debug)]
struct Read {
    check: Arc<Check>,
    name_at: Diagnostic,
    /// Each entry of its `depends_on`, in order.
    depends_at: Vec<Diagnostic>,
}

/// The checks that loaded, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Checks {
    pub checks: Vec<Check>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checks {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// What a rescan changed.
#[derive(Debug, Default)]
pub struct Diff {
    pub added: Vec<Arc<Check>>,
    pub changed: Vec<Arc<Check>>,
    pub removed: Vec<String>,
}

/// One file as the last scan left it, for the API.
#[derive(Debug, Clone)]
pub struct FileStatus {
    pub path: PathBuf,
    pub check: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Entry {
    /// What the file asks to run: its current version, or the last good one
    /// while it is broken.
    fn claim(&self) -> Option<&Arc<Check>> {
        self.read
            .as_ref()
            .map(|r| &r.check)
            .or(self.running.as_ref())
    }

    fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        let mut all: Vec<_> = self
            .diagnostics
            .iter()
            .chain(&self.conflict)
            .chain(&self.dependencies)
            .collect();
        all.sort_by_key(|d| (d.line, d.col));
        all.into_iter()
    }
}

impl Catalog {
    /// A catalog of some of the check files (`validate FILE…`).
    pub fn partial() -> Catalog {
        Catalog {
            partial: true,
            ..Catalog::default()
        }
    }

    /// Rescans `dir`. Files whose bytes did not change are not parsed again;
    /// with `force` (new defaults in `config.toml`) every file is.
    pub fn scan(
        &mut self,
        dir: &Path,
        defaults: &Defaults,
        env: Env,
        force: bool,
    ) -> Result<Diff, std::io::Error> {
        let files = list_dir(dir)?;
        Ok(self.load(files, defaults, env, force))
    }

    /// Loads exactly `files` (in path order), forgetting any other file.
    pub fn load(
        &mut self,
        files: impl IntoIterator<Item = PathBuf>,
        defaults: &Defaults,
        env: Env,
        force: bool,
    ) -> Diff {
        let files: BTreeMap<PathBuf, ()> = files.into_iter().map(|p| (p, ())).collect();
        let before: HashMap<String, (PathBuf, Arc<Check>)> = self
            .files
            .iter()
            .filter_map(|(path, e)| Some((e.running.as_ref()?, path)))
            .map(|(c, path)| (c.name.clone(), (path.clone(), c.clone())))
            .collect();
        self.files.retain(|path, _| files.contains_key(path));
        // Each file read as it is parsed: holding every text at once made
        // loading 10,000 files cost megabytes that stay in the heap.
        for path in files.into_keys() {
            self.read(path, defaults, env, force);
        }
        self.settle_names(&before);
        self.settle_dependencies(&before);
        let after: HashMap<&str, &Arc<Check>> =
            self.checks().map(|c| (c.name.as_str(), c)).collect();
        let mut diff = Diff::default();
        for (name, check) in &after {
            match before.get(*name) {
                None => diff.added.push(Arc::clone(check)),
                Some((_, old)) if **old != ***check => diff.changed.push(Arc::clone(check)),
                Some(_) => {}
            }
        }
        diff.removed = before
            .keys()
            .filter(|n| !after.contains_key(n.as_str()))
            .cloned()
            .collect();
        diff.added.sort_by(|a, b| a.name.cmp(&b.name));
        diff.changed.sort_by(|a, b| a.name.cmp(&b.name));
        diff.removed.sort();
        diff
    }

    /// Reads one file unless its bytes are those read last time.
    fn read(&mut self, path: PathBuf, defaults: &Defaults, env: Env, force: bool) {
        let text = match crate::fsread::read_to_string(&path, crate::fsread::SMALL_FILE_CAP) {
            Ok(text) => text,
            Err(e) => {
                let diagnostics = vec![Diagnostic::file_error(&path, format!("cannot read: {e}"))];
                self.files.insert(
                    path,
                    Entry {
                        hash: None,
                        read: None,
                        diagnostics,
                        running: None,
                        conflict: None,
                        dependencies: Vec::new(),
                    },
                );
                return;
            }
        };
        let hash = Some(hash(&text));
        if !force && self.files.get(&path).is_some_and(|e| e.hash == hash) {
            return;
        }
        let src = Source::new(&path, text);
        let (check, mut diagnostics, spans, denied) =
            super::check_file::read_file(&src, defaults, env, &self.patterns);
        diagnostics.sort_by_key(|d| (d.line, d.col));
        let read = check.map(|c| Read {
            check: Arc::new(c),
            name_at: src.diagnostic(Severity::Error, spans.name, String::new()),
            depends_at: spans
                .depends_on
                .into_iter()
                .map(|span| src.diagnostic(Severity::Error, span, String::new()))
                .collect(),
        });
        // A file the grants refuse stops: its last good version may hold
        // what a reload of config.toml revoked.
        let running = self
            .files
            .remove(&path)
            .and_then(|e| e.running)
            .filter(|_| !denied);
        self.files.insert(
            path,
            Entry {
                hash,
                read,
                diagnostics,
                running,
                conflict: None,
                dependencies: Vec::new(),
            },
        );
    }

    /// Gives each name to one file: the one that ran it before this scan if
    /// it still claims it, else the first claimant in path order. A file
    /// refused its name keeps running its last good version if that one's
    /// name is still free.
    fn settle_names(&mut self, before: &HashMap<String, (PathBuf, Arc<Check>)>) {
        let mut owner: HashMap<String, PathBuf> = HashMap::new();
        for (path, e) in &self.files {
            if let Some(c) = e.claim()
                && before.get(&c.name).is_some_and(|(p, _)| p == path)
            {
                owner.insert(c.name.clone(), path.clone());
            }
        }
        for (path, e) in &self.files {
            if let Some(c) = e.claim() {
                owner.entry(c.name.clone()).or_insert_with(|| path.clone());
            }
        }
        for (path, e) in &mut self.files {
            e.conflict = None;
            let Some(claim) = e.claim().cloned() else {
                continue;
            };
            match owner.get(&claim.name) {
                Some(first) if first != path => {
                    let at = e.read.as_ref().map(|r| &r.name_at);
                    e.conflict = Some(already_defined(at, path, &claim.name, first));
                    let keep = e
                        .running
                        .take()
                        .filter(|c| c.name != claim.name && !owner.contains_key(&c.name));
                    if let Some(c) = &keep {
                        owner.insert(c.name.clone(), path.clone());
                    }
                    e.running = keep;
                }
                _ => e.running = Some(claim),
            }
        }
    }

    /// Checks each running check's parents ([`dependencies::check`]),
    /// refusing new versions that name an unknown check or close a cycle
    /// (their last good version runs), until what runs is consistent.
    fn settle_dependencies(&mut self, before: &HashMap<String, (PathBuf, Arc<Check>)>) {
        for e in self.files.values_mut() {
            e.dependencies.clear();
        }
        // Each round refuses at least one new version, or ends.
        for _ in 0..=self.files.len() {
            let running: Vec<dependencies::Running> = self
                .files
                .iter()
                .filter_map(|(path, e)| {
                    let check = e.running.as_ref()?;
                    let read_now = e.read.as_ref().filter(|r| Arc::ptr_eq(&r.check, check));
                    // Compared only when it matters: most checks have no parents.
                    let new = !check.depends_on.is_empty()
                        && !before
                            .get(&check.name)
                            .is_some_and(|(p, old)| p == path && **old == **check);
                    Some(dependencies::Running {
                        path,
                        check,
                        new,
                        depends_at: read_now.map_or(&[][..], |r| &r.depends_at),
                    })
                })
                .collect();
            let verdicts = dependencies::check(&running, self.partial);
            let refusing = verdicts.iter().any(|v| v.refuse);
            for v in verdicts {
                if refusing && !v.refuse {
                    // Told in the round that refuses nothing.
                    continue;
                }
                let Some(e) = self.files.get_mut(&v.path) else {
                    continue;
                };
                if v.refuse {
                    e.running = before
                        .values()
                        .find(|(p, _)| *p == v.path)
                        .map(|(_, old)| Arc::clone(old));
                }
                e.dependencies.extend(v.diagnostics);
            }
            if !refusing {
                return;
            }
        }
    }

    /// Every check that runs: the last good version of each file.
    pub fn checks(&self) -> impl Iterator<Item = &Arc<Check>> {
        self.files.values().filter_map(|e| e.running.as_ref())
    }

    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.values().flat_map(Entry::diagnostics)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics().any(Diagnostic::is_error)
    }

    pub fn files(&self) -> Vec<FileStatus> {
        self.files
            .iter()
            .map(|(path, e)| FileStatus {
                path: path.clone(),
                check: e.running.as_ref().map(|c| c.name.clone()),
                diagnostics: e.diagnostics().cloned().collect(),
            })
            .collect()
    }

    /// The checks that run and every problem, for a one-shot load.
    pub fn into_checks(self) -> Checks {
        let diagnostics = self.diagnostics().cloned().collect();
        let checks = self
            .files
            .into_values()
            .filter_map(|e| e.running)
            .map(|c| Arc::try_unwrap(c).unwrap_or_else(|c| (*c).clone()))
            .collect();
        Checks {
            checks,
            diagnostics,
        }
    }
}

/// The error of a file whose check name another file owns.
fn already_defined(at: Option<&Diagnostic>, path: &Path, name: &str, owner: &Path) -> Diagnostic {
    let message = format!("check `{name}` is already defined in {}", owner.display());
    let d = match at {
        Some(at) => Diagnostic {
            message,
            ..at.clone()
        },
        None => Diagnostic::file_error(path, message),
    };
    d.with_help("check names are unique across files; set `name` to tell them apart")
}

/// The `*.toml` files in `dir` and its subdirectories, in path order:
/// `[[grant]]` gives each subdirectory its own reach.
pub(super) fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(dir, MAX_DEPTH, &mut files)?;
    files.sort();
    Ok(files)
}

/// Subdirectories deeper than this are not read: a link loop ends here.
const MAX_DEPTH: usize = 8;

fn collect(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        // `is_file` follows symlinks: a Kubernetes ConfigMap's files are
        // links into a `..data` directory swapped on every update, and
        // that hidden directory is not read a second time.
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        } else if !hidden && depth > 0 && path.is_dir() {
            collect(&path, depth - 1, files)?;
        }
    }
    Ok(())
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> String {
        format!("every = \"30s\"\n[[step]]\nurl = \"{url}\"\n")
    }

    fn scan(c: &mut Catalog, dir: &Path) -> Diff {
        c.scan(dir, &Defaults::default(), &|_| None, false).unwrap()
    }

    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("scarecrow-test-catalog-")
            .tempdir()
            .unwrap()
    }

    fn names(v: &[Arc<Check>]) -> Vec<&str> {
        v.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn rescans_diff_by_content_and_keep_the_last_good_version() {
        let tmp = scratch();
        let dir = tmp.path();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write("a.toml", &check("http://a.test/"));
        write("b.toml", &check("http://b.test/"));
        let mut c = Catalog::default();
        let d = scan(&mut c, dir);
        assert_eq!(names(&d.added), ["a", "b"]);

        // Unchanged files: nothing at all.
        assert!(scan(&mut c, dir).is_empty());

        // A changed file, a broken file (its last good version stays), a new one.
        write("a.toml", &check("http://a2.test/"));
        write("b.toml", "every = 5\n");
        write("c.toml", &check("http://c.test/"));
        let d = scan(&mut c, dir);
        assert_eq!(
            (names(&d.added), names(&d.changed), d.removed.len()),
            (vec!["c"], vec!["a"], 0)
        );
        assert!(c.has_errors());
        assert!(c.checks().any(|k| k.name == "b"), "b keeps running");

        // A comment-only change parses to the same check: untouched.
        write("c.toml", &format!("# note\n{}", check("http://c.test/")));
        assert!(scan(&mut c, dir).is_empty());

        // Removed file, and a duplicate name that is refused.
        std::fs::remove_file(dir.join("c.toml")).unwrap();
        write(
            "d.toml",
            &format!("name = \"a\"\n{}", check("http://d.test/")),
        );
        let d = scan(&mut c, dir);
        assert_eq!(d.removed, ["c"]);
        assert!(
            c.diagnostics()
                .any(|x| x.message.contains("check `a` is already defined"))
        );
    }

    fn owners(c: &Catalog) -> Vec<(String, String)> {
        c.files()
            .into_iter()
            .filter_map(|f| {
                let file = f.path.file_name()?.to_string_lossy().into_owned();
                Some((f.check?, file))
            })
            .collect()
    }

    fn conflicts(c: &Catalog) -> Vec<String> {
        c.diagnostics()
            .filter(|d| d.message.contains("already defined"))
            .map(|d| {
                format!(
                    "{}: {}",
                    d.file.file_name().unwrap().to_string_lossy(),
                    d.message
                )
            })
            .collect()
    }

    #[test]
    fn a_running_name_stays_with_its_file_and_the_newcomer_is_the_error() {
        let tmp = scratch();
        let dir = tmp.path();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        let named = |name: &str, url: &str| format!("name = \"{name}\"\n{}", check(url));

        // First load: the first file in path order keeps the name.
        write("m.toml", &named("web", "http://m.test/"));
        write("x.toml", &named("web", "http://x.test/"));
        let mut c = Catalog::default();
        scan(&mut c, dir);
        assert_eq!(owners(&c), [("web".into(), "m.toml".into())]);
        let owner = dir.join("m.toml");
        assert_eq!(
            conflicts(&c),
            [format!(
                "x.toml: check `web` is already defined in {}",
                owner.display()
            )]
        );

        // A new file earlier in path order claims the running name: it is
        // the error, and the running check is untouched.
        write("a.toml", &named("web", "http://a.test/"));
        assert!(scan(&mut c, dir).is_empty());
        assert_eq!(owners(&c), [("web".into(), "m.toml".into())]);
        assert_eq!(conflicts(&c).len(), 2);

        // A running check renamed onto a taken name keeps its last good version.
        write("b.toml", &check("http://b.test/"));
        scan(&mut c, dir);
        write("b.toml", &named("web", "http://b.test/"));
        assert!(scan(&mut c, dir).is_empty());
        assert!(owners(&c).contains(&("b".into(), "b.toml".into())));
        assert_eq!(conflicts(&c).len(), 3);

        // The owner goes: the first remaining claimant in path order takes
        // the name, though its file did not change; b.toml still runs `b`.
        std::fs::remove_file(dir.join("m.toml")).unwrap();
        let d = scan(&mut c, dir);
        assert_eq!((names(&d.changed), d.removed.len()), (vec!["web"], 0));
        assert_eq!(
            owners(&c),
            [
                ("web".into(), "a.toml".into()),
                ("b".into(), "b.toml".into())
            ]
        );
        assert_eq!(conflicts(&c).len(), 2);
    }
}
