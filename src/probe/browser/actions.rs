//! A browser step's actions, done as a member would: real clicks are
//! element clicks, typing is the browser's own text input, a key press is
//! a key event (Enter submits a form). Each waits for its element, as long
//! as the step's deadline allows.

use serde_json::json;

use super::page::{Page, gone};
use crate::check::{Action, NAMED_KEYS, Reason};
use crate::probe::attempt::{StepFailure, fail};
use crate::probe::context::RunContext;

/// How long a wait polls between looks.
pub(super) const POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// The text of each action that types or waits for one, rendered before
/// the browser is asked for anything; each typed value joins the run's
/// redaction set, whatever it came from.
pub(super) fn render(
    ctx: &RunContext,
    actions: &[Action],
) -> Result<Vec<Option<String>>, StepFailure> {
    actions
        .iter()
        .map(|a| match a {
            Action::Fill { value, .. } => {
                let text = value
                    .render(&ctx.vars)
                    .map_err(|e| fail(Reason::Setup, format!("`fill` value: {e}")))?
                    .into_owned();
                ctx.vars.redactor.add(&text);
                Ok(Some(text))
            }
            Action::WaitForText(t) => t
                .render(&ctx.vars)
                .map(|t| Some(t.into_owned()))
                .map_err(|e| fail(Reason::Setup, format!("`wait_for_text`: {e}"))),
            _ => Ok(None),
        })
        .collect()
}

/// What a timeout says the step was doing.
pub(super) fn stage(action: &Action) -> &'static str {
    match action {
        Action::Click(_) => "waiting to click an element (`click`)",
        Action::Fill { .. } => "waiting for a field to fill (`fill`)",
        Action::Press(_) => "pressing a key (`press`)",
        Action::WaitFor(_) => "waiting for an element (`wait_for`)",
        Action::WaitForText(_) => "waiting for a text (`wait_for_text`)",
    }
}

pub(super) async fn act(
    page: &mut Page,
    action: &Action,
    text: Option<&str>,
) -> Result<(), StepFailure> {
    match action {
        Action::Click(selector) => {
            let s = js(&selector.source);
            wait(page, &format!("!!document.querySelector({s})")).await?;
            // A real click at the element's centre: an element behind a
            // cookie banner gets no click, as a member's would not.
            let centre = page
                .eval(&format!(
                    "(() => {{ const e = document.querySelector({s}); if (!e) return null; e.scrollIntoView({{block: 'center', inline: 'center'}}); const r = e.getBoundingClientRect(); return r.width && r.height ? [r.left + r.width / 2, r.top + r.height / 2] : null; }})()"
                ))
                .await
                .map_err(gone)?;
            let at = centre
                .as_ref()
                .and_then(|c| Some((c.get(0)?.as_f64()?, c.get(1)?.as_f64()?)));
            let Some((x, y)) = at else {
                return Err(fail(
                    Reason::Assertion,
                    format!("`click` {:?}: the element is not visible", selector.source),
                ));
            };
            for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
                page.call(
                    "Input.dispatchMouseEvent",
                    json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
                )
                .await
                .map_err(gone)?;
            }
        }
        Action::Fill { selector, .. } => {
            let s = js(&selector.source);
            wait(page, &format!("!!document.querySelector({s})")).await?;
            page.eval(&format!(
                "(() => {{ const e = document.querySelector({s}); e.focus(); if (e.select) e.select(); }})()"
            ))
            .await
            .map_err(gone)?;
            page.call(
                "Input.insertText",
                json!({"text": text.unwrap_or_default()}),
            )
            .await
            .map_err(gone)?;
        }
        Action::Press(key) => press(page, key).await?,
        Action::WaitFor(selector) => {
            wait(
                page,
                &format!("!!document.querySelector({})", js(&selector.source)),
            )
            .await?;
        }
        Action::WaitForText(_) => {
            let t = js(text.unwrap_or_default());
            wait(
                page,
                &format!("!!(document.body && document.body.innerText.includes({t}))"),
            )
            .await?;
        }
    }
    Ok(())
}

/// Polls `condition` until the page says true; the step's deadline ends it.
async fn wait(page: &mut Page, condition: &str) -> Result<(), StepFailure> {
    loop {
        // Between documents (a click that navigates) the page has no
        // context to evaluate in: that is "not yet".
        if page.eval(condition).await.map_err(gone)? == Some(json!(true)) {
            return Ok(());
        }
        page.drain();
        tokio::time::sleep(POLL).await;
    }
}

/// A key down and up, with the text it types (Enter types a carriage
/// return, which submits a form).
async fn press(page: &Page, key: &str) -> Result<(), StepFailure> {
    // Checked at load: a named key, or one character.
    let (code, text) = match NAMED_KEYS.iter().find(|(k, _)| *k == key) {
        Some(("Enter", code)) => (*code, "\r".to_owned()),
        Some((_, code)) => (*code, String::new()),
        None => (
            key.chars()
                .next()
                .map_or(0, |c| c.to_ascii_uppercase() as u32),
            key.to_owned(),
        ),
    };
    for kind in ["keyDown", "keyUp"] {
        let mut event = json!({"type": kind, "key": key, "windowsVirtualKeyCode": code});
        if kind == "keyDown" && !text.is_empty() {
            event["text"] = json!(text);
        }
        page.call("Input.dispatchKeyEvent", event)
            .await
            .map_err(gone)?;
    }
    Ok(())
}

/// `s` as a JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
