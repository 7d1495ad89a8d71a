//! Where `${secret:NAME}` values come from.

use std::collections::HashMap;
use std::sync::Arc;

/// The process environment, with optional fallbacks for names it lacks.
/// The fallbacks serve the built-in demo, whose password is public; real
/// secrets come from the environment or from files.
#[derive(Clone, Default)]
pub struct Secrets {
    fallbacks: Arc<HashMap<String, String>>,
}

/// Names the fallbacks, never their values.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.fallbacks.keys().collect();
        names.sort();
        f.debug_struct("Secrets")
            .field("fallbacks", &names)
            .finish()
    }
}

impl Secrets {
    /// Adds a value used when the environment does not set `name`.
    pub fn with_fallback(mut self, name: &str, value: &str) -> Secrets {
        Arc::make_mut(&mut self.fallbacks).insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn get(&self, name: &str) -> Result<String, String> {
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
}
