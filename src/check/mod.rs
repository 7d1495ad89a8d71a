//! The model: a check and its steps, as loaded from a check file. Pure data,
//! parsed once; nothing here does I/O.

pub mod bounds;
mod browser;
pub mod cron;
pub mod maintenance;
mod outcome;
mod pattern;
mod pin;
mod query;
mod record;
mod redacted;
pub mod roles;
mod value;
pub mod words;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

pub use browser::{
    Action, BrowserOptions, BrowserStep, MAX_SCREENSHOT_BYTES, NAMED_KEYS, Screenshot, VIEWPORT,
    WaitUntil,
};
pub use outcome::{
    BrowserDetail, BrowserReport, Failure, HttpStep, Outcome, Phases, Reason, Redirect, RunResult,
    StepDetail, StepResult, from_millis, millis,
};
pub use pattern::{Pattern, Patterns};
pub use pin::CertDigest;
pub use query::{
    Assertion, Capture, CountRange, Css, Expected, JsonPath, MAX_JSONPATH_NESTING, Pick, Predicate,
    Query, StatusMatch, StatusSet, TextPredicate,
};
pub use record::RunRecord;
pub use redacted::Redacted;
pub use value::{CLOCK_SKEW, DateFormat, FormatError, Found, Freshness, NumberRange, first_number};

/// The hasher of maps that every run looks its check up in (by name, by
/// connection options). Their keys come from the operator's own files, so
/// SipHash's defence against chosen collisions buys nothing, and foldhash
/// hashes a short key several times faster.
pub type FastHash = foldhash::fast::RandomState;

use crate::template::Template;

/// One business-critical feature, described by one check file.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub description: Option<String>,
    pub critical: bool,
    pub owner: Option<String>,
    pub runbook: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub schedule: Schedule,
    /// One absolute deadline for the whole run.
    pub timeout: Duration,
    pub steps: Vec<Step>,
    pub incidents: IncidentRules,
    /// How the check reaches its site (`[tls]`, `resolve`, `proxy`). Shared:
    /// most checks have the defaults, and hold [`Connection::shared_default`].
    pub connection: Arc<Connection>,
    /// Cookies (by name) whose values are not credentials: they are left in
    /// the evidence. Every other cookie of a run is redacted.
    pub public_cookies: Vec<String>,
    /// Checks this one depends on (`depends_on`), in the file's order: while
    /// one of them fails, this one joins its incident instead of declaring.
    pub depends_on: Vec<String>,
    /// The locations that run it (`locations`); empty: every location.
    pub locations: Vec<String>,
    /// The file the check was loaded from.
    pub source: PathBuf,
}

/// Client-level settings of a check. Checks with equal settings share one
/// HTTP client, built at load; the default is the probe's shared client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connection {
    pub tls: TlsOptions,
    /// Host name (lower case) to address, instead of DNS. The certificate is
    /// still verified for the name. Port 0 keeps the URL's port.
    pub resolve: BTreeMap<String, SocketAddr>,
    /// An HTTP(S) proxy for the check's requests: its own `proxy`, or
    /// `[defaults] proxy`. Without one, requests go direct (proxy
    /// variables of the environment are not honoured).
    pub proxy: Option<url::Url>,
    /// Hosts, domains and IP networks reached directly rather than through
    /// `proxy` (`[defaults] no_proxy`, in reqwest's `NO_PROXY` syntax).
    pub no_proxy: Vec<String>,
}

/// `[tls]` of a check file; the files are read at load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Extra trusted CA certificates, added to the system's.
    pub ca: Option<PemFile>,
    /// Client certificate (chain) and its key, for mutual TLS; both or neither.
    pub client_cert: Option<PemFile>,
    pub client_key: Option<PemFile>,
    /// Accept any certificate: no issuer, name or expiry check.
    pub insecure: bool,
    /// Trust exactly these certificates (by digest) instead of CAs; the
    /// server must still prove it holds the certificate's key.
    pub pin_sha256: Vec<CertDigest>,
}

