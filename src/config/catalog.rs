//! The daemon's view of the checks directory across reloads: each file's
//! content hash and last good check. A rescan yields a diff — added,
//! changed, removed — and a broken file keeps its last good version.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check_file::{Defaults, Env};
use super::diagnostic::{Diagnostic, Source};
use crate::check::Check;
use crate::check::Patterns;

#[derive(Debug, Default)]
pub struct Catalog {
    files: BTreeMap<PathBuf, Entry>,
    patterns: Patterns,
}

#[derive(Debug)]
struct Entry {
    hash: u64,
    /// The last version of the file that loaded.
    check: Option<Arc<Check>>,
    /// Problems of the file as it is now.
    diagnostics: Vec<Diagnostic>,
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

impl Catalog {
    /// Rescans `dir`. Files whose bytes did not change are not parsed again;
    /// with `force` (new defaults in `config.toml`) every file is.
    pub fn scan(
        &mut self,
        dir: &Path,
        defaults: &Defaults,
        env: Env,
        force: bool,
    ) -> Result<Diff, std::io::Error> {
        // Paths first, each file read as it is parsed: holding every text at
        // once made loading 10,000 files cost megabytes that stay in the heap.
        let mut seen = BTreeSet::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            // `is_file` follows symlinks: a Kubernetes ConfigMap's files are
            // links into a `..data` directory swapped on every update.
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                seen.insert(path);
            }
        }
        let before: HashMap<String, Arc<Check>> =
            self.checks().map(|c| (c.name.clone(), c.clone())).collect();
        self.files.retain(|path, _| seen.contains(path));
        for path in seen {
            let text = match crate::fsread::read_to_string(&path, crate::fsread::SMALL_FILE_CAP) {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(file = %path.display(), "cannot read: {e}");
                    self.files.remove(&path);
                    continue;
                }
            };
            let hash = hash(&text);
            if !force && self.files.get(&path).is_some_and(|e| e.hash == hash) {
                continue;
            }
            let src = Source::new(&path, text);
            let (check, diagnostics) =
                super::read_check_sharing(&src, defaults, env, &self.patterns);
            let last_good = self.files.remove(&path).and_then(|e| e.check);
            let check = match check {
                Some(c) => Some(Arc::new(c)),
                None => last_good,
            };
            self.files.insert(
                path,
                Entry {
                    hash,
                    check,
                    diagnostics,
                },
            );
        }
        self.reject_duplicates();
        let after: HashMap<String, Arc<Check>> =
            self.checks().map(|c| (c.name.clone(), c.clone())).collect();
        let mut diff = Diff::default();
        for (name, check) in &after {
            match before.get(name) {
                None => diff.added.push(check.clone()),
                Some(old) if **old != **check => diff.changed.push(check.clone()),
                Some(_) => {}
            }
        }
        diff.removed = before
            .keys()
            .filter(|n| !after.contains_key(*n))
            .cloned()
            .collect();
        diff.added.sort_by(|a, b| a.name.cmp(&b.name));
        diff.changed.sort_by(|a, b| a.name.cmp(&b.name));
        diff.removed.sort();
        Ok(diff)
    }

    /// A name defined by two files: the first file (in path order) keeps it.
    fn reject_duplicates(&mut self) {
        let mut owner: HashMap<String, PathBuf> = HashMap::new();
        for (path, entry) in &mut self.files {
            let Some(check) = &entry.check else { continue };
            match owner.get(&check.name) {
                Some(first) => {
                    let message = format!(
                        "check `{}` is already defined in {}; this file is ignored",
                        check.name,
                        first.display()
                    );
                    entry
                        .diagnostics
                        .push(Diagnostic::file_error(path, message));
                    entry.check = None;
                }
                None => {
                    owner.insert(check.name.clone(), path.clone());
                }
            }
        }
    }

    /// Every check that runs: the last good version of each file.
    pub fn checks(&self) -> impl Iterator<Item = &Arc<Check>> {
        self.files.values().filter_map(|e| e.check.as_ref())
    }

    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.values().flat_map(|e| &e.diagnostics)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics().any(Diagnostic::is_error)
    }

    pub fn files(&self) -> Vec<FileStatus> {
        self.files
            .iter()
            .map(|(path, e)| FileStatus {
                path: path.clone(),
                check: e.check.as_ref().map(|c| c.name.clone()),
                diagnostics: e.diagnostics.clone(),
            })
            .collect()
    }
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

    fn names(v: &[Arc<Check>]) -> Vec<&str> {
        v.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn rescans_diff_by_content_and_keep_the_last_good_version() {
        let tmp = tempfile::Builder::new()
            .prefix("scarecrow-test-catalog-")
            .tempdir()
            .unwrap();
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
}
