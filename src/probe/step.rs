//! One step: render the request, send it (following redirects itself, with
//! the run's cookie jar), read the body within its limit, decode it, judge it.

use std::sync::Arc;
use std::time::Duration;

use cookie_store::CookieStore;
use http::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use crate::assert::{PeerCertificate, Response};
use crate::check::{Phases, Reason, Redirect, Redirects, Step, StepResult, Target};

use super::body;
use super::capture::{self, Evaluation, Seen};
use super::client::HopTimer;
use super::hop;
use super::render::{self, RunVars, shown};

/// What the steps of one run share.
pub(super) struct RunCtx<'c> {
    pub client: &'c reqwest::Client,
    pub max_body: u64,
    pub vars: RunVars,
    /// Cookies of this run only; thrown away with it.
    pub jar: CookieStore,
    /// The run's absolute deadline.
    pub deadline: Instant,
}

/// A step in flight, kept outside the run's timed future so that a timeout
/// can still say where the step was and what it had measured.
#[derive(Debug)]
pub(super) struct Live {
    pub result: StepResult,
    /// When the first attempt started.
    pub first_started: Instant,
    /// When the current attempt started.
    pub started: Instant,
    pub stage: Stage,
    /// The request waiting for its headers, with its timer.
    pub hop: Option<Arc<HopTimer>>,
    pub body_started: Option<Instant>,
    /// Time from the step's start to the end of its body.
    pub network: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Preparing,
    Headers,
    Body,
    Evaluating,
    /// Between attempts, after a failure.
    Waiting,
}

/// Why a step failed, without the step's name (the run adds it).
#[derive(Debug)]
pub(super) struct StepFailure {
    pub reason: Reason,
    pub message: String,
}

pub(super) fn fail(reason: Reason, message: impl Into<String>) -> StepFailure {
    StepFailure {
        reason,
        message: message.into(),
    }
}

impl Live {
    pub(super) fn new(step: &Step) -> Live {
        Live {
            result: StepResult {
                name: step.name.clone(),
                method: step.request.method.as_str().to_owned(),
                // Placeholders as written, never values; no query (tokens).
                url: match &step.request.url {
                    Target::Fixed(url) => shown(url),
                    template => template
                        .to_string()
                        .split(['?', '#'])
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                },
                status: None,
                duration: Duration::ZERO,
                phases: Phases::default(),
                redirects: Vec::new(),
                attempts: 1,
                failures: Vec::new(),
                failure_details: Vec::new(),
                captures: Default::default(),
                excerpt: None,
                host: None,
                cert_expires_at: None,
            },
            first_started: Instant::now(),
            started: Instant::now(),
            stage: Stage::Preparing,
            hop: None,
            body_started: None,
            network: None,
        }
    }

    /// What the step was doing, for a timeout message.
    pub(super) fn stuck(&self) -> &'static str {
        match self.stage {
            Stage::Preparing => "preparing the request",
            Stage::Headers => self
                .hop
                .as_ref()
                .and_then(|h| h.snapshot().stuck())
                .unwrap_or("waiting for response headers"),
            Stage::Body => "reading the body",
            Stage::Evaluating => "evaluating the response",
            Stage::Waiting => "waiting to retry the step",
        }
    }

    /// The result as far as the step got, unfinished phases included.
    pub(super) fn into_result(mut self) -> StepResult {
        if let Some(hop) = self.hop.take() {
            self.result.phases.add(&hop.snapshot().phases());
        }
        if let Some(started) = self.body_started.take() {
            self.result.phases.add(&transfer(started.elapsed()));
        }
        // Earlier attempts and the pauses between them count too.
        let before = self.started.saturating_duration_since(self.first_started);
        self.result.duration = before + self.network.unwrap_or_else(|| self.started.elapsed());
        self.result
    }
}

fn transfer(d: Duration) -> Phases {
    Phases {
        transfer: Some(d),
        ..Phases::default()
    }
}

/// Runs one attempt of a step, recording its progress in `live`.
pub(super) async fn attempt(
    ctx: &mut RunCtx<'_>,
    step: &Step,
    live: &mut Live,
) -> Result<(), StepFailure> {
    let mut req = render::prepare(&step.request, &ctx.vars)
        .await
        .map_err(|m| fail(Reason::Setup, m))?;
    live.result.url = shown(&req.url);
    let mut response = loop {
        let response = hop::send(ctx, &req, live).await?;
        let Redirects::Follow(max) = step.request.redirects else {
            break response;
        };
        let Some(next) = hop::redirect(&response, &req)? else {
            break response;
        };
        if live.result.redirects.len() >= max as usize {
            let last = shown(&next.url);
            return Err(fail(
                Reason::Redirects,
                format!("more than {max} redirects (last: {last})"),
            ));
        }
        // The step's method and URL stay the request as sent; each hop
        // says what asked for it and where it led.
        live.result.redirects.push(Redirect {
            status: response.status().as_u16(),
            location: shown(&next.url),
        });
        req = next;
    };

    live.stage = Stage::Body;
    let body_started = Instant::now();
    live.body_started = Some(body_started);
    let body = body::read(&mut response, ctx.max_body, &shown(&req.url)).await?;
    live.body_started = None;
    live.result.phases.add(&transfer(body_started.elapsed()));
    let elapsed = live.started.elapsed();
    live.network = Some(elapsed);

    live.stage = Stage::Evaluating;
    let headers = std::mem::take(response.headers_mut());
    let received = Received {
        status: response.status().as_u16(),
        text: body::decode(&body, headers.get(CONTENT_TYPE)),
        headers,
        size: body.len() as u64,
        elapsed,
        certificate: peer_certificate(&live.result),
        seen: Seen::new(&ctx.jar, &req.url, step),
    };
    drop((response, body));
    // The attempt's deadline: the step's own timeout when it comes first.
    let deadline = step
        .timeout
        .map_or(ctx.deadline, |t| ctx.deadline.min(live.started + t));
    let (evaluation, received) = judge(ctx, step, received, deadline.into_std()).await?;
    let Evaluation {
        failures,
        failed,
        captures,
    } = evaluation;
    live.result.captures = captures;
    if failed.is_some() {
        // Redacted before it is folded and cut, so no piece of a secret stays.
        let text = ctx.vars.redactor.redact_head(&received.text);
        live.result.excerpt = Some(excerpt(&text));
    }
    live.result.failures = failures.iter().map(|f| f.message.clone()).collect();
    live.result.failure_details = failures;
    match (failed, live.result.failures.first()) {
        (Some(reason), Some(first)) => Err(fail(reason, first.clone())),
        _ => Ok(()),
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
fn peer_certificate(result: &StepResult) -> Option<PeerCertificate> {
    Some(PeerCertificate {
        host: result.host.clone()?,
        expires_at: result.cert_expires_at?,
        seen_at: chrono::Utc::now(),
    })
}

/// The start of a failing response's text, white space folded: evidence
/// of what the page showed.
fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.len() + word.len() >= MAX {
            out.push('…');
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Takes the step's captures and checks its assertions.
async fn judge(
    ctx: &mut RunCtx<'_>,
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
