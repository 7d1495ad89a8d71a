//! The layering ARCHITECTURE.md promises, held by reading the source: no
//! import cycle between two files of `src/`, and no module importing what
//! its line in the code map forbids.
//!
//! An import is a `use` or a path naming an item of another file
//! (`crate::…`, `super::…`, `self::sub::…`). A `mod` declaration, a public
//! re-export (`pub use`) and anything under `#[cfg(test)]` are not imports:
//! they are how a module is put together and tested, not what it depends on.
//! A path to a name a file imports or re-exports is followed to the file that
//! defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Modules that import nothing of ours, so every layer may use them.
const LEAVES: &[&str] = &["error_chain", "fsread", "template", "text"];

/// `(module, the modules it may import besides itself and the leaves)`: a
/// module is the first path segment under `src/` (`check` for
/// `src/check/bounds.rs`). `app` wires everything and is not listed.
const ALLOWED: &[(&str, &[&str])] = &[
    // The model: pure data.
    ("check", &[]),
    ("cli", &["check"]),
    ("report", &["check"]),
    // Evaluating assertions knows the model and nothing that runs or stores it.
    ("assert", &["check"]),
    ("secret", &[]),
    // Reading files into the model never runs a check or serves a page; sink
    // kinds read their own keys.
    ("config", &["assert", "check", "secret", "sink"]),
    // Running a check knows nothing of where its result goes.
    ("probe", &["assert", "check", "secret"]),
    ("schedule", &["check", "probe"]),
    // Incidents reach storage through the interface they define, and sinks
    // through the wrapper; they name no backend and no sink kind.
    ("incident", &["check", "sink"]),
    ("sink", &["check", "config", "incident", "secret"]),
    ("store", &["check", "incident"]),
    ("live", &["check", "incident"]),
    ("metrics", &["check", "config"]),
    (
        "server",
        &[
            "check", "config", "incident", "live", "metrics", "secret", "store",
        ],
    ),
    ("demo", &[]),
];

/// Files of a module others may not import even where the module is allowed:
/// a backend is chosen by `app`, a sink kind is built by the registry.
const PRIVATE: &[(&str, &[&str])] = &[
    ("store/sqlite/", &["store/"]),
    // app builds a PostgreSQL store's address from the config.
    ("store/postgres/", &["store/", "app/"]),
    ("sink/", &["sink/", "app/", "config/settings.rs"]),
];

