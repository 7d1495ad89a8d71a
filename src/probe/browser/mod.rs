//! The browser step kind: load a page in headless Chromium (`chromium.rs`,
//! driven over the DevTools protocol's pipe, `cdp.rs`) in a context of its
//! own (`page.rs`), do the step's actions as a member would, then judge the
//! rendered page with the step's assertions as an HTTP step's response is
//! judged. Cookies cross to and from the run's jar (`cookies.rs`).

mod actions;
mod cdp;
mod chromium;
mod cookies;
mod page;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::attempt::{Attempt, StepFailure, fail};
use super::capture::Seen as Jar;
use super::context::RunContext;
use super::judge::{self, Received};
use crate::check::{
    Action, BrowserDetail, BrowserStep, Check, Failure, MAX_SCREENSHOT_BYTES, Reason, Schedule,
    Screenshot, Step, Target, WaitUntil,
};
use crate::template::Template;
use page::{Emulation, gone};

pub(crate) use cdp::replay;
pub(crate) use chromium::{Chromium, executable};
pub(crate) use page::Page;

/// What the browser steps of one run use.
pub(crate) struct Browser {
    chromium: Arc<Chromium>,
    /// The check's proxy (its own or `[defaults]`) and the hosts reached
    /// without it; Chromium sets it per context.
    proxy: Option<(url::Url, Vec<String>)>,
    timezone: String,
    max_body: u64,
}

/// A browser step in flight.
#[derive(Debug)]
pub(crate) struct Flight<'s> {
    step: &'s BrowserStep,
    detail: BrowserDetail,
    stage: &'static str,
}

impl<'s> Flight<'s> {
    pub(crate) fn new(step: &'s BrowserStep) -> (Flight<'s>, String) {
        let url = match &step.url {
            Target::Fixed(u) => shown(u),
            Target::Template(t) => t
                .to_string()
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let flight = Flight {
            step,
            detail: BrowserDetail::default(),
            stage: "preparing the page",
        };
        (flight, url)
    }

    pub(crate) fn stuck(&self) -> &'static str {
        self.stage
    }

    pub(crate) fn finish(self) -> BrowserDetail {
        self.detail
    }
}

impl Browser {
    pub(crate) fn for_check(chromium: &Arc<Chromium>, check: &Check, max_body: u64) -> Browser {
        // The check's own zone where a cron schedule names one.
        let timezone = match &check.schedule {
            Schedule::Cron(c) => c.timezone().to_string(),
            Schedule::Every(_) => chromium.options().timezone.clone(),
        };
        Browser {
            chromium: Arc::clone(chromium),
            proxy: check
                .connection
                .proxy
                .clone()
                .map(|p| (p, check.connection.no_proxy.clone())),
            timezone,
            max_body,
        }
    }

