//! One attempt of a step as every kind reports it, and why a step failed.
//! A kind's own measurements live in its flight (see `kind.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::check::{Failure, Reason};

/// What an attempt of any kind of step shows, filled in as it runs.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// Where the step went, as shown (never a query or credentials).
    pub url: String,
    /// Every assertion that did not hold, in order.
    pub failures: Vec<Failure>,
    /// The values captured, by name; secret ones left out.
    pub captures: BTreeMap<String, String>,
    /// The start of what the step saw, when it failed on it.
    pub excerpt: Option<String>,
    /// When the attempt started.
    pub started: Instant,
    /// Time from the start to the end of the kind's measurement (for HTTP,
    /// the end of the body), when it got that far; evaluating the response
    /// does not count.
    pub measured: Option<Duration>,
}

impl Attempt {
    pub(crate) fn new(url: String) -> Attempt {
        Attempt {
            url,
            failures: Vec::new(),
            captures: BTreeMap::new(),
            excerpt: None,
            started: Instant::now(),
            measured: None,
        }
    }
}

/// Why a step failed, without the step's name (the run adds it).
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub reason: Reason,
    pub message: String,
}

pub(crate) fn fail(reason: Reason, message: impl Into<String>) -> StepFailure {
    StepFailure {
        reason,
        message: message.into(),
    }
}
