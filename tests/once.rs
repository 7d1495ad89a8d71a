//! `scarecrow once` through the CLI, against the demo site on loopback.

mod common;

use common::{Site, scarecrow, stderr, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn shipped_checks_pass_against_the_demo_site() {
    let site = Site::start().await;
    let out = scarecrow(&site, &["once"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for name in ["weather", "member-login", "diesel-order"] {
        assert!(text.contains(&format!("PASS  {name}")), "{text}");
    }
    assert!(text.ends_with("3 checks: 3 passed, 0 failed\n"), "{text}");
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
        assert!(text.contains("3 checks: 2 passed, 1 failed"), "{text}");
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
        (Some(2), Some(1))
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
    assert!(step["phases"]["ttfb"].as_f64().is_some(), "{step}");
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
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"scarecrow\" tests=\"3\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(xml.contains(r#"<failure type="assertion" message="step &quot;open the weather page&quot;: expected status 200, got 500">"#), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn selection_by_name_label_and_criticality() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let out = scarecrow(&site, &["once", "--check", "weather"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 checks: 1 passed"));
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

/// `--wait` keeps re-running a failing check until the deploy has rolled out.
#[tokio::test(flavor = "multi_thread")]
async fn wait_reruns_failing_checks_until_they_pass() {
    let site = Site::start().await;
    site.switch("break", "diesel", "").await;
    let run = tokio::spawn({
        let url = site.url.clone();
        async move {
            common::scarecrow_in(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
                &url,
                &["once", "--wait", "60s"],
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    site.switch("fix", "diesel", "").await;
    let out = run.await.expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 failing, retrying"),
        "{}",
        stderr(&out)
    );
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
