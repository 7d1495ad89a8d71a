//! One run's page: a fresh browser context (its own cookies, cache and
//! storage) with one tab, emulating the fixed viewport, the check's time
//! zone and locale, and what it saw, from the events of its session.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::cdp::{CdpError, Event};
use super::chromium::Running;
use crate::check::Reason;
use crate::check::VIEWPORT;
use crate::probe::attempt::{StepFailure, fail};

/// At most this many console errors and failed same-origin requests are
/// kept a step, each cut to [`LONGEST`] characters.
const KEEP: usize = 200;
const LONGEST: usize = 4096;
/// At most this many requests in flight are remembered (for the URL of
/// one that fails).
const REQUESTS: usize = 4096;

/// How a page is set up.
pub(super) struct Emulation<'a> {
    /// The check's proxy, and the hosts reached without it.
    pub proxy: Option<(&'a url::Url, &'a [String])>,
    pub timezone: &'a str,
    pub locale: &'a str,
    pub user_agent: Option<&'a str>,
}

/// A run's tab, in a browser context of its own, and what its events told
/// of the step now on it.
pub(crate) struct Page {
    browser: Arc<Running>,
    context: String,
    session: String,
    events: mpsc::Receiver<Event>,
    /// The navigation being waited for.
    loader: Option<String>,
    frame: Option<String>,
    /// The origin navigated to: failed requests are counted from it.
    origin: Option<url::Origin>,
    /// When the document's request was sent (the browser's clock, s).
    started: Option<f64>,
    pub(super) seen: Seen,
    urls: HashMap<String, String>,
}

/// What the page's events showed.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub status: Option<u16>,
    pub headers: HeaderMap,
    /// Seconds after the document's request: its response, DOMContentLoaded, load.
    pub response: Option<f64>,
    pub dom_content_loaded: Option<f64>,
    pub load: Option<f64>,
    pub console: Vec<String>,
    /// URL and why, of every request that failed or answered ≥ 400.
    pub failed: Vec<(String, String)>,
}

