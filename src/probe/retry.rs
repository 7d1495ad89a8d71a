//! A step's attempts: each within the step's `timeout` (inside the run's
//! deadline; the earlier wins), tried again after `retry_interval` while
//! `retries` are left and the run has time for another.

use tokio::time::Instant;

use crate::check::{Reason, Step};

use super::step::{self, Live, RunCtx, Stage, StepFailure, fail};

/// Runs `step` until an attempt passes or its retries are spent. `live`
/// holds the attempt in flight; its result is the last attempt's, with the
/// number of attempts and the time of all of them.
pub(super) async fn run(
    ctx: &mut RunCtx<'_>,
    step: &Step,
    live: &mut Live,
) -> Result<(), StepFailure> {
    let attempts = step.retry.retries.saturating_add(1);
    loop {
        let failure = match within_timeout(ctx, step, live).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        let tried = live.result.attempts;
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
        live.stage = Stage::Waiting;
        tokio::time::sleep_until(wake).await;
        restart(live, step);
    }
}

/// One attempt, cut off by the step's own timeout when that comes before
/// the run's deadline (otherwise the run's timeout reports).
async fn within_timeout(
    ctx: &mut RunCtx<'_>,
    step: &Step,
    live: &mut Live,
) -> Result<(), StepFailure> {
    let Some(limit) = step.timeout else {
        return step::attempt(ctx, step, live).await;
    };
    let until = Instant::now().checked_add(limit);
    let Some(until) = until.filter(|u| *u < ctx.deadline) else {
        return step::attempt(ctx, step, live).await;
    };
    let ran = tokio::time::timeout_at(until, step::attempt(ctx, step, live)).await;
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

/// Starts the next attempt: a fresh result that keeps the count and the
/// step's start.
fn restart(live: &mut Live, step: &Step) {
    let attempts = live.result.attempts.saturating_add(1);
    let first_started = live.first_started;
    *live = Live::new(step);
    live.first_started = first_started;
    live.result.attempts = attempts;
}

/// The failure of the last attempt, saying how many there were.
fn counted(failure: StepFailure, tried: u32) -> StepFailure {
    if tried <= 1 {
        return failure;
    }
    let message = format!("{} (after {tried} attempts)", failure.message);
    fail(failure.reason, message)
}
