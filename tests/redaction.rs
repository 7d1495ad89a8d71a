//! Secrets never leave a run: a site that echoes the Authorization header,
//! the posted password and its cookies makes a flow fail with all of that in
//! its evidence, and no output of scarecrow may show any of it — `once` in
//! every format with debug logs, the incident webhook body, the metrics.

mod common;

use std::path::Path;

use axum::http::{HeaderMap, header};
use axum::routing::get;
use base64::Engine as _;
use chrono::Utc;
use scarecrow::check::{Check, Outcome, RunResult};
use scarecrow::config::{self, Defaults};
use scarecrow::incident::machine::{CheckState, Observation};
use scarecrow::incident::{Feature, Thresholds, webhook};
use scarecrow::metrics::Metrics;
use scarecrow::probe::{Probe, ProbeSettings, Secrets};

/// Chosen so that every encoding differs: space, `&`, quotes, `/`, non-ASCII.
const PASSWORD: &str = "Tr0ub4dor&3 \"horse\"/é+x";
const COOKIE: &str = "Cookie-Secret-9f8e7d";
const TOKEN: &str = "csrf-Token-77aa55";
const SECRET_NAME: &str = "SCARECROW_TEST_LEAKY_PASSWORD";

/// Every form in which a leak would show. Any piece of the password long
/// enough to matter contains its first nine characters.
fn forbidden() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ann:{PASSWORD}"));
    let form: String = url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
    vec![
        PASSWORD.to_owned(),
        "Tr0ub4dor".to_owned(),
        basic.clone(),
        basic[..16].to_owned(),
        form.clone(),
        form.replace('+', "%20"),
        serde_json::to_string(PASSWORD).unwrap_or_default(),
        format!("{PASSWORD:?}"),
        PASSWORD.replace('&', "&amp;").replace('"', "&quot;"),
        COOKIE.to_owned(),
        TOKEN.to_owned(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(!text.contains(&f), "{what} shows {f:?}:\n{text}");
    }
}

