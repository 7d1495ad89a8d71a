//! Which rendered values are credentials: known while rendering, by the
//! placeholders a value came from, so a redirect to another origin can
//! leave them behind.

use std::borrow::Cow;
use std::cell::Cell;
use std::path::Path;

use crate::probe::context::RunVars;
use crate::template::{RenderError, Resolve, Template};

/// A resolver that notes whether what it rendered used a credential. Known
/// while rendering, so a credential is recognised by where it came from,
/// never by matching values afterwards.
pub(super) struct Tracked<'v> {
    vars: &'v RunVars,
    credential: Cell<bool>,
}

impl<'v> Tracked<'v> {
    pub(super) fn new(vars: &'v RunVars) -> Self {
        Tracked {
            vars,
            credential: Cell::new(false),
        }
    }

    /// Whether anything rendered so far used a credential.
    pub(super) fn used_credential(&self) -> bool {
        self.credential.get()
    }
}

impl Resolve for Tracked<'_> {
    fn secret(&self, name: &str) -> Result<String, String> {
        self.credential.set(true);
        self.vars.secret(name)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        self.credential.set(true);
        self.vars.file(path)
    }

    fn capture(&self, name: &str) -> Option<String> {
        if self.vars.is_secret_capture(name) {
            self.credential.set(true);
        }
        self.vars.capture(name)
    }

    fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.vars.redact(text)
    }
}

/// `t` rendered, and whether its value holds a credential.
pub(super) fn tracked(t: &Template, vars: &RunVars) -> Result<(String, bool), RenderError> {
    let with = Tracked::new(vars);
    let text = t.render(&with)?.into_owned();
    Ok((text, with.used_credential()))
}