    pub(crate) async fn attempt(
        &self,
        ctx: &mut RunContext,
        step: &Step,
        flight: &mut Flight<'_>,
        attempt: &mut Attempt,
    ) -> Result<(), StepFailure> {
        let spec = flight.step;
        let url = match &spec.url {
            Target::Fixed(u) => u.clone(),
            Target::Template(t) => render_url(ctx, t)?,
        };
        attempt.url = shown(&url);
        let texts = actions::render(ctx, &spec.actions)?;
        flight.stage = "waiting for a browser slot";
        let _slot = self
            .chromium
            .slots
            .acquire()
            .await
            .map_err(|e| fail(Reason::Setup, e.to_string()))?;
        flight.stage = "starting the browser";
        let running = self
            .chromium
            .get()
            .await
            .map_err(|m| fail(Reason::Setup, m))?;
        // A little before the run's own deadline, so a browser that hangs
        // is found out and replaced rather than only abandoned.
        let deadline = step
            .timeout
            .map_or(ctx.deadline, |t| ctx.deadline.min(attempt.started + t));
        let inner = deadline
            .checked_sub(Duration::from_millis(200))
            .unwrap_or(deadline);
        let driven = tokio::time::timeout_at(
            inner,
            self.drive(ctx, step, flight, attempt, &running, &url, &texts, inner),
        )
        .await;
        match driven {
            Ok(done) => done,
            Err(_) => {
                let chromium = Arc::clone(&self.chromium);
                tokio::spawn(async move { chromium.check(&running).await });
                Err(timed_out(attempt.started, inner, flight.stage))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        ctx: &mut RunContext,
        step: &Step,
        flight: &mut Flight<'_>,
        attempt: &mut Attempt,
        running: &Arc<chromium::Running>,
        url: &url::Url,
        texts: &[Option<String>],
        deadline: Instant,
    ) -> Result<(), StepFailure> {
        let spec = flight.step;
        let options = self.chromium.options();
        flight.stage = "opening a page";
        let how = Emulation {
            proxy: self
                .proxy
                .as_ref()
                .map(|(p, bypass)| (p, bypass.as_slice())),
            timezone: &self.timezone,
            locale: &options.locale,
            user_agent: options.user_agent.as_deref(),
        };
        // The run's tab, once a browser step opened it; a new one after a
        // step failed on it, or when the browser it was in is gone.
        let mut page = match ctx.page.take().filter(|p| p.runs_in(running)) {
            Some(mut page) => {
                page.reset();
                page
            }
            None => Box::new(Page::open(Arc::clone(running), &how).await.map_err(gone)?),
        };
        // The jar again: HTTP steps since the last browser step may have
        // changed it.
        cookies::to_browser(&page, &ctx.jar).await.map_err(gone)?;

        // A second is kept for the screenshot of a page that did not load
        // or whose actions did not finish in time.
        let started = Instant::now();
        let acting = deadline
            .checked_sub(Duration::from_secs(1))
            .filter(|d| *d > started)
            .unwrap_or(deadline);
        let acted =
            tokio::time::timeout_at(acting, load_and_act(&mut page, flight, url, texts, started))
                .await
                .unwrap_or_else(|_| Err(timed_out(attempt.started, acting, flight.stage)));
        let first_match = match acted {
            Ok(first_match) => first_match,
            Err(failure) => {
                if spec.screenshot != Screenshot::Never {
                    flight.detail.browser.screenshot =
                        screenshot(&page, &options.screenshots).await;
                }
                return Err(failure);
            }
        };
        let elapsed = started.elapsed();
        attempt.measured = Some(elapsed);
        page.drain();

        flight.stage = "reading the rendered page";
        let text = read_dom(&page, self.max_body).await?;
        let final_url = page
            .eval("location.href")
            .await
            .map_err(gone)?
            .and_then(|v| v.as_str().and_then(|s| url::Url::parse(s).ok()))
            .unwrap_or_else(|| url.clone());
        cookies::from_browser(&page, ctx).await.map_err(gone)?;

        let report = &mut flight.detail.browser;
        let seen = &page.seen;
        report.status = seen.status;
        report.final_url = Some(shown(&final_url));
        let ms = |s: f64| (s * 1000.0).round() as u64;
        for (name, at) in [
            ("navigation", seen.response),
            ("dom_content_loaded", seen.dom_content_loaded),
            ("load", seen.load),
        ] {
            if let Some(at) = at {
                report.timings.insert(name.to_owned(), ms(at));
            }
        }
        if !spec.actions.is_empty() {
            report
                .timings
                .insert("actions".to_owned(), elapsed.as_millis() as u64);
        }
        if let Some(at) = first_match {
            report
                .timings
                .insert("first_match".to_owned(), at.as_millis() as u64);
        }
        let (console, requests, extra) = page_errors(spec, seen, ctx);
        report.console = console;
        report.failed_requests = requests;
        let received = Received {
            status: seen.status.unwrap_or(0),
            headers: seen.headers.clone(),
            size: text.len() as u64,
            text,
            elapsed,
            certificate: None,
            seen: Jar::new(&ctx.jar, &final_url, step),
        };
        flight.stage = "evaluating the page";
        let mut judged = judge::conclude(ctx, step, attempt, received).await;
        if let (Ok(()), Some(first)) = (&judged, extra.first()) {
            judged = Err(fail(Reason::Assertion, first.message.clone()));
        }
        attempt.failures.extend(extra);
        let keep = match spec.screenshot {
            Screenshot::Always => true,
            Screenshot::OnFailure => judged.is_err(),
            Screenshot::Never => false,
        };
        if keep {
            flight.stage = "taking a screenshot";
            flight.detail.browser.screenshot = screenshot(&page, &options.screenshots).await;
        }
        if judged.is_ok() {
            ctx.page = Some(page);
        }
        judged
    }
}

/// Loads the page and does the step's actions; when the first awaited
/// element or text matched.
async fn load_and_act(
    page: &mut Page,
    flight: &mut Flight<'_>,
    url: &url::Url,
    texts: &[Option<String>],
    started: Instant,
) -> Result<Option<Duration>, StepFailure> {
    let spec = flight.step;
    flight.stage = "loading the page";
    if let Err(e) = page.navigate(url).await {
        // An error status with an empty body: Chromium shows its own page
        // instead, and the status is for the expectations to judge.
        if !e.contains("HTTP_RESPONSE_CODE_FAILURE") {
            return Err(net_error(&e, url));
        }
        page.until(|s| s.status.is_some())
            .await
            .ok_or_else(|| gone(cdp::CdpError::Closed))?;
        return Ok(None);
    }
    let waited = match spec.wait_until {
        WaitUntil::Load => page.until(|s| s.load.is_some()).await,
        WaitUntil::DomContentLoaded => page.until(|s| s.dom_content_loaded.is_some()).await,
    };
    waited.ok_or_else(|| gone(cdp::CdpError::Closed))?;
    let mut first_match = None;
    for (action, text) in spec.actions.iter().zip(texts) {
        flight.stage = actions::stage(action);
        actions::act(page, action, text.as_deref()).await?;
        if matches!(action, Action::WaitFor(_) | Action::WaitForText(_)) {
            first_match.get_or_insert(started.elapsed());
        }
    }
    Ok(first_match)
}

/// A timeout's failure, as the run's own would say it.
fn timed_out(started: Instant, at: Instant, stage: &str) -> StepFailure {
    let after = humantime::format_duration(Duration::from_millis(
        at.saturating_duration_since(started).as_millis() as u64,
    ));
    fail(Reason::Timeout, format!("timed out after {after} {stage}"))
}

/// At most this many console errors and failed requests are shown a
/// step, each in at most [`SHOWN`] characters.
const LISTED: usize = 20;
const SHOWN: usize = 300;

/// What the page itself did wrong: its console errors and its failed
/// same-origin requests (those `ignore_requests` leaves), redacted and
/// shortened as shown; and the failures of those the step fails on.
fn page_errors(
    spec: &BrowserStep,
    seen: &page::Seen,
    ctx: &RunContext,
) -> (Vec<String>, Vec<String>, Vec<Failure>) {
    // Redacted before they are shortened: a cut could leave part of a
    // secret the redactor would no longer recognise.
    let shown = |text: &str| {
        let text = ctx.vars.redactor.redact(text);
        match text.char_indices().nth(SHOWN) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.into_owned(),
        }
    };
    let console: Vec<String> = seen.console.iter().map(|c| shown(c)).collect();
    let ignore = spec.failed_requests.as_deref().unwrap_or_default();
    let requests: Vec<String> = seen
        .failed
        .iter()
        .filter(|(url, _)| !ignore.iter().any(|p| p.0.is_match(url)))
        .map(|(url, why)| {
            let url = url::Url::parse(url).map_or_else(|_| url.clone(), |u| self::shown(&u));
            shown(&format!("{url}: {why}"))
        })
        .collect();
    let mut failures = Vec::new();
    if spec.fail_on_console_errors
        && let Some(first) = console.first()
    {
        failures.push(Failure {
            message: format!("the page logged {} error(s), first: {first}", console.len()),
            query: "console".to_owned(),
            expected: Some("log no errors".to_owned()),
            actual: Some(first.clone()),
        });
    }
    if spec.failed_requests.is_some()
        && let Some(first) = requests.first()
    {
        failures.push(Failure {
            message: format!(
                "{} same-origin request(s) failed, first: {first}",
                requests.len()
            ),
            query: "requests".to_owned(),
            expected: Some("all succeed".to_owned()),
            actual: Some(first.clone()),
        });
    }
    let listed = |mut all: Vec<String>| {
        all.truncate(LISTED);
        all
    };
    (listed(console), listed(requests), failures)
}

/// The rendered document as HTML, within the body limit.
/// Between documents (a click that navigated) there is none to read: it
/// is read again until there is, within the step's deadline.
async fn read_dom(page: &Page, max: u64) -> Result<String, StepFailure> {
    // A string of the page's own making, measured as one: `outerHTML` may
    // be a page's getter returning anything.
    let script = format!(
        "(() => {{ const h = String(document.documentElement ? document.documentElement.outerHTML : ''); return h.length > {max} ? {{large: true}} : {{html: '<!DOCTYPE html>' + h}}; }})()"
    );
    loop {
        let answer = page.eval(&script).await.map_err(gone)?;
        match answer.as_ref().map(|a| (&a["html"], &a["large"])) {
            Some((serde_json::Value::String(html), _)) if html.len() as u64 <= max => {
                return Ok(html.clone());
            }
            Some((serde_json::Value::String(_), _)) | Some((_, serde_json::Value::Bool(true))) => {
                return Err(fail(
                    Reason::BodyTooLarge,
                    format!("the rendered page is larger than {max} bytes"),
                ));
            }
            _ => tokio::time::sleep(actions::POLL).await,
        }
    }
}

/// The viewport as PNG, written to `folder`; its path, or `None` when it
/// could not be taken or kept.
async fn screenshot(page: &Page, folder: &std::path::Path) -> Option<String> {
    use base64::Engine as _;
    let answer = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await
        .ok()?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(answer["data"].as_str()?)
        .ok()?;
    if png.len() > MAX_SCREENSHOT_BYTES {
        tracing::warn!(
            bytes = png.len(),
            "screenshot larger than the cap; not kept"
        );
        return None;
    }
    let path = folder.join(format!("{}.png", uuid::Uuid::now_v7().simple()));
    // Private to the daemon's user: a screenshot cannot be redacted.
    let written = async {
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .await?;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &png).await
    };
    match written.await {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            tracing::warn!(folder = %folder.display(), "cannot keep a screenshot: {e}");
            None
        }
    }
}

