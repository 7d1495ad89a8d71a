//! `scarecrow once` through the CLI, against the demo site on loopback.

mod common;

use common::{Site, scarecrow, stderr, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn shipped_checks_pass_against_the_demo_site() {
    let site = Site::start().await;
    let out = scarecrow(&site, &["once"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for name in ["gateway", "weather", "member-login", "diesel-order"] {
        assert!(text.contains(&format!("PASS  {name}")), "{text}");
    }
    // The widget's check has a browser step: without Chromium it is skipped.
    let shipped = shipped();
    if shipped == 5 {
        assert!(text.contains("PASS  weather-widget"), "{text}");
    }
    assert!(
        text.ends_with(&format!("{shipped} checks: {shipped} passed, 0 failed\n")),
        "{text}"
    );
}

/// How many shipped checks `once` runs here: the widget's has a browser
/// step, skipped where Chromium is missing.
fn shipped() -> usize {
    let here =
        scarecrow::probe::browser_missing(&scarecrow::check::BrowserOptions::default()).is_none();
    if !here {
        common::tools::missing("chromium", "chromium");
    }
    if here { 5 } else { 4 }
}

/// "N checks: N-1 passed, 1 failed" for the shipped checks here.
fn one_failed() -> String {
    let shipped = shipped();
    format!("{shipped} checks: {} passed, 1 failed", shipped - 1)
}

/// Each break switch fails the right check at the step a human would point
/// to, with the reason and what was seen.
#[tokio::test(flavor = "multi_thread")]
async fn each_break_fails_the_right_check_step_and_reason() {
    let site = Site::start().await;
    let cases = [
        (
            "weather",
            "",
            "weather",
            "open the weather page",
            r#"selector "p.updated time" attribute "datetime": updated 3 days ago ("#,
        ),
        (
            "weather",
            "?mode=error",
            "weather",
            "open the weather page",
            "expected status 200, got 500",
        ),
        (
            "login",
            "",
            "member-login",
            "log in",
            r#"selector "h1": element 1 of 1: expected it to equal "Welcome, Demo Farmer", got "Member login""#,
        ),
        (
            "diesel",
            "",
            "diesel-order",
            "open the order form",
            r#"selector "form#order input[name=liters]" matched nothing"#,
        ),
    ];
    for (feature, query, check, step, seen) in cases {
        site.switch("break", feature, query).await;
        let out = scarecrow(&site, &["once"]).await;
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{feature}{query}: {text}");
        let header = format!("FAIL  {check}");
        let line = text
            .lines()
            .find(|l| l.starts_with(&header))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.ends_with(&format!("assertion at step {step:?}")),
            "{line}"
        );
        assert!(
            text.contains(&format!("step {step:?}: {seen}")),
            "{feature}{query}: {text}"
        );
        assert!(text.contains(&one_failed()), "{text}");
        site.switch("fix", feature, "").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_has_totals_steps_and_phases() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let out = scarecrow(&site, &["once", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (doc["passed"].as_u64(), doc["failed"].as_u64()),
        (Some(shipped() as u64 - 1), Some(1))
    );
    let results = doc["results"].as_array().expect("results");
    let diesel = results
        .iter()
        .find(|r| r["check"] == "diesel-order")
        .expect("diesel");
    assert_eq!(diesel["result"], "failure");
    assert_eq!(diesel["reason"], "assertion");
    assert_eq!(diesel["step"], "open the order form");
    let step = &diesel["steps"][0];
    assert_eq!(step["status"], 200);
    assert_eq!(step["method"], "GET");
    // Durations are named for their unit.
    assert!(step["phases_ms"]["ttfb"].as_f64().is_some(), "{step}");
    assert!(step["duration_ms"].as_f64().is_some(), "{step}");
    assert!(
        step.get("duration").is_none() && step.get("phases").is_none(),
        "{step}"
    );
    assert!(diesel["duration_ms"].as_f64().is_some(), "{diesel}");
    let login = results
        .iter()
        .find(|r| r["check"] == "member-login")
        .expect("login");
    assert_eq!(login["result"], "success");
    assert_eq!(login["steps"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_output_is_one_case_per_check_with_the_failure() {
    let site = Site::start().await;
    site.switch("break", "weather", "?mode=error").await;
    let out = scarecrow(&site, &["once", "--format", "junit"]).await;
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    let shipped = shipped();
    assert!(xml.starts_with(&format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"scarecrow\" tests=\"{shipped}\" failures=\"1\"")), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), shipped, "{xml}");
    assert!(xml.contains(r#"<failure type="assertion" message="step &quot;open the weather page&quot;: expected status 200, got 500">"#), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn selection_by_name_label_and_criticality() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let out = scarecrow(&site, &["once", "--check", "weather"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 check: 1 passed"));
    let out = scarecrow(&site, &["once", "--label", "site=shop"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL  diesel-order"));
    let out = scarecrow(&site, &["once", "--check", "wether"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no check named `wether`; did you mean `weather`?"),
        "{}",
        stderr(&out)
    );
}

/// `scarecrow once ARGS` in the repository root against `site`, with stderr
/// read line by line as it comes.
fn once_reading_stderr(
    site: &Site,
    args: &[&str],
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SCARECROW_SITE", &site.url)
        .env("SCARECROW_DEMO_PASSWORD", scarecrow::demo::DEMO_PASSWORD)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run scarecrow");
    let lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    (child, lines)
}

/// `--wait` keeps re-running a failing check until the deploy has rolled out.
#[tokio::test(flavor = "multi_thread")]
async fn wait_reruns_failing_checks_until_they_pass() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let (child, mut lines) = once_reading_stderr(&site, &["once", "--wait", "120s"]);
    // The fix rolls out once the first round has failed and a retry is due.
    let mut log = String::new();
    while let Some(line) = lines.next_line().await.expect("stderr") {
        log.push_str(&line);
        log.push('\n');
        if line.contains("1 failing, retrying") {
            break;
        }
    }
    assert!(log.contains("1 failing, retrying"), "{log}");
    site.switch("fix", "diesel", "").await;
    while let Some(line) = lines.next_line().await.expect("stderr") {
        log.push_str(&line);
        log.push('\n');
    }
    let out = child.wait_with_output().await.expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}{log}", stdout(&out));
    assert!(
        stdout(&out).contains("PASS  diesel-order"),
        "{}",
        stdout(&out)
    );
}

/// `--wait` that runs out of time reports the last failure and exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn wait_gives_up_when_its_time_is_up() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let (child, mut lines) = once_reading_stderr(&site, &["once", "--wait", "3s"]);
    let (log, out) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut log = String::new();
        while let Some(line) = lines.next_line().await.expect("stderr") {
            log.push_str(&line);
            log.push('\n');
        }
        (log, child.wait_with_output().await.expect("wait"))
    })
    .await
    .expect("it gives up");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{log}");
    assert!(text.contains("FAIL  diesel-order"), "{text}");
    assert!(text.contains(&one_failed()), "{text}");
    // It retried while there was time: at least one round after the first.
    assert!(log.contains("1 failing, retrying for up to"), "{log}");
}

/// A secret the run needs but the environment lacks fails that check with
/// reason `setup`, and the others still run.
#[tokio::test(flavor = "multi_thread")]
async fn missing_secret_fails_only_that_check() {
    let site = Site::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .arg("once")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SCARECROW_SITE", &site.url)
        .env_remove("SCARECROW_DEMO_PASSWORD")
        .output()
        .await
        .expect("run");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  member-login"), "{text}");
    assert!(text.contains("setup at step \"log in\""), "{text}");
    assert!(text.contains("SCARECROW_DEMO_PASSWORD"), "{text}");
    assert!(
        text.contains("PASS  weather") && text.contains("PASS  diesel-order"),
        "{text}"
    );
}

/// A frozen feed is wrong twice: the update time is old and the
/// temperatures are gone. Both are reported, the age first.
#[tokio::test(flavor = "multi_thread")]
async fn stale_weather_fails_on_its_age_and_on_every_temperature() {
    let site = Site::start().await;
    site.switch("break", "weather", "?mode=stale").await;
    let out = scarecrow(&site, &["once", "--check", "weather", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let weather = &doc["results"][0];
    assert_eq!(weather["step"], "open the weather page");
    let failures: Vec<&str> = weather["steps"][0]["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].starts_with(
            r#"selector "p.updated time" attribute "datetime": updated 3 days ago (20"#
        ) && failures[0].ends_with("Z), expected within 30m"),
        "{failures:?}"
    );
    assert_eq!(
        failures[1],
        r#"selector "table#forecast td.temp": element 1 of 5: "–" has no number"#
    );
}

/// The order number a run got is in the JSON result of the step that
/// captured it; the CSRF token, a secret capture, is not.
#[tokio::test(flavor = "multi_thread")]
async fn json_output_reports_each_steps_captures() {
    let site = Site::start().await;
    let out = scarecrow(
        &site,
        &["once", "--check", "diesel-order", "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let steps = &doc["results"][0]["steps"];
    assert!(steps[0].get("captures").is_none(), "{steps}");
    let number = steps[1]["captures"]["order_number"]
        .as_str()
        .unwrap_or_default();
    let (prefix, digits) = number.split_at(number.len().min(7));
    assert!(
        prefix.starts_with("D-20") && prefix.ends_with('-') && digits.len() == 6,
        "{steps}"
    );
    let orders = reqwest::get(format!("{}/_demo/orders", site.url))
        .await
        .expect("orders")
        .text()
        .await
        .expect("body");
    let orders: serde_json::Value = serde_json::from_str(&orders).expect("JSON");
    assert_eq!(orders[0]["number"], number);
    assert_eq!(orders[0]["test"], true);
}

/// Wrong credentials fail the login step, with what the page showed instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_fails_at_the_login_step() {
    let site = Site::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["once", "--check", "member-login"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SCARECROW_SITE", &site.url)
        .env("SCARECROW_DEMO_PASSWORD", "not-the-password")
        .output()
        .await
        .expect("run");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(r#"assertion at step "log in""#)
            && text.contains(r#"expected it to equal "Welcome, Demo Farmer", got "Member login""#),
        "{text}"
    );
}

/// A deploy that drops the CSRF field from the login form fails the check
/// where the field is missing, not with a 403 one step later.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_form_without_its_csrf_field_fails_at_the_form_step() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let form = "<h1>Member login</h1><form id=\"login\" method=\"post\" action=\"/login\">\
        <input name=\"username\"><input name=\"password\" type=\"password\"></form>";
    let app = axum::Router::new().route(
        "/login",
        axum::routing::get(move || async move { axum::response::Html(form) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = common::scarecrow_in(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &url,
        &["once", "--check", "member-login"],
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(r#"capture at step "open the login form""#),
        "{text}"
    );
    assert!(
        text.contains(r#"capture "csrf": selector "form#login input[name=csrf]" attribute "value" matched nothing"#),
        "{text}"
    );
}

/// A timeout near `u64::MAX` seconds used to panic `once` (an instant
/// overflow at the run's deadline); it is refused at load, with the
/// diagnostic, and the other checks still run.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_timeout_is_refused_at_load_instead_of_panicking() {
    let site = Site::start().await;
    let dir = common::scratch("huge-timeout");
    std::fs::create_dir(dir.path().join("checks")).expect("checks dir");
    std::fs::write(dir.path().join("config.toml"), "checks_dir = \"checks\"\n").expect("config");
    std::fs::write(
        dir.path().join("checks/huge.toml"),
        "name = \"huge\"\ntimeout = \"18446744073709551615s\"\n\n[[step]]\nurl = \"${env:SCARECROW_SITE}/weather\"\n",
    )
    .expect("check");
    std::fs::write(
        dir.path().join("checks/home.toml"),
        "name = \"home\"\n\n[[step]]\nurl = \"${env:SCARECROW_SITE}/weather\"\n",
    )
    .expect("check");
    let out = common::scarecrow_in(dir.path(), &site.url, &["once"]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("is too long: the longest is 366d\n --> checks/huge.toml:2:11"),
        "{err}"
    );
    assert!(text.contains("PASS  home"), "{text}");
}

/// A check file under `dir/checks`, its only step on the demo site.
fn write_check(dir: &std::path::Path, name: &str, team: &str, header: &str) {
    let checks = dir.join("checks");
    std::fs::create_dir_all(&checks).expect("mkdir");
    std::fs::write(
        checks.join(format!("{name}.toml")),
        format!(
            "labels = {{ team = \"{team}\" }}\n[[step]]\nname = \"open\"\nurl = \"${{env:SCARECROW_SITE}}/weather\"\nheaders = {{ {header} }}\n"
        ),
    )
    .expect("write check");
}

/// `--check` and `--label` warn about the secrets of the checks they run,
/// not of every check in the directory; a run of all warns once a secret.
#[tokio::test(flavor = "multi_thread")]
async fn secret_warnings_only_for_the_selected_checks_and_once_each() {
    let site = Site::start().await;
    let dir = common::scratch("once-secrets");
    let secret = "${secret:SCARECROW_TEST_NEVER_SET}";
    write_check(
        dir.path(),
        "secretive",
        "a",
        &format!("x-a = \"{secret}\", x-b = \"{secret}\", x-c = \"{secret}\""),
    );
    write_check(dir.path(), "open", "b", &format!("x-d = \"{secret}\""));
    write_check(dir.path(), "plain", "c", "x-e = \"1\"");
    let warnings = |err: &str| err.matches("SCARECROW_TEST_NEVER_SET").count();
    for selection in [&["--check", "plain"][..], &["--label", "team=c"]] {
        let args = [&["once"][..], selection].concat();
        let out = common::scarecrow_in(dir.path(), &site.url, &args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{selection:?}: {err}");
        assert_eq!(warnings(&err), 0, "{selection:?}: {err}");
    }
    let out = common::scarecrow_in(dir.path(), &site.url, &["once", "--check", "open"]).await;
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(
        err.contains("`open`") && !err.contains("`secretive`"),
        "{err}"
    );

    let out = common::scarecrow_in(dir.path(), &site.url, &["once"]).await;
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(
        err.contains("`open`") && err.contains("`secretive`"),
        "{err}"
    );
}

/// A POST answered with 303 is reported as sent (POST to its own URL), with
/// the redirect it followed, not as the GET that the redirect led to.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirected_post_is_reported_as_sent_with_its_redirects() {
    let site = Site::start().await;
    let out = scarecrow(
        &site,
        &["once", "--check", "member-login", "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let login = &doc["results"][0]["steps"][1];
    assert_eq!(login["name"], "log in");
    assert_eq!(login["method"], "POST", "{login}");
    assert_eq!(login["url"], format!("{}/login", site.url), "{login}");
    assert_eq!(
        login["redirects"],
        serde_json::json!([{"status": 303, "location": format!("{}/members", site.url)}]),
        "{login}"
    );
    assert_eq!(login["status"], 200, "the status the last hop answered");
    let form = &doc["results"][0]["steps"][0];
    assert_eq!(form["redirects"], serde_json::json!([]), "{form}");
}

/// What `once` prints reads as people write it: the body limit as
/// configured (not "exceeds 1024 bytes"), the time left for `--wait` in
/// milliseconds when under a second (not "up to 0s"), and "1 check".
#[tokio::test(flavor = "multi_thread")]
async fn sizes_durations_and_counts_read_as_configured() {
    let site = Site::start().await;
    let dir = common::scratch("wording");
    std::fs::create_dir(dir.path().join("checks")).expect("checks dir");
    std::fs::write(
        dir.path().join("config.toml"),
        "checks_dir = \"checks\"\nmax_body_size = \"1KiB\"\n",
    )
    .expect("config");
    std::fs::write(
        dir.path().join("checks/weather.toml"),
        "name = \"weather\"\n\n[[step]]\nurl = \"${env:SCARECROW_SITE}/weather\"\n",
    )
    .expect("check");
    let out = common::scarecrow_in(dir.path(), &site.url, &["once", "--wait", "900ms"]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(
        text.contains("response body exceeds max_body_size 1KiB"),
        "{text}"
    );
    assert!(text.ends_with("\n1 check: 0 passed, 1 failed\n"), "{text}");
    let retrying =
        regex::Regex::new(r"(?m)^1 failing, retrying for up to [1-9]\d*ms$").expect("regex");
    assert!(retrying.is_match(&err), "{err}");
}

/// `--wait` has the bounds and the wording of every other duration.
#[tokio::test(flavor = "multi_thread")]
async fn wait_is_a_bounded_duration_with_a_plain_error() {
    let site = Site::start().await;
    for (arg, said) in [
        (
            "5 parsecs",
            "invalid duration \"5 parsecs\": unknown unit \"parsecs\"; write a number and a unit: ms, s, m, h, d, w",
        ),
        (
            "100us",
            "duration \"100us\" is too short: the shortest is 1ms",
        ),
        ("400d", "duration \"400d\" is too long: the longest is 366d"),
    ] {
        let out = scarecrow(&site, &["once", "--wait", arg]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(said), "{arg}: {err}");
        assert!(!err.contains("variations"), "{arg}: {err}");
    }
}

/// The evidence of a failing step is what a member sees: the page's title
/// and the visible text the failing assertion looked at, or the page's own
/// message, never the markup of its `<head>`.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_steps_excerpt_is_the_visible_text_a_member_sees() {
    let site = Site::start().await;
    let excerpts = async |feature: &str, query: &str, check: &str| -> String {
        site.switch("break", feature, query).await;
        let out = scarecrow(&site, &["once", "--format", "json", "--check", check]).await;
        site.switch("fix", feature, "").await;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let steps = doc["results"][0]["steps"].as_array().expect("steps");
        let excerpt = steps.iter().find_map(|s| s["excerpt"].as_str());
        excerpt.expect("an excerpt").to_owned()
    };
    // The login stays on its form: the heading the check looked at.
    let login = excerpts("login", "", "member-login").await;
    assert_eq!(
        login,
        "Member login · Greenfield Farmers' Union — Member login"
    );
    // A stale forecast: the update time the freshness assertion read.
    let stale = excerpts("weather", "", "weather").await;
    assert!(
        stale.starts_with("Weather · Greenfield Farmers' Union — ") && stale.ends_with(" UTC"),
        "{stale}"
    );
    // A 500 page: its own message.
    let down = excerpts("weather", "?mode=error", "weather").await;
    assert_eq!(
        down,
        "Weather unavailable · Greenfield Farmers' Union — Upstream weather service unavailable"
    );
    for excerpt in [login, stale, down] {
        assert!(!excerpt.contains('<'), "no markup: {excerpt}");
    }
}