/// A PEM file read at load. Its `Debug` shows the path only: a key file
/// is a secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PemFile {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Whether the check can use the probe's shared default client.
    pub fn is_default(&self) -> bool {
        *self == Connection::default()
    }

    /// The default options, one allocation for every check that has them.
    pub fn shared_default() -> Arc<Connection> {
        static DEFAULT: LazyLock<Arc<Connection>> = LazyLock::new(Arc::default);
        Arc::clone(&DEFAULT)
    }
}

/// The outage brake (`[incidents] outage`): when this many critical
/// checks reach their threshold within `window`, one incident for the
/// whole outage is declared and new failures join it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutageRule {
    pub min_checks: u32,
    /// A share of the critical checks, from 0 to 1.
    pub min_share: f64,
    pub window: Duration,
}

/// Where a daemon probes from when its config names no `location`.
pub const DEFAULT_LOCATION: &str = "default";

impl Check {
    /// When a location whose last run of this check started at `last`
    /// goes stale: two runs overdue, and the timeout.
    pub fn stale_at(&self, last: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        let two_due = match &self.schedule {
            Schedule::Every(every) => chrono::TimeDelta::from_std(*every * 2)
                .ok()
                .and_then(|d| last.checked_add_signed(d)),
            Schedule::Cron(cron) => cron.next_after(last).and_then(|n| cron.next_after(n)),
        };
        let timeout = chrono::TimeDelta::from_std(self.timeout).unwrap_or(chrono::TimeDelta::MAX);
        two_due
            .and_then(|at| at.checked_add_signed(timeout))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
    }

    /// Whether a daemon at `location` runs this check.
    pub fn runs_at(&self, location: &str) -> bool {
        self.locations.is_empty() || self.locations.iter().any(|l| l == location)
    }
}

impl OutageRule {
    /// Whether `failing` of `critical` checks is an outage.
    pub fn holds(&self, failing: usize, critical: usize) -> bool {
        let share = (self.min_share * critical as f64).ceil() as usize;
        failing >= self.min_checks as usize && failing >= share.max(1)
    }
}

/// When a failing check declares an incident and when it resolves it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRules {
    /// Failed runs in a row that declare (critical checks only).
    pub failure_threshold: u32,
    /// Passed runs in a row that resolve.
    pub success_threshold: u32,
    /// Run again this long after a failure before counting it, so one
    /// dropped packet wakes nobody.
    pub recheck: Option<Duration>,
    /// Announce a still-open incident again this often.
    pub remind_every: Option<Duration>,
    /// The check file's own maintenance windows.
    pub maintenance: Vec<maintenance::Window>,
    /// How many locations must see the check failing before it declares.
    pub quorum: Quorum,
}

/// `quorum = { min_failing = 2 }` or `{ min_failing = "50%" }`: how many of
/// the locations running a check must see it failing for it to declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// At least this many locations.
    Locations(u32),
    /// At least this share (1 to 100 %) of the locations with a recent
    /// result, rounded up, at least one.
    Percent(u8),
}

impl Default for Quorum {
    fn default() -> Self {
        Quorum::Locations(1)
    }
}

impl Quorum {
    /// The failing locations needed when `fresh` locations have a recent
    /// result.
    pub fn needed(self, fresh: usize) -> usize {
        match self {
            Quorum::Locations(n) => n as usize,
            Quorum::Percent(p) => (usize::from(p) * fresh).div_ceil(100).max(1),
        }
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Locations(1) => f.write_str("1 location"),
            Quorum::Locations(n) => write!(f, "{n} locations"),
            Quorum::Percent(p) => write!(f, "{p}% of the locations"),
        }
    }
}

impl Default for IncidentRules {
    fn default() -> Self {
        IncidentRules {
            failure_threshold: 2,
            success_threshold: 2,
            recheck: None,
            remind_every: None,
            maintenance: Vec::new(),
            quorum: Quorum::default(),
        }
    }
}

/// When a check runs in the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    Cron(cron::Cron),
}

