//! How every kind judges what its step received: the step's captures,
//! then its assertions (HTML parsed on the blocking pool, within the
//! attempt's deadline), and a failing response's evidence.

use std::time::Duration;

use http::HeaderMap;

use super::attempt::{Attempt, StepFailure, fail};
use super::capture::{self, Evaluation, Seen};
use super::context::RunContext;
use crate::assert::{PeerCertificate, Response};
use crate::check::{Assertion, Failure, Pick, Reason, Step};

/// Judges what an attempt of `step` received: its captures and failures
/// go into `attempt`, and, when it failed, the evidence's excerpt.
pub(super) async fn conclude(
    ctx: &mut RunContext,
    step: &Step,
    attempt: &mut Attempt,
    received: Received,
) -> Result<(), StepFailure> {
    // The attempt's deadline: the step's own timeout when it comes first.
    let deadline = step
        .timeout
        .map_or(ctx.deadline, |t| ctx.deadline.min(attempt.started + t));
    let (evaluation, received) = judge(ctx, step, received, deadline.into_std()).await?;
    let Evaluation {
        failures,
        failed,
        captures,
    } = evaluation;
    attempt.captures = captures;
    if failed.is_some() {
        let looked_at = failing_picks(step, &failures);
        let excerpt = evidence(received.text, looked_at, deadline.into_std()).await;
        // Redacted once taken: the text of a page decodes its entities,
        // which may spell a secret out; a secret cut by the `…` goes too.
        attempt.excerpt = Some(ctx.vars.redactor.redact(&excerpt).into_owned());
    }
    attempt.failures = failures;
    match (failed, attempt.failures.first()) {
        (Some(reason), Some(first)) => Err(fail(reason, first.message.clone())),
        _ => Ok(()),
    }
}

/// A response as the assertions see it, owned so it can move to the
/// blocking pool.
pub(super) struct Received {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub size: u64,
    pub elapsed: Duration,
    pub certificate: Option<PeerCertificate>,
    pub seen: Seen,
}

impl Received {
    fn view(&self) -> Response<'_> {
        Response {
            status: self.status,
            headers: &self.headers,
            body: &self.text,
            size: self.size,
            elapsed: self.elapsed,
            certificate: self.certificate.as_ref(),
        }
    }
}

/// The picks of `step`'s assertions among `failures`: where the evidence
/// looks first.
fn failing_picks(step: &Step, failures: &[Failure]) -> Vec<Pick> {
    step.assertions
        .iter()
        .filter_map(|a| match a {
            Assertion::Pick(pick, _) => Some(pick),
            _ => None,
        })
        .filter(|pick| {
            let query = pick.to_string();
            failures.iter().any(|f| f.query == query)
        })
        .cloned()
        .collect()
}

/// The excerpt of a failing response, taken on the blocking pool: a page is
/// parsed for it (again, and only when a step fails), within `deadline`.
async fn evidence(text: String, looked_at: Vec<Pick>, deadline: std::time::Instant) -> String {
    tokio::task::spawn_blocking(move || {
        crate::assert::visible::excerpt(&text, &looked_at, deadline)
    })
    .await
    .unwrap_or_default()
}

/// Takes the step's captures and checks its assertions.
async fn judge(
    ctx: &mut RunContext,
    step: &Step,
    received: Received,
    deadline: std::time::Instant,
) -> Result<(Evaluation, Received), StepFailure> {
    if !step.needs_html() {
        let evaluation = capture::evaluate(
            received.view(),
            &received.seen,
            step,
            &mut ctx.vars,
            deadline,
        );
        return Ok((evaluation, received));
    }
    // Parsed HTML is not `Send` and parsing is CPU work: both belong on the
    // blocking pool, with owned copies of what they read. Parsing stops at
    // the deadline, so a page slow to parse does not hold a blocking
    // thread after its run has timed out.
    let step = step.clone();
    let mut vars = ctx.vars.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let evaluation =
            capture::evaluate(received.view(), &received.seen, &step, &mut vars, deadline);
        (evaluation, vars, received)
    })
    .await;
    match joined {
        Ok((evaluation, vars, received)) => {
            ctx.vars = vars;
            Ok((evaluation, received))
        }
        Err(e) => Err(fail(
            Reason::Assertion,
            format!("evaluating the response failed: {e}"),
        )),
    }
}
