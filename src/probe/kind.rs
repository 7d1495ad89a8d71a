//! The step-kind seam: every kind of step runs through here. A kind is a
//! folder in `probe/` (HTTP is `http/`) that provides a flight (its step in
//! flight: what it has measured, where it is), what it needs for one run,
//! and an attempt that reads and writes the run's shared context and fills
//! in the common [`Attempt`]. Adding a kind adds a variant to each enum
//! below and an arm to each match; no kind's code sees another's.
//! Enums rather than trait objects: this is every run's path, and an enum
//! costs neither an allocation nor an indirect call.

use super::attempt::{Attempt, StepFailure};
use super::context::RunContext;
use super::{browser, http};
use crate::check::{Check, Step, StepDetail, StepKind};

/// A step in flight, by kind.
#[derive(Debug)]
pub(crate) enum Flight<'s> {
    Http(http::Flight<'s>),
    Browser(browser::Flight<'s>),
}

impl<'s> Flight<'s> {
    /// A fresh attempt at `step`, and the URL it shows until it runs.
    pub(crate) fn new(step: &'s Step) -> (Flight<'s>, String) {
        match &step.kind {
            StepKind::Http(request) => {
                let (flight, url) = http::Flight::new(request);
                (Flight::Http(flight), url)
            }
            StepKind::Browser(page) => {
                let (flight, url) = browser::Flight::new(page);
                (Flight::Browser(flight), url)
            }
        }
    }

    /// What the step was doing, for a timeout message.
    pub(crate) fn stuck(&self) -> &'static str {
        match self {
            Flight::Http(f) => f.stuck(),
            Flight::Browser(f) => f.stuck(),
        }
    }

    /// The kind's detail of the step's result, as far as it got.
    pub(crate) fn finish(self) -> StepDetail {
        match self {
            Flight::Http(f) => StepDetail::Http(f.finish()),
            Flight::Browser(f) => StepDetail::Browser(f.finish()),
        }
    }
}

/// What each kind needs for one run of a check, got once per run.
pub(crate) struct Kinds {
    http: http::Http,
    /// Only for a check with browser steps.
    browser: Option<browser::Browser>,
}

impl Kinds {
    /// The run's tools for `check`; the error is a `setup` failure's message.
    pub(crate) fn for_check(
        clients: &http::Clients,
        chromium: &std::sync::Arc<browser::Chromium>,
        check: &Check,
        max_body: u64,
    ) -> Result<Kinds, String> {
        Ok(Kinds {
            http: http::Http::for_check(clients, check, max_body)?,
            browser: check
                .uses_browser()
                .then(|| browser::Browser::for_check(chromium, check, max_body)),
        })
    }

    /// Runs one attempt of the step `flight` belongs to.
    pub(crate) async fn attempt(
        &self,
        ctx: &mut RunContext,
        step: &Step,
        flight: &mut Flight<'_>,
        attempt: &mut Attempt,
    ) -> Result<(), StepFailure> {
        match flight {
            Flight::Http(f) => self.http.attempt(ctx, step, f, attempt).await,
            Flight::Browser(f) => match &self.browser {
                // Boxed: a browser attempt's state is large, and inline it
                // would make every HTTP attempt's future as large, copied
                // on every move (+8 % instructions per HTTP check).
                Some(b) => Box::pin(b.attempt(ctx, step, f, attempt)).await,
                None => Err(super::attempt::fail(
                    crate::check::Reason::Internal,
                    "a browser step in a check without one",
                )),
            },
        }
    }
}