#[test]
fn no_import_cycle_between_files() {
    let graph = Graph::read();
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "import cycles between files (each line one cycle):\n{}",
        cycles
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_module_imports_what_its_layer_forbids() {
    let graph = Graph::read();
    let mut found = Vec::new();
    for (file, targets) in &graph.edges {
        let from = graph.module_of(file);
        let Some(from) = from.first() else { continue };
        let allowed: Vec<&str> = if LEAVES.contains(&from.as_str()) {
            Vec::new()
        } else if let Some((_, may)) = ALLOWED.iter().find(|(m, _)| m == from) {
            may.iter().copied().chain(LEAVES.iter().copied()).collect()
        } else {
            continue;
        };
        for target in targets {
            let to = graph.module_of(target);
            let Some(to) = to.first() else { continue };
            if to != from && !allowed.contains(&to.as_str()) {
                found.push(format!(
                    "{file} imports {target}: `{from}` may not import `{to}`"
                ));
            }
        }
    }
    assert!(found.is_empty(), "forbidden imports:\n{}", found.join("\n"));
}

#[test]
fn a_backend_and_a_sink_kind_are_named_only_where_they_are_chosen() {
    let graph = Graph::read();
    let mut found = Vec::new();
    for (file, targets) in &graph.edges {
        for target in targets {
            for (private, callers) in PRIVATE {
                let shared = ["sink/mod.rs", "sink/attempt.rs", "sink/read.rs"];
                if target.starts_with(private)
                    && !shared.contains(&target.as_str())
                    && !callers.iter().any(|c| file.starts_with(c))
                {
                    found.push(format!("{file} imports {target}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "private files imported:\n{}",
        found.join("\n")
    );
}

/// The files that may vouch for a run's result as redacted
/// (`check::Redacted::vouched`): the probe's redaction, which seals every
/// run; the run of a panic, whose text is ours; the store's reader, which
/// gives back what it took redacted. Any other output of a run takes a
/// `Redacted` it was given, so it cannot show a secret the probe removed.
const VOUCHERS: &[&str] = &["probe/redact.rs", "schedule/mod.rs", "store/rows.rs"];

#[test]
fn only_redaction_the_panic_path_and_the_store_vouch_for_a_redacted_run() {
    let graph = Graph::read();
    let vouching: Vec<&String> = graph
        .paths
        .iter()
        .filter(|(_, paths)| {
            paths
                .iter()
                .any(|p| p.ends_with(&["Redacted".into(), "vouched".into()]))
        })
        .map(|(file, _)| file)
        .filter(|file| !VOUCHERS.contains(&file.as_str()))
        .collect();
    assert!(
        vouching.is_empty(),
        "Redacted::vouched called in {vouching:?}"
    );
    // The rule sees the calls it is about.
    assert!(
        graph.paths["probe/redact.rs"]
            .iter()
            .any(|p| p.ends_with(&["Redacted".into(), "vouched".into()]))
    );
}

#[test]
fn the_reader_sees_imports_through_use_trees_paths_and_re_exports() {
    let graph = Graph::read();
    // `use crate::check::{…}` in a group, followed to the defining file.
    assert!(
        graph
            .imports("app/once.rs")
            .any(|t| t.starts_with("check/"))
    );
    // A test module's imports are not counted: fsread's tests use tempfile
    // only, and fsread itself imports nothing of ours but `check`.
    assert!(graph.imports("fsread.rs").all(|t| t.starts_with("check/")));
    assert!(!graph.edges.is_empty() && graph.edges.len() > 50);
}

/// Files of `src/` (relative, `/`-separated) and the files each imports.
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
    /// Every path of two or more segments each file writes, test code aside.
    paths: BTreeMap<String, Vec<Vec<String>>>,
}

impl Graph {
    fn read() -> Graph {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        let mut test_only = BTreeSet::new();
        collect(&src, &src, &mut files);
        files.remove("main.rs");
        let parsed: BTreeMap<String, syn::File> = files
            .iter()
            .map(|(rel, path)| {
                let text = std::fs::read_to_string(path).expect("read source");
                let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
                (rel.clone(), ast)
            })
            .collect();
        for (rel, ast) in &parsed {
            for m in &ast.items {
                if let syn::Item::Mod(m) = m
                    && m.content.is_none()
                    && is_test_only(&m.attrs)
                {
                    let dir = module_dir(rel);
                    let name = m.ident.to_string();
                    test_only.insert(join(&dir, &format!("{name}.rs")));
                    test_only.insert(join(&dir, &format!("{name}/mod.rs")));
                }
            }
        }
        let names: BTreeMap<String, BTreeMap<String, Vec<String>>> = parsed
            .iter()
            .map(|(rel, ast)| (rel.clone(), imported_names(rel, ast)))
            .collect();
        let resolver = Resolver {
            files: &files,
            names: &names,
        };
        let mut edges = BTreeMap::new();
        let mut written = BTreeMap::new();
        for (rel, ast) in &parsed {
            if test_only
                .iter()
                .any(|t| rel == t || rel.starts_with(&t.replace("mod.rs", "")))
            {
                continue;
            }
            let mut paths = Paths::default();
            paths.visit_file(ast);
            let children = module_dir(rel);
            let targets: BTreeSet<String> = paths
                .found
                .iter()
                .filter_map(|p| match absolute(rel, p) {
                    Some(p) => resolver.file_of(&p, 0),
                    // `use child::X` and `child::f()` name a child module.
                    None => absolute(rel, &[vec!["self".to_owned()], p.clone()].concat())
                        .and_then(|p| resolver.file_of(&p, 0))
                        .filter(|t| t.starts_with(&format!("{children}/"))),
                })
                .filter(|t| t != rel && !test_only.contains(t))
                .collect();
            edges.insert(rel.clone(), targets);
            written.insert(rel.clone(), paths.found);
        }
        Graph {
            edges,
            paths: written,
        }
    }

    fn imports<'a>(&'a self, file: &str) -> impl Iterator<Item = &'a String> {
        self.edges.get(file).into_iter().flatten()
    }

    /// `check/cron/mod.rs` → `["check", "cron"]`, `lib.rs` → `[]`.
    fn module_of(&self, file: &str) -> Vec<String> {
        module_path(file)
    }

    /// Every strongly connected set of two or more files, as a cycle path.
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for start in self.edges.keys() {
            if seen.contains(start) {
                continue;
            }
            let ahead = self.reachable(start);
            let group: BTreeSet<String> = ahead
                .iter()
                .filter(|f| self.reachable(f).contains(start))
                .cloned()
                .collect();
            seen.extend(group.iter().cloned());
            if group.len() > 1 {
                out.push(self.cycle_through(start, &group));
            }
        }
        out
    }

    fn reachable(&self, from: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(f) = todo.pop() {
            for t in self.imports(&f) {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    }

    /// A shortest path from `start` back to itself inside `group`.
    fn cycle_through(&self, start: &str, group: &BTreeSet<String>) -> Vec<String> {
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_owned()]);
        while let Some(f) = queue.pop_front() {
            for t in self.imports(&f).filter(|t| group.contains(*t)) {
                if t == start {
                    let mut path = vec![start.to_owned()];
                    let mut at = f.clone();
                    while at != start {
                        path.push(at.clone());
                        at = parent[&at].clone();
                    }
                    path.push(start.to_owned());
                    let last = path.len() - 1;
                    path[1..last].reverse();
                    return path;
                }
                if !parent.contains_key(t) {
                    parent.insert(t.clone(), f.clone());
                    queue.push_back(t.clone());
                }
            }
        }
        group.iter().cloned().collect()
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src");
            files.insert(rel.to_string_lossy().replace('\\', "/"), path);
        }
    }
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// The directory a file's child modules live in: `a/b.rs` → `a/b`, `a/mod.rs` → `a`.
fn module_dir(rel: &str) -> String {
    let stem = rel.trim_end_matches(".rs");
    match stem
        .strip_suffix("/mod")
        .or(if stem == "lib" { Some("") } else { None })
    {
        Some(dir) => dir.to_owned(),
        None => stem.to_owned(),
    }
}

fn module_path(rel: &str) -> Vec<String> {
    module_dir(rel)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A path as written (`super::x::Y`) made absolute from the crate root.
fn absolute(file: &str, path: &[String]) -> Option<Vec<String>> {
    let mut module = module_path(file);
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            module.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                module.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    module.extend(rest.iter().cloned());
    Some(module)
}

/// Finds the file a path's item lives in, following `use` declarations.
struct Resolver<'a> {
    files: &'a BTreeMap<String, PathBuf>,
    names: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Resolver<'_> {
    fn file_of(&self, path: &[String], depth: usize) -> Option<String> {
        for cut in (0..=path.len()).rev() {
            let dir = path[..cut].join("/");
            let candidates = if dir.is_empty() {
                vec!["lib.rs".to_owned()]
            } else {
                vec![format!("{dir}.rs"), format!("{dir}/mod.rs")]
            };
            let Some(file) = candidates.into_iter().find(|c| self.files.contains_key(c)) else {
                continue;
            };
            if let Some(name) = path.get(cut)
                && depth < 8
                && let Some(target) = self.names.get(&file).and_then(|r| r.get(name))
            {
                let mut next = target.clone();
                next.extend(path[cut + 1..].iter().cloned());
                return self.file_of(&next, depth + 1).or(Some(file));
            }
            return Some(file);
        }
        None
    }
}

/// `use sub::{A, B as C}` in a file: name → absolute path of what it names,
/// so that `super::A` in a child is followed to the file defining `A`.
fn imported_names(file: &str, ast: &syn::File) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for item in &ast.items {
        if let syn::Item::Use(u) = item
            && !is_test_only(&u.attrs)
        {
            let mut leaves = Vec::new();
            flatten(&u.tree, &mut Vec::new(), &mut leaves);
            for (name, path) in leaves {
                let path = match path.first().map(String::as_str) {
                    Some("crate" | "self" | "super") => absolute(file, &path),
                    // `use sub::X` names a child module of this file.
                    _ => absolute(file, &[vec!["self".to_owned()], path].concat()),
                };
                if let Some(path) = path {
                    out.insert(name, path);
                }
            }
        }
    }
    out
}

/// Each leaf of a use tree as (the name it binds, its full path).
fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            if name != "self" {
                path.push(name.clone());
            }
            let bound = if name == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                name
            };
            out.push((bound, path));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push((r.rename.to_string(), path));
        }
        syn::UseTree::Glob(_) => out.push(("*".to_owned(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten(t, prefix, out);
            }
        }
    }
}

/// Every path of two or more segments outside test-only code and outside
/// public re-exports; which of them name a file of ours is decided later.
#[derive(Default)]
struct Paths {
    found: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            _ => &[],
        };
        if is_test_only(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if !matches!(u.vis, syn::Visibility::Inherited) {
            return;
        }
        let mut leaves = Vec::new();
        flatten(&u.tree, &mut Vec::new(), &mut leaves);
        self.found.extend(leaves.into_iter().map(|(_, p)| p));
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.found.push(segments);
        }
        syn::visit::visit_path(self, path);
    }
}
