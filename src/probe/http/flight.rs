//! An HTTP step in flight: its request, what it has measured so far and
//! where it is, kept outside the run's timed future so that a timeout can
//! still say where the step was and report its phases.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::client::HopTimer;
use super::render::shown;
use crate::check::{HttpStep, Phases, Request, Target};

#[derive(Debug)]
pub(crate) struct Flight<'s> {
    pub(super) request: &'s Request,
    /// The HTTP fields of the step's result.
    pub(super) detail: HttpStep,
    pub(super) stage: Stage,
    /// The request waiting for its headers, with its timer.
    pub(super) hop: Option<Arc<HopTimer>>,
    pub(super) body_started: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Preparing,
    Headers,
    Body,
    Evaluating,
}

impl<'s> Flight<'s> {
    /// A fresh attempt at `request`, and the URL it shows until it is
    /// rendered: placeholders as written, never values; no query (tokens).
    pub(crate) fn new(request: &'s Request) -> (Flight<'s>, String) {
        let url = match &request.url {
            Target::Fixed(url) => shown(url),
            template => template
                .to_string()
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let flight = Flight {
            request,
            detail: HttpStep {
                method: request.method.as_str().to_owned(),
                ..HttpStep::default()
            },
            stage: Stage::Preparing,
            hop: None,
            body_started: None,
        };
        (flight, url)
    }

    /// What the step was doing, for a timeout message.
    pub(crate) fn stuck(&self) -> &'static str {
        match self.stage {
            Stage::Preparing => "preparing the request",
            Stage::Headers => self
                .hop
                .as_ref()
                .and_then(|h| h.snapshot().stuck())
                .unwrap_or("waiting for response headers"),
            Stage::Body => "reading the body",
            Stage::Evaluating => "evaluating the response",
        }
    }

    /// The detail as far as the step got, unfinished phases included.
    pub(crate) fn finish(mut self) -> HttpStep {
        if let Some(hop) = self.hop.take() {
            self.detail.phases.add(&hop.snapshot().phases());
        }
        if let Some(started) = self.body_started.take() {
            self.detail.phases.add(&transfer(started.elapsed()));
        }
        self.detail
    }
}

/// Phases with only the body's transfer time.
pub(super) fn transfer(d: Duration) -> Phases {
    Phases {
        transfer: Some(d),
        ..Phases::default()
    }
}