/// A templated URL, rendered; only `http` and `https` (a `file:` URL would
/// read what the grants refuse).
fn render_url(ctx: &RunContext, t: &Template) -> Result<url::Url, StepFailure> {
    let text = t
        .render(&ctx.vars)
        .map_err(|e| fail(Reason::Setup, format!("url: {e}")))?;
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(u) => Err(fail(
            Reason::Setup,
            format!(
                "a browser step opens http and https URLs only, not {}:",
                u.scheme()
            ),
        )),
        Err(e) => Err(fail(Reason::Setup, format!("invalid URL: {e}"))),
    }
}

/// A URL as results show it: no credentials, query or fragment.
fn shown(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A navigation error (`net::ERR_…`) classified as an HTTP step's would be.
fn net_error(error: &str, url: &url::Url) -> StepFailure {
    let reason = if error.contains("NAME_NOT_RESOLVED") || error.contains("NAME_RESOLUTION") {
        Reason::Dns
    } else if error.contains("CERT") || error.contains("SSL") {
        Reason::Tls
    } else if error.contains("TIMED_OUT") {
        Reason::Timeout
    } else if error.contains("TOO_MANY_REDIRECTS") {
        Reason::Redirects
    } else if error.contains("CONNECTION") || error.contains("ADDRESS") || error.contains("NETWORK")
    {
        Reason::Connect
    } else {
        Reason::Http
    };
    fail(
        reason,
        format!("{} could not be loaded: {error}", shown(url)),
    )
}
