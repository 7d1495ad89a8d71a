//! Multi-step flows against a second fixture site that works unlike the demo:
//! the CSRF token in a `<meta>` tag sent back as a header, a session cookie
//! with `Path` and `HttpOnly` that changes at login, a 303 after the POST, a
//! bearer API, a Basic-auth upload that answers 307, an eventually
//! consistent page. Check files are read by the real loader.

mod bad_input;
mod barn;
#[path = "../common/mod.rs"]
mod common;
mod origins;

use std::path::Path;
use std::time::Duration;

use barn::{PASSWORD, start};
use scarecrow::check::{Check, Outcome, Reason, Redacted, Redirect, RunResult};
use scarecrow::config::{Defaults, Source, read_check};
use scarecrow::probe::{Probe, ProbeSettings};
use scarecrow::secret::Secrets;

/// A fresh directory with `checks/testdata/invoice.pdf`, removed when dropped.
pub fn workdir() -> tempfile::TempDir {
    let tmp = common::scratch("flows");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks/testdata")).expect("mkdir");
    std::fs::write(dir.join("checks/testdata/invoice.pdf"), "%PDF-1.4 fake").expect("pdf");
    tmp
}

/// Loads `text` as `checks/<name>.toml` in `dir`; panics on any error.
pub fn check(dir: &Path, name: &str, text: &str) -> Check {
    let src = Source::new(dir.join(format!("checks/{name}.toml")), text.to_owned());
    let (check, diags) = read_check(&src, &Defaults::default(), &|_| None);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    check.expect("a check")
}

pub async fn run(check: &Check) -> Redacted<RunResult> {
    let settings = ProbeSettings {
        secrets: Secrets::default().with_fallback("BARN_PASSWORD", PASSWORD),
        ..ProbeSettings::default()
    };
    Probe::new(settings).expect("probe").run(check).await
}