impl Page {
    /// A new context and tab in `browser`.
    pub(super) async fn open(browser: Arc<Running>, how: &Emulation<'_>) -> Result<Page, CdpError> {
        let mut params = json!({"disposeOnDetach": true});
        if let Some((proxy, bypass)) = how.proxy {
            // Chromium takes `scheme://host:port`; with a path (the URL's
            // own `/`) it refuses every request.
            let port = proxy.port_or_known_default().unwrap_or(80);
            let host = proxy.host_str().unwrap_or_default();
            params["proxyServer"] = json!(format!("{}://{host}:{port}", proxy.scheme()));
            params["proxyBypassList"] = json!(bypass.join(","));
        }
        let context = browser
            .cdp
            .call(None, "Target.createBrowserContext", params)
            .await?["browserContextId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // From here the page owns the context: however this run ends, even
        // cancelled mid-way, dropping the page disposes of it.
        let mut page = Page {
            browser,
            context,
            session: String::new(),
            events: mpsc::channel(1).1,
            loader: None,
            frame: None,
            origin: None,
            started: None,
            seen: Seen::default(),
            urls: HashMap::new(),
        };
        let target = page
            .browser_call(
                "Target.createTarget",
                json!({"url": "about:blank", "browserContextId": page.context}),
            )
            .await?;
        let attached = page
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await?;
        page.session = attached["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        page.events = page.browser.cdp.subscribe(&page.session);
        page.set_up(how).await?;
        Ok(page)
    }

    /// Whether this tab is in `browser`, which still runs.
    pub(super) fn runs_in(&self, browser: &Arc<Running>) -> bool {
        Arc::ptr_eq(&self.browser, browser) && !browser.cdp.is_closed()
    }

    /// Forgets what the last step saw, for the next step on this tab.
    pub(super) fn reset(&mut self) {
        while self.events.try_recv().is_ok() {}
        self.loader = None;
        self.frame = None;
        self.origin = None;
        self.started = None;
        self.seen = Seen::default();
        self.urls.clear();
    }

    async fn set_up(&self, how: &Emulation<'_>) -> Result<(), CdpError> {
        self.call("Page.enable", json!({})).await?;
        self.call("Page.setLifecycleEventsEnabled", json!({"enabled": true}))
            .await?;
        // Small buffers: bodies are never read through the protocol.
        self.call(
            "Network.enable",
            json!({"maxTotalBufferSize": 0, "maxResourceBufferSize": 0}),
        )
        .await?;
        // For console errors, shown whether or not the step fails on them.
        self.call("Runtime.enable", json!({})).await?;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": VIEWPORT.0, "height": VIEWPORT.1, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
        self.call(
            "Emulation.setTimezoneOverride",
            json!({"timezoneId": how.timezone}),
        )
        .await?;
        self.call("Emulation.setLocaleOverride", json!({"locale": how.locale}))
            .await?;
        let ua = match how.user_agent {
            Some(ua) => ua.to_owned(),
            None => self.call("Browser.getVersion", json!({})).await?["userAgent"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        self.call(
            "Emulation.setUserAgentOverride",
            json!({"userAgent": ua, "acceptLanguage": how.locale}),
        )
        .await?;
        Ok(())
    }

    /// A command to this page.
    pub(super) async fn call(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.browser
            .cdp
            .call(Some(&self.session), method, params)
            .await
    }

    /// A command to the browser.
    pub(super) async fn browser_call(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        self.browser.cdp.call(None, method, params).await
    }

    pub(super) fn context(&self) -> &str {
        &self.context
    }

    /// Starts loading `url`; the error is the browser's (`net::ERR_…`).
    pub(super) async fn navigate(&mut self, url: &url::Url) -> Result<(), String> {
        self.origin = Some(url.origin());
        let answer = self
            .call("Page.navigate", json!({"url": url.as_str()}))
            .await
            .map_err(|e| e.to_string())?;
        self.loader = answer["loaderId"].as_str().map(str::to_owned);
        self.frame = answer["frameId"].as_str().map(str::to_owned);
        match answer["errorText"].as_str().filter(|e| !e.is_empty()) {
            Some(error) => Err(error.to_owned()),
            None => Ok(()),
        }
    }

    /// Reads events until `done` holds of what they showed; `None` when the
    /// browser closed the page's session.
    pub(super) async fn until(&mut self, done: impl Fn(&Seen) -> bool) -> Option<()> {
        while !done(&self.seen) {
            let event = self.events.recv().await?;
            self.note(event);
        }
        Some(())
    }

    /// Takes in every event already queued.
    pub(super) fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.note(event);
        }
    }

    fn note(&mut self, event: Event) {
        let p = &event.params;
        match event.method.as_str() {
            "Network.requestWillBeSent" => {
                if let (Some(id), Some(url)) =
                    (p["requestId"].as_str(), p["request"]["url"].as_str())
                {
                    if self.urls.len() < REQUESTS {
                        self.urls.insert(id.to_owned(), cut(url));
                    }
                    if self.is_document(p) && self.started.is_none() {
                        self.started = p["timestamp"].as_f64();
                    }
                }
            }
            "Network.responseReceived" => {
                let response = &p["response"];
                let status = response["status"].as_u64().unwrap_or(0);
                // The main frame's latest document (after a script's
                // redirect, or a click that navigated) is the one judged.
                if self.is_document(p) {
                    self.seen.status = u16::try_from(status).ok();
                    self.seen.headers = headers(&response["headers"]);
                    self.seen.response = self.since(p["timestamp"].as_f64());
                    return;
                }
                // The browser asks for a favicon on its own; a page did not.
                let url = response["url"].as_str().unwrap_or_default();
                if status >= 400 && !url.ends_with("/favicon.ico") {
                    self.failed(url, format!("answered {status}"));
                }
            }
            "Network.loadingFinished" => {
                self.urls
                    .remove(p["requestId"].as_str().unwrap_or_default());
            }
            "Network.loadingFailed" => {
                let url = self
                    .urls
                    .remove(p["requestId"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                if !p["canceled"].as_bool().unwrap_or(false) {
                    let why = p["errorText"].as_str().unwrap_or("failed").to_owned();
                    self.failed(&url, why);
                }
            }
            "Page.frameNavigated" => {
                let frame = &p["frame"];
                let main =
                    frame["parentId"].is_null() && frame["id"].as_str() == self.frame.as_deref();
                if main && self.loader.is_some() {
                    self.loader = frame["loaderId"].as_str().map(str::to_owned);
                }
            }
            "Page.lifecycleEvent" => {
                let ours = self.loader.is_some()
                    && p["loaderId"].as_str() == self.loader.as_deref()
                    && p["frameId"].as_str() == self.frame.as_deref();
                if ours {
                    let at = self.since(p["timestamp"].as_f64()).or(Some(0.0));
                    match p["name"].as_str() {
                        Some("DOMContentLoaded") => self.seen.dom_content_loaded = at,
                        Some("load") => self.seen.load = at,
                        _ => {}
                    }
                }
            }
            "Runtime.consoleAPICalled" if p["type"] == "error" => {
                let text: Vec<String> = p["args"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or_default().to_owned(),
                        v => v.to_string(),
                    })
                    .collect();
                self.console(format!("console.error: {}", text.join(" ")));
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("exception");
                self.console(format!("uncaught: {text}"));
            }
            _ => {}
        }
    }

    fn console(&mut self, text: String) {
        if self.seen.console.len() < KEEP {
            self.seen.console.push(cut(&text));
        }
    }

    /// A same-origin request that failed; others are no concern of the
    /// page's (on a closed network, fonts and analytics always fail).
    fn failed(&mut self, url: &str, why: String) {
        let same = url::Url::parse(url).is_ok_and(|u| Some(u.origin()) == self.origin);
        if same && self.seen.failed.len() < KEEP {
            self.seen.failed.push((cut(url), why));
        }
    }

    /// Whether a network event is of a document of the page's main frame,
    /// once it navigated.
    fn is_document(&self, p: &Value) -> bool {
        self.loader.is_some()
            && p["type"] == "Document"
            && p["frameId"].as_str() == self.frame.as_deref()
    }

    fn since(&self, at: Option<f64>) -> Option<f64> {
        Some((at? - self.started?).max(0.0))
    }

    /// Evaluates `expression` in the page; `Ok(None)` when it threw or the
    /// page was between documents.
    pub(super) async fn eval(&self, expression: &str) -> Result<Option<Value>, CdpError> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        match answer {
            Ok(a) if a.get("exceptionDetails").is_none() => Ok(a["result"].get("value").cloned()),
            Ok(_) => Ok(None),
            Err(CdpError::Closed) => Err(CdpError::Closed),
            Err(CdpError::Protocol(_)) => Ok(None),
        }
    }
}

/// Closes the context, its tab, cookies and storage, also when the run
/// gave up on the page mid-step.
impl Drop for Page {
    fn drop(&mut self) {
        self.browser.cdp.unsubscribe(&self.session);
        let browser = Arc::clone(&self.browser);
        let context = std::mem::take(&mut self.context);
        tokio::spawn(async move { dispose(&browser, &context).await });
    }
}

/// Bounded: a hung browser is killed by the step that found it hung, and
/// must not be kept alive by its pages.
async fn dispose(browser: &Running, context: &str) {
    let disposed = browser.cdp.call(
        None,
        "Target.disposeBrowserContext",
        json!({"browserContextId": context}),
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), disposed).await;
}

/// At most [`LONGEST`] characters of `text`, marked `…` when cut (the
/// redactor then also removes a secret the cut shortened).
fn cut(text: &str) -> String {
    match text.char_indices().nth(LONGEST) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// CDP's headers object (several values of one name joined by newlines).
fn headers(v: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Some(object) = v.as_object() else {
        return map;
    };
    for (name, value) in object {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for line in value.as_str().unwrap_or_default().split('\n') {
            if let Ok(value) = HeaderValue::from_str(line) {
                map.append(name.clone(), value);
            }
        }
    }
    map
}

/// The browser went away under the step.
pub(super) fn gone(e: CdpError) -> StepFailure {
    match e {
        CdpError::Closed => fail(
            Reason::Setup,
            "the browser exited during the step (it is started again for the next run)",
        ),
        CdpError::Protocol(m) => fail(Reason::Setup, format!("the browser refused: {m}")),
    }
}