/// One action of a check (an HTTP request) and what it must show.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    /// What the step does; its `kind` in the check file.
    pub kind: StepKind,
    pub captures: Vec<Capture>,
    pub assertions: Vec<Assertion>,
    /// A deadline for each attempt, inside the run's (the earlier wins).
    pub timeout: Option<Duration>,
    pub retry: Retry,
}

/// How often a failing step is tried again, for eventually consistent
/// features. Off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// The pause before each retry.
    pub interval: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            retries: 0,
            interval: Duration::from_secs(1),
        }
    }
}

/// The kinds of step, selected by `kind` in the check file. A new kind is
/// a variant here, read in `config`, run in `probe` (see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `kind = "http"`, the default: one request, redirects followed.
    Http(Request),
    /// `kind = "browser"`: a page loaded and acted on in headless Chromium.
    Browser(BrowserStep),
}

impl StepKind {
    /// Every kind's name as written in a check file.
    pub const NAMES: [&'static str; 2] = ["http", "browser"];
}

impl Check {
    /// Whether any step runs in the browser.
    pub fn uses_browser(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Browser(_)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: http::Method,
    pub url: Target,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<Body>,
    pub redirects: Redirects,
    pub auth: Option<Auth>,
}

/// Where a step sends its request. A URL without placeholders is parsed
/// once, at load; a run only copies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Fixed(url::Url),
    Template(Template),
}

impl Target {
    /// Parses `url` now when it has no placeholders; it must then be an
    /// http(s) URL with a host. The error says why it is not.
    pub fn new(url: Template) -> Result<Target, String> {
        let Some(s) = url.as_literal() else {
            return Ok(Target::Template(url));
        };
        match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(Target::Fixed(u))
            }
            Ok(u) => Err(format!(
                "expected an http(s) URL with a host, found scheme `{}`",
                u.scheme()
            )),
            Err(e) => Err(format!("invalid URL {s:?}: {e}")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Fixed(url) => f.write_str(url.as_str()),
            Target::Template(t) => t.fmt(f),
        }
    }
}

/// Credentials for the `Authorization` header of one step. Never sent to
/// another origin on a redirect.
#[derive(Clone, PartialEq)]
pub enum Auth {
    Basic {
        username: Template,
        password: Template,
    },
    Bearer(Template),
}

/// Shows the username only: a literal password or token is still one.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            Auth::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Raw {
        content_type: String,
        text: Template,
    },
    Json(JsonBody),
    Form(Vec<(String, Template)>),
    Multipart(Vec<Part>),
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub name: String,
    pub content: PartContent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PartContent {
    Text(Template),
    /// A file read when a run sends it; `path` is already resolved against
    /// the check file's directory.
    File {
        path: PathBuf,
        filename: String,
        content_type: String,
    },
}

/// A JSON document whose strings may hold placeholders.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonBody {
    Value(serde_json::Value),
    String(Template),
    Array(Vec<JsonBody>),
    Object(Vec<(String, JsonBody)>),
}

/// How many redirects a step follows before it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    None,
    Follow(u32),
}

impl Default for Redirects {
    fn default() -> Self {
        Redirects::Follow(10)
    }
}

/// Headers whose values are credentials: never copied into a result, a
/// message or a log.
pub fn credential_header(name: &http::HeaderName) -> bool {
    use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE};
    [AUTHORIZATION, COOKIE, SET_COOKIE, PROXY_AUTHORIZATION].contains(name)
}

impl Check {
    /// Whether any step needs the HTML parser.
    pub fn needs_html(&self) -> bool {
        self.steps.iter().any(Step::needs_html)
    }
}

impl Step {
    pub fn needs_html(&self) -> bool {
        self.assertions.iter().any(Assertion::needs_html)
            || self.captures.iter().any(|c| c.query.needs_html())
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", words::human(*d)),
            Schedule::Cron(c) => write!(f, "cron \"{}\" ({})", c.expr(), c.timezone()),
        }
    }
}