pub fn failure(r: &RunResult) -> (Reason, &str) {
    match &r.outcome {
        Outcome::Failure {
            reason, message, ..
        } => (*reason, message.as_str()),
        Outcome::Success => panic!("expected a failure, got {r:#?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_against_a_site_unlike_the_demo_passes() {
    let site = start().await;
    let dir = workdir();
    let flow = check(
        dir.path(),
        "barn",
        &format!(
            r##"
[[step]]
name = "open sign-in"
url = "{site}/app/sign-in"

[[step.capture]]
name = "csrf"
css = 'meta[name="csrf-token"]'
attr = "content"

[[step]]
name = "sign in"
method = "POST"
url = "{site}/app/session"
headers = {{ x-csrf-token = "${{capture:csrf}}" }}
json = {{ user = "ann", password = "${{secret:BARN_PASSWORD}}" }}
capture = [
    {{ name = "api", css = "#api", attr = "data-token" }},
    {{ name = "landed", url = true }},
    {{ name = "sid", cookie = "sid" }},
]

[[step.expect.css]]
selector = "h1"
equals = "Hello, ann"

[[step]]
name = "who am i"
url = "{site}/app/api/me"
auth = {{ bearer = "${{capture:api}}" }}
headers = {{ x-came-from = "${{capture:landed}}" }}
capture = [{{ name = "code", status = true }}]

[[step.expect.json]]
path = "$.from"
equals = "{site}/app/home"

[[step]]
name = "upload the invoice"
method = "POST"
url = "{site}/app/upload"
auth = {{ basic = {{ username = "ann", password = "${{secret:BARN_PASSWORD}}" }} }}
multipart = [
    {{ name = "note", value = "hello ${{capture:code}}" }},
    {{ name = "file", path = "testdata/invoice.pdf", content_type = "application/pdf" }},
]

[step.expect]
status = 201

[[step.expect.json]]
path = "$.stored"
equals = "invoice.pdf"

[[step]]
name = "wait for the index"
url = "{site}/app/eventually"
retries = 3
retry_interval = "50ms"
timeout = "2s"

[step.expect]
body_contains = "ready"
"##
        ),
    );
    let r = run(&flow).await;
    assert_eq!(r.outcome, Outcome::Success, "{r:#?}");
    // Each step reports the request as sent and the redirects it followed.
    let hop = |status: u16, path: &str| Redirect {
        status,
        location: format!("{site}{path}"),
    };
    let sign_in = &r.steps[1];
    assert_eq!(sign_in.http().unwrap().method, "POST");
    assert_eq!(sign_in.url, format!("{site}/app/session"));
    assert_eq!(sign_in.http().unwrap().redirects, [hop(303, "/app/home")]);
    let upload = &r.steps[3];
    assert_eq!(upload.http().unwrap().method, "POST");
    assert_eq!(
        upload.http().unwrap().redirects,
        [hop(307, "/app/upload/v2")]
    );
    let attempts: Vec<u32> = r.steps.iter().map(|s| s.attempts).collect();
    assert_eq!(attempts, [1, 1, 1, 1, 3]);
    let waited = r.steps[4].duration;
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_step_timeouts_keep_the_run_deadline() {
    let site = start().await;
    let dir = workdir();
    let one = |timeout: &str, step: &str| {
        let text = format!("timeout = \"{timeout}\"\n[[step]]\nname = \"s\"\n{step}\n");
        check(dir.path(), "t", &text.replace("SITE", &site))
    };

    let r = run(&one(
        "10s",
        "url = \"SITE/app/down\"\nretries = 2\nretry_interval = \"20ms\"",
    ))
    .await;
    assert_eq!(
        failure(&r),
        (
            Reason::Assertion,
            "step \"s\": expected status 2xx, got 503 (after 3 attempts)"
        )
    );
    assert_eq!(r.steps[0].attempts, 3);

    let r = run(&one(
        "10s",
        "url = \"SITE/app/slow\"\ntimeout = \"300ms\"\nretries = 1\nretry_interval = \"10ms\"",
    ))
    .await;
    assert_eq!(
        failure(&r),
        (
            Reason::Timeout,
            "step \"s\": timed out after 300ms (the step's timeout) waiting for response headers (after 2 attempts)"
        )
    );
    assert!(r.duration < Duration::from_secs(2), "{:?}", r.duration);
    assert!(
        r.steps[0].duration >= Duration::from_millis(600),
        "{:?}",
        r.steps[0]
    );

    // The run's deadline comes first: its timeout reports.
    let r = run(&one("500ms", "url = \"SITE/app/slow\"\ntimeout = \"30s\"")).await;
    assert_eq!(
        failure(&r),
        (
            Reason::Timeout,
            "step \"s\": timed out after 500ms waiting for response headers"
        )
    );

    // No time for another attempt: the last one's failure, said so.
    let r = run(&one(
        "1s",
        "url = \"SITE/app/down\"\nretries = 5\nretry_interval = \"2s\"",
    ))
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Assertion);
    assert!(
        message.ends_with("(attempt 1 of 6; no time left for another within the check's timeout)"),
        "{message}"
    );
    assert!(r.duration < Duration::from_millis(900), "{:?}", r.duration);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_is_dropped_when_a_redirect_leaves_the_origin() {
    let site = start().await;
    let other = start().await;
    let dir = workdir();
    let hop = |to: &str| {
        let text = format!(
            "[[step]]\nurl = \"{site}/app/hop\"\nquery = {{ to = \"{to}\" }}\nauth = {{ bearer = \"t0ken-value\" }}\n\n[step.expect]\nbody_contains = \"authorization sent: true\"\n"
        );
        check(dir.path(), "hop", &text)
    };
    let same = run(&hop(&format!("{site}/app/echo"))).await;
    assert_eq!(same.outcome, Outcome::Success, "{same:#?}");

    let away = run(&hop(&format!("{other}/app/echo"))).await;
    let (reason, message) = failure(&away);
    assert_eq!(reason, Reason::Assertion);
    assert!(message.contains("authorization sent: false"), "{message}");
}
