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

use http::header::CONTENT_TYPE;
use tokio::time::Instant;

use super::attempt::{Attempt, StepFailure, fail};
use super::capture::Seen;
use super::context::RunContext;
use super::judge::{self, Received};
use crate::assert::PeerCertificate;
use crate::check::{Check, HttpStep, Reason, Redirect, Redirects, Request, Step};
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
        judge::conclude(ctx, step, attempt, received).await
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
