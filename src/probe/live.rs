//! A step in flight, kept outside the run's timed future so that a timeout
//! can still say where the step was and what it had measured.

use tokio::time::Instant;

use super::attempt::Attempt;
use super::kind::Flight;
use crate::check::{Step, StepResult};

#[derive(Debug)]
pub(crate) struct Live<'s> {
    pub name: String,
    /// How many attempts so far, this one included.
    pub attempts: u32,
    /// When the first attempt started.
    pub first_started: Instant,
    /// Between attempts, after a failure.
    pub waiting: bool,
    /// The current attempt, as every kind reports it.
    pub attempt: Attempt,
    /// The current attempt, as its kind measures it.
    pub flight: Flight<'s>,
}

impl<'s> Live<'s> {
    pub(crate) fn new(step: &'s Step) -> Live<'s> {
        let (flight, url) = Flight::new(step);
        let attempt = Attempt::new(url);
        Live {
            name: step.name.clone(),
            attempts: 1,
            first_started: attempt.started,
            waiting: false,
            attempt,
            flight,
        }
    }

    /// Starts the next attempt: fresh, keeping the count and the step's start.
    pub(crate) fn restart(&mut self, step: &'s Step) {
        let attempts = self.attempts.saturating_add(1);
        let first_started = self.first_started;
        *self = Live::new(step);
        self.first_started = first_started;
        self.attempts = attempts;
    }

    /// What the step was doing, for a timeout message.
    pub(crate) fn stuck(&self) -> &'static str {
        if self.waiting {
            return "waiting to retry the step";
        }
        self.flight.stuck()
    }

    /// The result as far as the step got, unfinished phases included.
    pub(crate) fn into_result(self) -> StepResult {
        let detail = self.flight.finish();
        let a = self.attempt;
        // Earlier attempts and the pauses between them count too.
        let before = a.started.saturating_duration_since(self.first_started);
        StepResult {
            name: self.name,
            url: a.url,
            detail,
            duration: before + a.measured.unwrap_or_else(|| a.started.elapsed()),
            attempts: self.attempts,
            failures: a.failures.iter().map(|f| f.message.clone()).collect(),
            failure_details: a.failures,
            captures: a.captures,
            excerpt: a.excerpt,
        }
    }
}
