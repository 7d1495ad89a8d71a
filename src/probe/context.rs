//! The run's shared context: what every step of a run reads and writes,
//! whatever its kind. One deadline, the captures and secrets templates
//! use, the cookie jar, the redaction set that every value a secret came
//! from joins, and every cookie value the run is sent; and the browser
//! steps' tab.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cookie_store::{CookieStore, RawCookie};
use http::HeaderMap;
use http::header::SET_COOKIE;
use tokio::time::Instant;

use super::redact::Redactor;
use crate::secret::Secrets;
use crate::template::Resolve;

/// What the steps of one run share.
pub(crate) struct RunContext {
    /// Captures, secrets and the redaction set.
    pub vars: RunVars,
    /// Cookies of this run only; thrown away with it.
    pub jar: CookieStore,
    /// The run's absolute deadline.
    pub deadline: Instant,
    /// The browser steps' tab, in a browser context of this run's alone
    /// (its storage carries from one browser step to the next); closed
    /// with the run. Boxed, so a run without browser steps carries one
    /// pointer.
    pub page: Option<Box<super::browser::Page>>,
    /// The check's `public_cookies`: cookies that are not redacted.
    public_cookies: Vec<String>,
}

impl RunContext {
    pub(crate) fn new(
        secrets: Secrets,
        redactor: Redactor,
        deadline: Instant,
        public_cookies: Vec<String>,
    ) -> RunContext {
        RunContext {
            vars: RunVars::new(secrets, redactor),
            jar: CookieStore::default(),
            deadline,
            page: None,
            public_cookies,
        }
    }

    /// The values of the cookies `headers` set join the redaction set
    /// (cookies are credentials unless the check names them public, or they
    /// are shorter than [`super::redact::MIN_COOKIE_LEN`]). Every cookie of
    /// the jar came through here, and so does one the jar rejected, which a
    /// header assertion may still quote.
    pub(crate) fn redact_cookies(&self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            let Ok(cookie) = RawCookie::parse(text) else {
                continue;
            };
            self.redact_cookie(cookie.name(), cookie.value());
        }
    }

    /// One cookie's value joins the redaction set, unless the check names
    /// it public.
    pub(crate) fn redact_cookie(&self, name: &str, value: &str) {
        if self.public_cookies.iter().any(|p| p == name) {
            return;
        }
        self.vars.redactor.add_cookie(value);
        self.vars.redactor.add_cookie(value.trim_matches('"'));
    }
}

/// What one run supplies to templates: its captures, the environment's
/// secrets and secret files. Every secret value it hands out is recorded in
/// the run's redactor.
#[derive(Clone, Default)]
pub(crate) struct RunVars {
    captures: BTreeMap<String, String>,
    /// The captures marked `secret`: a value rendered from one is a
    /// credential (a redirect to another origin does not carry it).
    secret_captures: BTreeSet<String>,
    secrets: Secrets,
    pub redactor: Redactor,
}

/// Names the captures, never their values.
impl std::fmt::Debug for RunVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunVars")
            .field("captures", &self.captures.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RunVars {
    pub(crate) fn new(secrets: Secrets, redactor: Redactor) -> Self {
        RunVars {
            captures: BTreeMap::new(),
            secret_captures: BTreeSet::new(),
            secrets,
            redactor,
        }
    }

    /// Stores a capture; a secret one is redacted from the run's results.
    pub(crate) fn set_capture(&mut self, name: &str, value: String, secret: bool) {
        if secret {
            self.redactor.add(&value);
            self.secret_captures.insert(name.to_owned());
        } else {
            self.secret_captures.remove(name);
        }
        self.captures.insert(name.to_owned(), value);
    }

    /// Whether capture `name` was marked `secret`.
    pub(crate) fn is_secret_capture(&self, name: &str) -> bool {
        self.secret_captures.contains(name)
    }
}

impl Resolve for RunVars {
    fn secret(&self, name: &str) -> Result<String, String> {
        let value = self.secrets.get(name)?;
        self.redactor.add(&value);
        Ok(value)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        let value = self.secrets.file(path)?;
        // Both forms: with and without the trailing newline that rendering drops.
        self.redactor.add(&value);
        self.redactor.add(value.trim_end_matches(['\n', '\r']));
        Ok(value)
    }

    fn capture(&self, name: &str) -> Option<String> {
        self.captures.get(name).cloned()
    }

    fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        self.redactor.redact(text)
    }
}
