//! How `scarecrow once` prints its results: for people, for scripts (JSON)
//! and for CI systems (JUnit XML).

use std::fmt::Write as _;

use crate::check::words::count;
use crate::check::{Outcome, Redacted, RunResult, StepDetail};
use crate::text::EscapeXml as xml;

/// Readable lines, one per check, with the failing step and why.
pub fn human(results: &[Redacted<RunResult>]) -> String {
    let width = results.iter().map(|r| r.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let ms = r.duration.as_millis();
        match &r.outcome {
            Outcome::Success => {
                let _ = writeln!(out, "PASS  {:width$}  {ms} ms", r.check);
            }
            Outcome::Failure {
                reason,
                step,
                message,
            } => {
                let at = step
                    .as_deref()
                    .map(|s| format!(" at step {s:?}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "FAIL  {:width$}  {ms} ms  {reason}{at}", r.check);
                let _ = writeln!(out, "      {message}");
                // The message is the failing step's first failure; the
                // others held no more than it did, and a reader fixing the
                // page wants them all at once.
                let failing = r.steps.last().filter(|s| step.as_ref() == Some(&s.name));
                for f in failing
                    .into_iter()
                    .flat_map(|s| s.failure_details.iter().skip(1))
                {
                    let _ = writeln!(out, "      also: {}", f.message);
                }
                let shot = failing.and_then(|s| match &s.detail {
                    StepDetail::Browser(b) => b.browser.screenshot.as_deref(),
                    StepDetail::Http(_) => None,
                });
                if let Some(shot) = shot {
                    let _ = writeln!(out, "      screenshot: {shot}");
                }
            }
        }
    }
    let failed = results.iter().filter(|r| !r.outcome.is_success()).count();
    let _ = writeln!(
        out,
        "\n{}: {} passed, {failed} failed",
        count(results.len(), "check"),
        results.len() - failed
    );
    out
}

/// A JSON document: totals and every run with its steps and timings.
pub fn json(results: &[Redacted<RunResult>]) -> String {
    let failed = results.iter().filter(|r| !r.outcome.is_success()).count();
    let doc = serde_json::json!({
        "passed": results.len() - failed,
        "failed": failed,
        "results": results,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// JUnit XML, one test case per check, as CI systems read it.
pub fn junit(results: &[Redacted<RunResult>]) -> String {
    let failed = results.iter().filter(|r| !r.outcome.is_success()).count();
    let total: f64 = results.iter().map(|r| r.duration.as_secs_f64()).sum();
    let stamp = results
        .first()
        .map(|r| r.started_at.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        r#"tests="{}" failures="{failed}" errors="0" time="{total:.3}""#,
        results.len()
    );
    let _ = writeln!(out, r#"<testsuites name="scarecrow" {counts}>"#);
    let _ = writeln!(
        out,
        r#"  <testsuite name="scarecrow" {counts} timestamp="{stamp}">"#
    );
    for r in results {
        let name = xml(&r.check);
        let time = r.duration.as_secs_f64();
        let open =
            format!(r#"    <testcase name="{name}" classname="scarecrow.{name}" time="{time:.3}""#);
        match &r.outcome {
            Outcome::Success => {
                let _ = writeln!(out, "{open}/>");
            }
            Outcome::Failure {
                reason, message, ..
            } => {
                let _ = writeln!(out, "{open}>");
                let _ = writeln!(
                    out,
                    r#"      <failure type="{reason}" message="{}">{}</failure>"#,
                    xml(message),
                    xml(&details(r))
                );
                let _ = writeln!(out, "    </testcase>");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The steps of a failed run, for the body of a JUnit failure.
fn details(r: &RunResult) -> String {
    let mut s = String::new();
    for step in &r.steps {
        let tries = match step.attempts {
            0 | 1 => String::new(),
            n => format!(", {n} attempts"),
        };
        let ms = step.duration.as_millis();
        match &step.detail {
            StepDetail::Http(http) => {
                let status = http
                    .status
                    .map_or_else(|| "-".to_owned(), |c| c.to_string());
                // The request as sent, then each redirect it followed.
                let hops: String = http
                    .redirects
                    .iter()
                    .map(|h| format!(" -> {} {}", h.status, h.location))
                    .collect();
                let _ = writeln!(
                    s,
                    "{} {} {}{hops} -> {status} ({ms} ms{tries})",
                    step.name, http.method, step.url
                );
            }
            StepDetail::Browser(b) => {
                let b = &b.browser;
                let status = b.status.map_or_else(|| "-".to_owned(), |c| c.to_string());
                let _ = writeln!(
                    s,
                    "{} browser {} -> {status} ({ms} ms{tries})",
                    step.name, step.url
                );
                if let Some(shot) = &b.screenshot {
                    let _ = writeln!(s, "  screenshot: {shot}");
                }
            }
        }
        // Each failure with where it looked, what it expected and what it
        // found; runs without the details show their messages alone.
        if step.failure_details.is_empty() {
            for f in &step.failures {
                let _ = writeln!(s, "  {f}");
            }
        }
        for f in &step.failure_details {
            let _ = writeln!(s, "  {}", f.message);
            let _ = writeln!(s, "    query: {}", f.query);
            if let Some(expected) = &f.expected {
                let _ = writeln!(s, "    expected it to: {expected}");
            }
            if let Some(actual) = &f.actual {
                let _ = writeln!(s, "    actual: {actual}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::check::{Failure, Outcome, Reason, Redacted, RunResult, StepResult};

    /// A run that failed at step "open" with these failures.
    fn failed(details: Vec<Failure>) -> Redacted<RunResult> {
        let first = details
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        Redacted::vouched(RunResult {
            check: "weather".into(),
            started_at: "2026-11-25T14:49:00Z".parse().unwrap(),
            duration: std::time::Duration::from_millis(3),
            outcome: Outcome::Failure {
                reason: Reason::Assertion,
                step: Some("open".into()),
                message: format!("step \"open\": {first}"),
            },
            steps: vec![StepResult {
                name: "open".into(),
                failures: details.iter().map(|f| f.message.clone()).collect(),
                failure_details: details,
                ..Default::default()
            }],
        })
    }

    #[test]
    fn a_junit_failure_shows_where_it_looked_and_what_it_expected_and_found() {
        let status = Failure::new("status", "expected status 200, got 503".into())
            .expected("be 200")
            .actual("503");
        let xml = super::junit(&[failed(vec![status])]);
        let body = "  expected status 200, got 503\n    query: status\n    \
                    expected it to: be 200\n    actual: 503\n";
        assert!(xml.contains(body), "{xml}");
    }

    #[test]
    fn the_human_report_lists_every_failure_of_the_failing_step() {
        let failure = |m: &str| Failure::new("body", m.into());
        let text = super::human(&[failed(vec![failure("first"), failure("second")])]);
        assert!(
            text.contains("      step \"open\": first\n      also: second\n"),
            "{text}"
        );
    }

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(
            super::xml("a<b & \"c\"\u{1}").to_string(),
            "a&lt;b &amp; &quot;c&quot;"
        );
    }
}
