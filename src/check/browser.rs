//! A browser step (`kind = "browser"`): a page loaded and acted on in
//! headless Chromium, judged on what it renders. Pure data; the probe
//! drives the browser.

use super::{Css, Pattern, Target};
use crate::template::Template;

/// What a browser step does and what it lets fail.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserStep {
    /// Where the page is; only `http` and `https`.
    pub url: Target,
    pub wait_until: WaitUntil,
    /// Done in order after the page loaded.
    pub actions: Vec<Action>,
    pub screenshot: Screenshot,
    /// `console_errors = "fail"`: a `console.error` call or an uncaught
    /// exception fails the step.
    pub fail_on_console_errors: bool,
    /// `failed_requests = "fail"`: a same-origin request that could not be
    /// made or answered ≥ 400 fails the step, unless its URL matches one of
    /// these (`ignore_requests`).
    pub failed_requests: Option<Vec<Pattern>>,
}

/// Which event of the page ends its loading. Never "network idle": a
/// page polling its data is never idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitUntil {
    #[default]
    Load,
    DomContentLoaded,
}

/// One thing a member does on the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Click(Css),
    /// Types `value` into the element, replacing what it held. The value
    /// joins the run's redaction set.
    Fill {
        selector: Css,
        value: Template,
    },
    /// A key as `KeyboardEvent.key` names it (`Enter`, `Tab`, `a`).
    Press(String),
    /// Waits until an element matches.
    WaitFor(Css),
    /// Waits until the page's visible text contains this.
    WaitForText(Template),
}

impl std::fmt::Display for Action {
    /// As a step's message names it; never a filled value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Click(s) => write!(f, "click {:?}", s.source),
            Action::Fill { selector, .. } => write!(f, "fill {:?}", selector.source),
            Action::Press(key) => write!(f, "press {key:?}"),
            Action::WaitFor(s) => write!(f, "wait_for {:?}", s.source),
            Action::WaitForText(t) => write!(f, "wait_for_text {:?}", t.to_string()),
        }
    }
}

/// The keys `press` knows by name, with their key codes; any single
/// character is a key too.
pub const NAMED_KEYS: [(&str, u32); 9] = [
    ("Enter", 13),
    ("Tab", 9),
    ("Escape", 27),
    ("Backspace", 8),
    ("Delete", 46),
    ("ArrowDown", 40),
    ("ArrowUp", 38),
    ("ArrowLeft", 37),
    ("ArrowRight", 39),
];

/// When a step keeps a picture of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screenshot {
    #[default]
    OnFailure,
    Always,
    Never,
}

/// The viewport every browser step renders in.
pub const VIEWPORT: (u32, u32) = (1280, 800);

/// `[browser]` of `config.toml`: how the daemon's one Chromium runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOptions {
    /// The executable; by default the first of `chromium`,
    /// `chromium-browser`, `google-chrome` on `PATH`.
    pub path: Option<std::path::PathBuf>,
    /// Chromium's own sandbox. Off only when set off: it cannot start as
    /// root or under a seccomp profile that forbids user namespaces.
    pub sandbox: bool,
    /// At most this many browser steps at once, apart from HTTP runs.
    pub concurrency: usize,
    /// Where screenshots are written.
    pub screenshots: std::path::PathBuf,
    /// The locale pages render in, and their Accept-Language.
    pub locale: String,
    /// The time zone pages see, for a check without a cron time zone.
    pub timezone: String,
    /// The user agent pages see; Chromium's own (which names itself
    /// headless) when unset.
    pub user_agent: Option<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            path: None,
            sandbox: true,
            concurrency: 2,
            screenshots: std::path::PathBuf::from("data/screenshots"),
            locale: "en-US".to_owned(),
            timezone: "UTC".to_owned(),
            user_agent: None,
        }
    }
}

/// A screenshot larger than this is not kept.
pub const MAX_SCREENSHOT_BYTES: usize = 4 * 1024 * 1024;
