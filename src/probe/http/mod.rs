//! The HTTP step kind: render the request, send it (following redirects
//! itself, with the run's cookie jar), read the body within its limit,
//! decode it, judge it. The client (`client.rs`; `verify.rs` for certificate
//! verification and pinning) and failure classification by error type
//! (`classify.rs`, `tls.rs`) are HTTP's alone.

mod body;
mod classify;
mod client;
mod credential;
mod flight;
mod hop;
mod multipart;
mod render;
mod tls;
mod verify;

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use super::attempt::{Attempt, StepFailure, fail};
use super::capture::{self, Evaluation, Seen};
use super::context::RunContext;
use crate::assert::{PeerCertificate, Response};
use crate::check::{
    Assertion, Check, Failure, HttpStep, Pick, Reason, Redirect, Redirects, Request, Step,
};
use flight::{Stage, transfer};
use render::shown;

pub use client::ClientError;
pub(crate) use client::Clients;
pub(crate) use flight::Flight;

/// What the HTTP steps of one run use.
pub(crate) struct Http {
    /// The client for the check's connection options.
    client: reqwest::Client,
    /// A response whose decoded body exceeds this fails the step.
    max_body: u64,
}

impl Http {
    /// The check's client; the error is a `setup` failure's message.
    pub(crate) fn for_check(
        clients: &Clients,
        check: &Check,
        max_body: u64,
    ) -> Result<Http, String> {
        match clients.get(&check.connection) {
            Ok(client) => Ok(Http { client, max_body }),
            Err(e) => Err(format!(
                "cannot build the HTTP client for the check's `[tls]`, `resolve` or `proxy`: {}",
                crate::error_chain::joined(&e)
            )),
        }
    }

    /// Runs one attempt of `step`, recording its progress in `flight` and
    /// `attempt`.
    pub(crate) async fn attempt(
        &self,
        ctx: &mut RunContext,
        step: &Step,
        flight: &mut Flight<'_>,
        attempt: &mut Attempt,
    ) -> Result<(), StepFailure> {
        let request: &Request = flight.request;
        let mut req = render::prepare(request, &ctx.vars)
            .await
            .map_err(|m| fail(Reason::Setup, m))?;
        attempt.url = shown(&req.url);
        let mut response = loop {
            let response = hop::send(&self.client, ctx, &req, flight).await?;
            // Before anything of this response can be shown.
            ctx.redact_cookies(response.headers());
            let Redirects::Follow(max) = request.redirects else {
                break response;
            };
            let Some(next) = hop::redirect(&response, &req)? else {
                break response;
            };
            if flight.detail.redirects.len() >= max as usize {
                let last = shown(&next.url);
                return Err(fail(
                    Reason::Redirects,
                    format!("more than {max} redirects (last: {last})"),
                ));
            }
            // The step's method and URL stay the request as sent; each hop
            // says what asked for it and where it led.
            flight.detail.redirects.push(Redirect {
                status: response.status().as_u16(),
                location: shown(&next.url),
            });
            req = next;
        };

        flight.stage = Stage::Body;
        let body_started = Instant::now();
        flight.body_started = Some(body_started);
        let body = body::read(&mut response, self.max_body, &shown(&req.url)).await?;
        flight.body_started = None;
        flight.detail.phases.add(&transfer(body_started.elapsed()));
        let elapsed = attempt.started.elapsed();
        attempt.measured = Some(elapsed);

        flight.stage = Stage::Evaluating;
        let headers = std::mem::take(response.headers_mut());
        let received = Received {
            status: response.status().as_u16(),
            text: body::decode(&body, headers.get(CONTENT_TYPE)),
            headers,
            size: body.len() as u64,
            elapsed,
            certificate: peer_certificate(&flight.detail),
            seen: Seen::new(&ctx.jar, &req.url, step),
        };
        drop((response, body));
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
}

/// A response as the assertions see it, owned so it can move to the
/// blocking pool.
struct Received {
    status: u16,
    headers: HeaderMap,
    text: String,
    size: u64,
    elapsed: Duration,
    certificate: Option<PeerCertificate>,
    seen: Seen,
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

/// The certificate the step's last response came with, for `min_cert_days`.
fn peer_certificate(detail: &HttpStep) -> Option<PeerCertificate> {
    Some(PeerCertificate {
        host: detail.host.clone()?,
        expires_at: detail.cert_expires_at?,
        seen_at: chrono::Utc::now(),
    })
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
