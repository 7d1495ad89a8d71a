//! Pages a flow cannot use.

use scarecrow::check::Reason;
use scarecrow::config::{Defaults, Source, read_check};

use super::barn::start;
use super::{check, failure, run, workdir};

/// Pages a flow cannot use fail it with a reason and a message that names
/// the step and the capture; none of them panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_the_run_with_a_reason_naming_step_and_capture() {
    let site = start().await;
    let dir = workdir();
    let cases = [
        (
            "/bad/garbage",
            "capture = [{ name = \"csrf\", css = \"input[name=csrf]\", attr = \"value\" }]",
            Reason::Capture,
            "step \"s\": capture \"csrf\": selector \"input[name=csrf]\" attribute \"value\" matched nothing",
        ),
        (
            "/bad/empty",
            "capture = [{ name = \"t\", regex = 'token=(\\w+)' }]",
            Reason::Capture,
            "step \"s\": capture \"t\": regex /token=(\\w+)/ matched nothing",
        ),
        (
            "/bad/empty",
            "capture = [{ name = \"t\", jsonpath = \"$.token\" }]",
            Reason::Capture,
            "step \"s\": capture \"t\": body is not JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            "/bad/empty",
            "capture = [{ name = \"sid\", cookie = \"session\" }]",
            Reason::Capture,
            "step \"s\": capture \"sid\": cookie \"session\" is not set (the run has no cookies)",
        ),
        (
            "/app/sign-in",
            "capture = [{ name = \"sid\", cookie = \"session\" }]",
            Reason::Capture,
            "step \"s\": capture \"sid\": cookie \"session\" is not set (the run's cookies: sid)",
        ),
    ];
    for (path, capture, reason, message) in cases {
        let text = format!("[[step]]\nname = \"s\"\nurl = \"{site}{path}\"\n{capture}\n");
        let r = run(&check(dir.path(), "bad", &text)).await;
        assert_eq!(failure(&r), (reason, message), "{path}");
        assert!(r.steps[0].excerpt.is_some(), "{path}: {r:?}");
    }

    let text = format!(
        "[[step]]\nname = \"s\"\nurl = \"{site}/bad/not-json\"\n[[step.expect.json]]\npath = \"$.ok\"\nequals = true\n"
    );
    let r = run(&check(dir.path(), "bad", &text)).await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Assertion);
    assert!(
        message.starts_with("step \"s\": body is not JSON: expected value at line 1 column 1"),
        "{message}"
    );

    let text = format!(
        "[[step]]\nname = \"upload\"\nmethod = \"POST\"\nurl = \"{site}/app/upload\"\nmultipart = [{{ name = \"file\", path = \"testdata/missing.pdf\" }}]\n"
    );
    let src = Source::new(dir.path().join("checks/missing.toml"), text);
    let (missing, diags) = read_check(&src, &Defaults::default(), &|_| None);
    assert!(
        diags
            .iter()
            .any(|d| !d.is_error() && d.message.contains("does not exist")),
        "{diags:?}"
    );
    let r = run(&missing.expect("loads with a warning")).await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Setup);
    assert!(
        message.starts_with("step \"upload\": multipart part \"file\": cannot read "),
        "{message}"
    );
}
