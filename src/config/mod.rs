//! Loading `config.toml` and the check files: everything is parsed and
//! validated here, once, and every problem of every file is reported
//! together. A broken check file never keeps the others from loading.

mod capture;
pub mod catalog;
pub mod check_file;
mod connection;
pub mod diagnostic;
mod expect;
mod maintenance;
mod reader;
mod request;
mod settings;
pub mod sinks;
pub mod watch;

use std::path::{Path, PathBuf};

pub use check_file::{Defaults, valid_name};
pub use diagnostic::{Diagnostic, Severity, Source, fold_unset_secrets};
pub use settings::{Config, LogFormat, MetricsAuth, RoleConfig, Roles, ServerLimits};

use crate::check::Check;
use crate::check::Patterns;
use check_file::{Env, Reader};
use reader::Ctx;

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

/// The process environment, for `${env:…}`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads `config.toml`. A missing file at the default path means defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, Vec<Diagnostic>> {
    let (path, explicit) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    if !explicit && !path.exists() {
        return Ok(Config::default());
    }
    match crate::fsread::read_to_string(&path, crate::fsread::SMALL_FILE_CAP) {
        Ok(text) => read_config(&Source::new(&path, text), &process_env),
        Err(e) => Err(vec![Diagnostic::file_error(
            &path,
            format!("cannot read config: {e}"),
        )]),
    }
}

/// Reads `config.toml`'s text, as [`load_config`] does once it has read the
/// file; relative paths are relative to `src.path`'s directory.
pub fn read_config(src: &Source, env: Env) -> Result<Config, Vec<Diagnostic>> {
    settings::parse(src, env)
}

/// Loads check files from `paths` (files, or directories whose `*.toml`
/// files are read in name order).
pub fn load_checks(paths: &[PathBuf], defaults: &Defaults, env: Env) -> Checks {
    let mut out = Checks::default();
    let mut files = Vec::new();
    for path in paths {
        match list_toml(path) {
            Ok(mut found) => files.append(&mut found),
            Err(e) => out
                .diagnostics
                .push(Diagnostic::file_error(path, format!("cannot read: {e}"))),
        }
    }
    let mut seen: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    let patterns = Patterns::default();
    for file in files {
        let text = match crate::fsread::read_to_string(&file, crate::fsread::SMALL_FILE_CAP) {
            Ok(t) => t,
            Err(e) => {
                out.diagnostics
                    .push(Diagnostic::file_error(&file, format!("cannot read: {e}")));
                continue;
            }
        };
        let src = Source::new(&file, text);
        let (check, mut diags) = read_check_sharing(&src, defaults, env, &patterns);
        if let Some(check) = check {
            match seen.get(&check.name) {
                Some(first) => {
                    let span = name_span(&src);
                    let d = src.diagnostic(
                        Severity::Error,
                        span,
                        format!(
                            "check `{}` is already defined in {}",
                            check.name,
                            first.display()
                        ),
                    );
                    diags.push(d.with_help(
                        "check names are unique across files; set `name` to tell them apart",
                    ));
                }
                None => {
                    seen.insert(check.name.clone(), file.clone());
                    out.checks.push(check);
                }
            }
        }
        diags.sort_by_key(|d| (d.line, d.col));
        out.diagnostics.append(&mut diags);
    }
    out
}

/// Reads one check file's text.
pub fn read_check(src: &Source, defaults: &Defaults, env: Env) -> (Option<Check>, Vec<Diagnostic>) {
    read_check_sharing(src, defaults, env, &Patterns::default())
}

/// Reads one check file's text, reusing the regexes of other checks.
pub fn read_check_sharing(
    src: &Source,
    defaults: &Defaults,
    env: Env,
    patterns: &Patterns,
) -> (Option<Check>, Vec<Diagnostic>) {
    let mut cx = Ctx::new(src);
    let (root, errors) = toml::de::DeTable::parse_recoverable(&src.text);
    if !errors.is_empty() {
        for e in errors {
            cx.error(e.span().unwrap_or(0..0), toml_message(&e));
        }
        return (None, cx.diags);
    }
    let stem = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = Reader {
        cx,
        env,
        patterns,
        captures: Vec::new(),
    };
    let check = check_file::read(&mut r, root.get_ref(), &stem, defaults);
    (check, r.cx.diags)
}

/// The first line of a TOML syntax error, without the position the
/// diagnostic shows anyway.
fn toml_message(e: &toml::de::Error) -> String {
    let m = e.message().trim();
    format!("invalid TOML: {}", m.lines().next().unwrap_or(m))
}

fn name_span(src: &Source) -> std::ops::Range<usize> {
    toml::de::DeTable::parse(&src.text)
        .ok()
        .and_then(|t| t.get_ref().get("name").map(toml::Spanned::span))
        .unwrap_or(0..0)
}

fn list_toml(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