/// The leaky site: sets a session cookie and a CSRF token, then answers the
/// login with everything it was sent, and a page that fails the check.
async fn leaky_site() -> String {
    let app = axum::Router::new().route(
        "/login",
        get(|| async {
            (
                [(
                    header::SET_COOKIE,
                    format!("session={COOKIE}; Path=/; HttpOnly"),
                )],
                axum::response::Html(format!(
                    r#"<form><input name="csrf" value="{TOKEN}"></form>"#
                )),
            )
        })
        .post(|headers: HeaderMap, body: String| async move {
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let password = url::form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            // The password starts just before the 120 characters an
            // assertion message quotes, so the quote cuts it.
            let pad = format!("<!--{}-->", ".".repeat(103));
            let page = format!(
                "{pad}{password}<pre class=\"auth\">auth: {auth}</pre>\
                 <pre class=\"cookie\">cookie: {cookie}</pre><p class=\"pw\">{password}</p>\
                 <pre class=\"posted\">posted: {body}</pre>\
                 <script>var pw = {json};</script><p>{html}</p>",
                auth = text(header::AUTHORIZATION),
                cookie = text(header::COOKIE),
                json = serde_json::to_string(&password).unwrap_or_default(),
                html = password.replace('&', "&amp;").replace('"', "&quot;"),
            );
            (
                [(header::SET_COOKIE, format!("session={COOKIE}-2; Path=/"))],
                axum::response::Html(page),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A config and one check file in a fresh directory, removed when dropped.
fn write_check(site: &str) -> tempfile::TempDir {
    let tmp = common::scratch("redaction");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "checks_dir = \"checks\"\n").expect("config");
    let check = format!(
        r#"
critical = true

[[step]]
name = "open the login form"
url = "{site}/login"

[[step.capture]]
name = "csrf"
css = "input[name=csrf]"
attr = "value"
secret = true

[[step.capture]]
name = "sid"
cookie = "session"

[[step]]
name = "log in"
method = "POST"
url = "{site}/login"
auth = {{ basic = {{ username = "ann", password = "${{secret:{SECRET_NAME}}}" }} }}
form = {{ csrf = "${{capture:csrf}}", user = "ann", password = "${{secret:{SECRET_NAME}}}", sid = "${{capture:sid}}" }}

[step.expect]
body_contains = "Welcome"

# Each quotes what the site echoed: the password as is, the Basic header,
# the cookies, the form-encoded body, the password in a JSON string.
[[step.expect.css]]
selector = "p.pw"
equals = "nope"

[[step.expect.css]]
selector = "pre.auth"
equals = "nope"

[[step.expect.css]]
selector = "pre.cookie"
equals = "nope"

[[step.expect.css]]
selector = "pre.posted"
equals = "nope"

[[step.expect.css]]
selector = "script"
equals = "nope"

[[step.expect.header]]
name = "set-cookie"
contains = "nope"
"#
    );
    std::fs::write(dir.join("checks/leaky.toml"), check).expect("check");
    tmp
}

fn load(dir: &Path) -> Check {
    let loaded = config::load_checks(&[dir.join("checks")], &Defaults::default(), &|name| {
        (name == SECRET_NAME).then(|| PASSWORD.to_owned())
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.checks.into_iter().next().expect("one check")
}

async fn once(dir: &Path, format: &str, log: &str) -> (String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["once", "--config"])
        .arg(dir.join("config.toml"))
        .args(["--format", format])
        .env(SECRET_NAME, PASSWORD)
        .env("RUST_LOG", log)
        .output()
        .await
        .expect("run scarecrow");
    assert_eq!(out.status.code(), Some(1), "{format}: the check must fail");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn no_output_of_a_failing_flow_shows_its_secrets() {
    let site = leaky_site().await;
    let dir = write_check(&site);

    for (format, log) in [
        ("human", "debug"),
        ("json", "debug"),
        ("junit", "debug"),
        ("human", "trace"),
    ] {
        let (stdout, stderr) = once(dir.path(), format, log).await;
        assert_clean(&format!("once --format {format} (stdout)"), &stdout);
        assert_clean(&format!("once --format {format} (stderr)"), &stderr);
        // The evidence is still there, with the secrets cut out of it.
        assert!(stdout.contains("log in"), "{stdout}");
        assert!(stdout.contains("[redacted]"), "{format}: {stdout}");
        assert!(stderr.contains("DEBUG"), "debug logs are on: {stderr}");
    }
    let (json, _) = once(dir.path(), "json", "warn").await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let step = &doc["results"][0]["steps"][1];
    assert_eq!(step["failures"].as_array().map(Vec::len), Some(7), "{step}");
    let excerpt = step["excerpt"].as_str().expect("an excerpt");
    assert!(excerpt.contains("auth: Basic [redacted]"), "{excerpt}");
    let quoted = step["failures"].to_string();
    for shown in [
        r#"got \"var pw = \\\"[redacted]\\\";\""#,
        "csrf=[redacted]&user=ann&password=[redacted]&sid=[redacted]",
        "cookie: session=[redacted]",
    ] {
        assert!(quoted.contains(shown), "{shown}: {quoted}");
    }
    let failures = step["failures"].as_array().expect("failures");
    assert!(
        failures.iter().any(|f| f
            .as_str()
            .is_some_and(|f| f.contains("not shown: it is a credential"))),
        "{step}"
    );

    // The same run in-process, through the incident machine to the webhook
    // body, and into the metrics.
    let check = load(dir.path());
    let probe = Probe::new(ProbeSettings {
        secrets: Secrets::default().with_fallback(SECRET_NAME, PASSWORD),
        ..ProbeSettings::default()
    })
    .expect("probe");
    let run: RunResult = probe.run(&check).await;
    assert!(matches!(run.outcome, Outcome::Failure { .. }), "{run:?}");
    assert_clean("the run's Debug", &format!("{run:?}"));
    assert_clean("the check's Debug", &format!("{check:?}"));

    let feature = Feature {
        check: check.name.clone(),
        ..Feature::default()
    };
    let mut state = CheckState::default();
    let event = state
        .observe(&Observation {
            run_id: "run-1",
            result: &run,
            critical: true,
            thresholds: Thresholds {
                failure: 1,
                ..Thresholds::default()
            },
            feature: &|| feature.clone(),
            key: &|| "scarecrow:default:leaky".to_owned(),
            now: Utc::now(),
            in_maintenance: false,
        })
        .expect("a declared incident");
    let body = webhook::render(&event).expect("render");
    let body = String::from_utf8_lossy(&body);
    assert_clean("the webhook body", &body);
    assert!(body.contains("[redacted]"), "{body}");

    let metrics = Metrics::new();
    metrics.add_check(&check);
    metrics.observe_run(&run);
    assert_clean("the metrics", &metrics.render());
}
