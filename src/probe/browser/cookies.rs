//! One run, one cookie jar: the run's cookies go into the page's context
//! before it loads, and what the page's context holds afterwards comes
//! back to the jar, each value joining the run's redaction set.

use cookie_store::{CookieDomain, CookieStore, RawCookie};
use serde_json::{Value, json};

use super::cdp::CdpError;
use super::page::Page;
use crate::probe::context::RunContext;

/// Every cookie of the jar, host-only or for a domain, into the page.
pub(super) async fn to_browser(page: &Page, jar: &CookieStore) -> Result<(), CdpError> {
    let cookies: Vec<Value> = jar
        .iter_unexpired()
        .filter_map(|c| {
            let path: &str = c.path.as_ref();
            let scheme = if c.secure().unwrap_or(false) {
                "https"
            } else {
                "http"
            };
            let mut cookie = json!({
                "name": c.name(),
                "value": c.value(),
                "path": path,
                "secure": c.secure().unwrap_or(false),
                "httpOnly": c.http_only().unwrap_or(false),
            });
            match &c.domain {
                CookieDomain::HostOnly(host) => {
                    cookie["url"] = json!(format!("{scheme}://{host}{path}"))
                }
                CookieDomain::Suffix(domain) => cookie["domain"] = json!(format!(".{domain}")),
                _ => return None,
            }
            if let Some(same_site) = c.same_site() {
                cookie["sameSite"] = json!(same_site.to_string());
            }
            Some(cookie)
        })
        .collect();
    if cookies.is_empty() {
        return Ok(());
    }
    page.call("Network.setCookies", json!({"cookies": cookies}))
        .await?;
    Ok(())
}

/// Every cookie of the page's context into the run's jar.
pub(super) async fn from_browser(page: &Page, ctx: &mut RunContext) -> Result<(), CdpError> {
    let answer = page
        .browser_call(
            "Storage.getCookies",
            json!({"browserContextId": page.context()}),
        )
        .await?;
    let now = chrono::Utc::now().timestamp() as f64;
    for c in answer["cookies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(name), Some(value), Some(domain)) = (
            c["name"].as_str(),
            c["value"].as_str(),
            c["domain"].as_str(),
        ) else {
            continue;
        };
        // Before it is parsed: a cookie the jar refuses (a page may set
        // one without a name) is still a value the page may show.
        ctx.redact_cookie(name, value);
        let path = c["path"].as_str().unwrap_or("/");
        let secure = c["secure"].as_bool().unwrap_or(false);
        let mut text = format!("{name}={value}; Path={path}");
        // A leading dot marks a domain cookie; without it, host-only.
        let host = match domain.strip_prefix('.') {
            Some(d) => {
                text.push_str(&format!("; Domain={d}"));
                d
            }
            None => domain,
        };
        if secure {
            text.push_str("; Secure");
        }
        if c["httpOnly"].as_bool().unwrap_or(false) {
            text.push_str("; HttpOnly");
        }
        if let Some(same_site) = c["sameSite"].as_str() {
            text.push_str(&format!("; SameSite={same_site}"));
        }
        if c["session"].as_bool() == Some(false)
            && let Some(expires) = c["expires"].as_f64()
        {
            text.push_str(&format!("; Max-Age={}", (expires - now).max(0.0) as i64));
        }
        let scheme = if secure { "https" } else { "http" };
        let (Ok(raw), Ok(url)) = (
            RawCookie::parse(text),
            url::Url::parse(&format!("{scheme}://{host}{path}")),
        ) else {
            continue;
        };
        let _ = ctx.jar.insert_raw(&raw, &url);
    }
    Ok(())
}
