//! Secrets: where `${secret:NAME}` and `${file:PATH}` values come from, and
//! what a loaded file may say about them. Every run, sink and server setting
//! resolves its secrets through [`Secrets`], and every load-time look at a
//! secret goes through [`unset`] or [`credential`]: this is the one place
//! that decides what a file may reach.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::template::{Resolve, Template, TemplateError};

/// The process environment, with optional fallbacks for names it lacks,
/// and files read through [`crate::fsread`]. The fallbacks serve the
/// built-in demo, whose password is public; real secrets come from the
/// environment or from files.
#[derive(Clone, Default)]
pub struct Secrets {
    fallbacks: Arc<HashMap<String, String>>,
    /// Values never handed out: the daemon's own secrets, for the resolver
    /// of check runs. By value, because one secret can sit under two names.
    withheld: Arc<Vec<String>>,
}

/// Names the fallbacks, never their values.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.fallbacks.keys().collect();
        names.sort();
        f.debug_struct("Secrets")
            .field("fallbacks", &names)
            .field("withheld", &self.withheld.len())
            .finish()
    }
}

/// Why a check run does not get a value.
const WITHHELD: &str =
    "holds the value of one of the daemon's own secrets, which check files never get";

impl Secrets {
    /// Adds a value used when the environment does not set `name`.
    pub fn with_fallback(mut self, name: &str, value: &str) -> Secrets {
        Arc::make_mut(&mut self.fallbacks).insert(name.to_owned(), value.to_owned());
        self
    }

    /// The resolver for check runs: whatever the daemon's own secrets
    /// (`names`, `files`) hold now is refused under any name or path.
    pub fn withholding<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        files: impl IntoIterator<Item = &'a Path>,
    ) -> Secrets {
        let names = names.into_iter().filter_map(|n| self.get(n).ok());
        let files = files.into_iter().filter_map(|p| self.file(p).ok());
        let mut withheld: Vec<String> = names
            .chain(files)
            .map(|v| v.trim_end_matches(['\n', '\r']).to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        withheld.extend(self.withheld.iter().cloned());
        Secrets {
            fallbacks: self.fallbacks.clone(),
            withheld: Arc::new(withheld),
        }
    }

    fn release(&self, value: String) -> Result<String, String> {
        let bare = value.trim_end_matches(['\n', '\r']);
        match self.withheld.iter().any(|w| w == bare) {
            true => Err(WITHHELD.to_owned()),
            false => Ok(value),
        }
    }

    /// `${secret:NAME}`.
    pub fn get(&self, name: &str) -> Result<String, String> {
        self.lookup(name).and_then(|v| self.release(v))
    }

    fn lookup(&self, name: &str) -> Result<String, String> {
        match std::env::var(name) {
            Ok(v) => Ok(v),
            Err(std::env::VarError::NotPresent) => self
                .fallbacks
                .get(name)
                .cloned()
                .ok_or_else(|| "not set in the environment".to_owned()),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("not valid UTF-8 in the environment".to_owned())
            }
        }
    }

    /// `${file:PATH}`, whole, as the file holds it.
    pub fn file(&self, path: &Path) -> Result<String, String> {
        crate::fsread::read_to_string(path, crate::fsread::SMALL_FILE_CAP)
            .map_err(|e| e.to_string())
            .and_then(|v| self.release(v))
    }
}

/// Secrets and files; a capture exists only within a run, which layers its
/// own on top.
impl Resolve for Secrets {
    fn secret(&self, name: &str) -> Result<String, String> {
        self.get(name)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        Secrets::file(self, path)
    }

    fn capture(&self, _: &str) -> Option<String> {
        None
    }
}

/// The secrets `t` names that `env` does not set: worth a warning at load,
/// as whatever uses them fails until they are.
pub fn unset<'t>(t: &'t Template, env: &dyn Fn(&str) -> Option<String>) -> Vec<&'t str> {
    t.secrets().filter(|n| env(n).is_none()).collect()
}

/// Why a setting that holds one of the daemon's credentials was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The placeholders do not parse.
    Syntax(TemplateError),
    /// The value is written in the config, or put there by `${env:…}`
    /// (`via_env`), instead of being read when it is used.
    Literal { via_env: bool },
    /// `${capture:…}`, which exists only within a check run.
    Capture,
}

/// A credential of the daemon itself (the API token, the metrics password,
/// a sink's secrets): `${secret:NAME}` or `${file:PATH}`, never a value.
pub fn credential(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Template, Refused> {
    let used_env = std::cell::Cell::new(false);
    let flag_env = |name: &str| {
        used_env.set(true);
        env(name)
    };
    let parsed = Template::parse(text, flag_env).map_err(Refused::Syntax)?;
    if parsed.as_literal().is_some() {
        return Err(Refused::Literal {
            via_env: used_env.get(),
        });
    }
    if parsed.captures().next().is_some() {
        return Err(Refused::Capture);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_owned())
    }

    #[test]
    fn credentials_are_placeholders_read_when_used() {
        assert!(credential("${secret:SET}", &env).is_ok());
        assert!(credential("Bearer ${file:/run/secrets/t}", &env).is_ok());
        assert_eq!(
            credential("hunter2", &env),
            Err(Refused::Literal { via_env: false })
        );
        assert_eq!(
            credential("${env:SET}", &env),
            Err(Refused::Literal { via_env: true })
        );
        assert_eq!(credential("${capture:x}", &env), Err(Refused::Capture));
        assert!(matches!(
            credential("${secret:a b}", &env),
            Err(Refused::Syntax(_))
        ));
    }

    #[test]
    fn unset_names_only_the_missing_secrets() {
        let t = Template::parse("${secret:SET}:${secret:GONE}", env).unwrap();
        assert_eq!(unset(&t, &env), ["GONE"]);
    }

    #[test]
    fn withheld_values_are_refused_under_any_name() {
        let s = Secrets::default()
            .with_fallback("SCARECROW_TEST_DAEMON_TOKEN", "same-value")
            .with_fallback("SCARECROW_TEST_CHECK_ALIAS", "same-value")
            .with_fallback("SCARECROW_TEST_CHECK_OTHER", "other");
        let runs = s.withholding(["SCARECROW_TEST_DAEMON_TOKEN"], []);
        assert_eq!(
            runs.get("SCARECROW_TEST_CHECK_ALIAS"),
            Err(WITHHELD.to_owned())
        );
        assert_eq!(
            runs.get("SCARECROW_TEST_CHECK_OTHER").as_deref(),
            Ok("other")
        );
        assert!(!format!("{runs:?}").contains("same-value"));
        assert_eq!(
            s.get("SCARECROW_TEST_CHECK_ALIAS").as_deref(),
            Ok("same-value")
        );
    }

    #[test]
    fn fallbacks_fill_what_the_environment_lacks_and_debug_hides_them() {
        let s = Secrets::default().with_fallback("SCARECROW_TEST_FALLBACK_ONLY", "pw");
        assert_eq!(s.get("SCARECROW_TEST_FALLBACK_ONLY").as_deref(), Ok("pw"));
        assert!(!format!("{s:?}").contains("pw"));
        assert_eq!(
            s.get("SCARECROW_TEST_NOT_SET_ANYWHERE"),
            Err("not set in the environment".to_owned())
        );
    }
}
