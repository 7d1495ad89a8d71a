//! A step's attempts: each within the step's `timeout` (inside the run's
//! deadline; the earlier wins), tried again after `retry_interval` while
//! `retries` are left and the run has time for another.

use tokio::time::Instant;

use super::attempt::{StepFailure, fail};
use super::context::RunContext;
use super::kind::Kinds;
use super::live::Live;
use crate::check::{Reason, Step};

/// Runs `step` until an attempt passes or its retries are spent. `live`
/// holds the attempt in flight; its result is the last attempt's, with the
/// number of attempts and the time of all of them.
pub(super) async fn run<'s>(
    kinds: &Kinds,
    ctx: &mut RunContext,
    step: &'s Step,
    live: &mut Live<'s>,
) -> Result<(), StepFailure> {
    let attempts = step.retry.retries.saturating_add(1);
    loop {
        let failure = match within_timeout(kinds, ctx, step, live).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        let tried = live.attempts;
        // A value the run could not render does not appear by waiting.
        if failure.reason == Reason::Setup || tried >= attempts {
            return Err(counted(failure, tried));
        }
        let wake = Instant::now().checked_add(step.retry.interval);
        let Some(wake) = wake.filter(|w| *w < ctx.deadline) else {
            let message = format!(
                "{} (attempt {tried} of {attempts}; no time left for another within the check's timeout)",
                failure.message
            );
            return Err(fail(failure.reason, message));
        };
        // The reason only: the message may quote the page.
        tracing::debug!(step = %step.name, attempt = tried, reason = %failure.reason, "step failed, will retry");
        live.waiting = true;
        tokio::time::sleep_until(wake).await;
        live.restart(step);
    }
}

/// One attempt, cut off by the step's own timeout when that comes before
/// the run's deadline (otherwise the run's timeout reports).
async fn within_timeout(
    kinds: &Kinds,
    ctx: &mut RunContext,
    step: &Step,
    live: &mut Live<'_>,
) -> Result<(), StepFailure> {
    let Live {
        flight, attempt, ..
    } = live;
    let Some(limit) = step.timeout else {
        return kinds.attempt(ctx, step, flight, attempt).await;
    };
    let until = Instant::now().checked_add(limit);
    let Some(until) = until.filter(|u| *u < ctx.deadline) else {
        return kinds.attempt(ctx, step, flight, attempt).await;
    };
    let ran = tokio::time::timeout_at(until, kinds.attempt(ctx, step, flight, attempt)).await;
    ran.unwrap_or_else(|_| {
        Err(fail(
            Reason::Timeout,
            format!(
                "timed out after {} (the step's timeout) {}",
                humantime::format_duration(limit),
                live.stuck()
            ),
        ))
    })
}

/// The failure of the last attempt, saying how many there were.
fn counted(failure: StepFailure, tried: u32) -> StepFailure {
    if tried <= 1 {
        return failure;
    }
    let message = format!("{} (after {tried} attempts)", failure.message);
    fail(failure.reason, message)
}
