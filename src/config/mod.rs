//! Loading `config.toml` and the check files: everything is parsed and
//! validated here, once, and every problem of every file is reported
//! together. A broken check file never keeps the others from loading.

mod browser;
mod capture;
pub mod catalog;
pub mod check_file;
mod connection;
pub mod diagnostic;
mod expect;
pub mod grant;
mod maintenance;
pub(crate) mod reader;
mod request;
mod settings;
mod values;
pub mod watch;

use std::path::{Path, PathBuf};

use crate::check::Patterns;

pub use catalog::Checks;
pub use check_file::Defaults;
pub use diagnostic::{Diagnostic, Severity, Source, fold_unset_secrets};
pub use reader::{Env, valid_name};
pub use settings::{Config, LogFormat, MetricsAuth, MetricsSettings, ServerLimits, StoreDown};
pub use values::template_text;

use crate::check::Check;

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
/// files are read), as the daemon's first scan would.
pub fn load_checks(paths: &[PathBuf], defaults: &Defaults, env: Env) -> Checks {
    load(paths, defaults, env, catalog::Catalog::default())
}

/// As [`load_checks`], for some of the check files (`validate FILE…`): a
/// `depends_on` naming a check outside them is a warning, not an error.
pub fn load_some_checks(paths: &[PathBuf], defaults: &Defaults, env: Env) -> Checks {
    load(paths, defaults, env, catalog::Catalog::partial())
}

fn load(paths: &[PathBuf], defaults: &Defaults, env: Env, mut catalog: catalog::Catalog) -> Checks {
    let mut unreadable = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        let listed = if path.is_dir() {
            catalog::list_dir(path)
        } else {
            std::fs::metadata(path).map(|_| vec![path.clone()])
        };
        match listed {
            Ok(mut found) => files.append(&mut found),
            Err(e) => unreadable.push(Diagnostic::file_error(path, format!("cannot read: {e}"))),
        }
    }
    catalog.load(files, defaults, env, false);
    let mut loaded = catalog.into_checks();
    unreadable.append(&mut loaded.diagnostics);
    loaded.diagnostics = unreadable;
    loaded
}

/// Reads one check file's text.
pub fn read_check(src: &Source, defaults: &Defaults, env: Env) -> (Option<Check>, Vec<Diagnostic>) {
    let (check, diags, _, _) = check_file::read_file(src, defaults, env, &Patterns::default());
    (check, diags)
}
