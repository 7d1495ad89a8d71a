//! The model: a check and its steps, as loaded from a check file. Pure data,
//! parsed once; nothing here does I/O.

pub mod cron;
mod outcome;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use outcome::{Outcome, Phases, Reason, RunResult, StepResult};

use crate::assert::{Assertion, Css, JsonPath, Pattern};
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
    /// The file the check was loaded from.
    pub source: PathBuf,
}

/// When a failing check declares an incident and when it resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Default for IncidentRules {
    fn default() -> Self {
        IncidentRules {
            failure_threshold: 2,
            success_threshold: 2,
            recheck: None,
            remind_every: None,
        }
    }
}

/// When a check runs in the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    Cron(cron::Cron),
}

/// One request and what its response must show.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub request: Request,
    pub captures: Vec<Capture>,
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: http::Method,
    pub url: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<Body>,
    pub redirects: Redirects,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Raw {
        content_type: String,
        text: Template,
    },
    Json(JsonBody),
    Form(Vec<(String, Template)>),
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

/// A named value taken from a step's response for later steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub name: String,
    pub source: CaptureSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaptureSource {
    Css { selector: Css, attr: Option<String> },
    Regex(Pattern),
    Header(http::HeaderName),
    JsonPath(JsonPath),
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
            || self
                .captures
                .iter()
                .any(|c| matches!(c.source, CaptureSource::Css { .. }))
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Schedule::Cron(c) => write!(f, "cron \"{}\" ({})", c.expr(), c.timezone()),
        }
    }
}
