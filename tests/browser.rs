//! Browser steps end to end, in Debian's headless Chromium, through the CLI
//! and the daemon: against the demo site's JavaScript widget and a fixture
//! site of pages that misbehave (one that never finishes loading, one that
//! echoes what is typed into it, one that draws late).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Html;
use axum::routing::get;
use common::{Reaped, Site, free_port, run_daemon, scarecrow_in, scratch, stderr, stdout};
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

/// Whether Chromium is here; the test returns (after a SKIPPED line, or a
/// failure under CI) when it is not.
fn chromium() -> bool {
    common::tools::require("chromium", &["chromium", "chromium-browser"], "chromium").is_some()
}

/// A scratch folder with `config.toml` (Chromium without its sandbox: the
/// tests may run as root; screenshots in `shots/`) and the given checks.
fn setup(name: &str, extra_config: &str, checks: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "{extra_config}\n[store]\npath = \"{}\"\n[browser]\nsandbox = false\nscreenshots = \"shots\"\nlocale = \"de-DE\"\ntimezone = \"Europe/Berlin\"\n",
            dir.path().join("store.db").display()
        ),
    )
    .expect("config");
    for (file, text) in checks {
        std::fs::write(dir.path().join("checks").join(file), text).expect("check");
    }
    dir
}

async fn once_json(dir: &Path, site: &str, extra: &[&str]) -> (Value, std::process::Output) {
    let mut args = vec!["once", "--config", "config.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = scarecrow_in(dir, site, &args).await;
    let json = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (json, out)
}

const WIDGET: &str = r##"
timeout = "20s"
[[step]]
name = "widget page"
url = "${env:SCARECROW_SITE}/weather/widget"
[step.expect]
body_contains = "Weather widget"

[[step]]
name = "widget in a browser"
kind = "browser"
url = "${env:SCARECROW_SITE}/weather/widget"
actions = [ { wait_for = "#forecast" }, { wait_for_text = "Vorhersage" } ]
console_errors = "fail"
failed_requests = "fail"
[step.expect]
status = 200
[[step.expect.header]]
name = "content-type"
matches = "^text/html"
[[step.expect.css]]
selector = "#forecast tr.day td.temp"
count = { min = 5 }
"##;

#[tokio::test]
async fn a_browser_step_sees_the_widget_the_http_step_cannot_and_keeps_a_screenshot_of_the_break() {
    if !chromium() {
        return;
    }
    let site = Site::start().await;
    let dir = setup("widget", "", &[("widget.toml", WIDGET)]);

    let (ok, out) = once_json(dir.path(), &site.url, &[]).await;
    assert_eq!(ok["passed"], 1, "{ok:#}\n{}", stderr(&out));
    let browser = &ok["results"][0]["steps"][1]["browser"];
    assert_eq!(browser["status"], 200, "{ok:#}");
    assert!(browser["timings_ms"]["load"].is_u64(), "{ok:#}");
    assert!(browser["timings_ms"]["actions"].is_u64(), "{ok:#}");
    assert!(
        browser.get("screenshot").is_none(),
        "on_failure only: {ok:#}"
    );

    site.switch("break", "widget", "").await;
    let (broken, out) = once_json(dir.path(), &site.url, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run = &broken["results"][0];
    // The page's HTML is the same: the HTTP step still passes.
    assert!(
        run["steps"][0]["failures"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{broken:#}"
    );
    assert_eq!(run["step"], "widget in a browser", "{broken:#}");
    assert_eq!(run["reason"], "assertion", "{broken:#}");
    let message = run["message"].as_str().unwrap_or_default();
    assert!(message.contains("#forecast tr.day td.temp"), "{message}");
    let shot = run["steps"][1]["browser"]["screenshot"]
        .as_str()
        .unwrap_or_else(|| panic!("a screenshot of the failure: {broken:#}"));
    let png = std::fs::read(dir.path().join(shot)).expect("the screenshot is there");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 1000 && png.len() < 4 * 1024 * 1024,
        "{} bytes",
        png.len()
    );

    // JUnit and the human report name it too.
    let junit = scarecrow_in(
        dir.path(),
        &site.url,
        &["once", "--config", "config.toml", "--format", "junit"],
    )
    .await;
    assert!(
        stdout(&junit).contains("  screenshot: shots/"),
        "{}",
        stdout(&junit)
    );
    let human = scarecrow_in(dir.path(), &site.url, &["once", "--config", "config.toml"]).await;
    assert!(
        stdout(&human).contains("      screenshot: shots/"),
        "{}",
        stdout(&human)
    );
}

/// The demo's login form, filled in by the browser after an HTTP login in
/// another check: cookies go both ways within a run.
const COOKIES_HTTP_FIRST: &str = r##"
timeout = "20s"
[[step]]
name = "form"
url = "${env:SCARECROW_SITE}/login"
[[step.capture]]
name = "csrf"
css = "form#login input[name=csrf]"
attr = "value"
secret = true

[[step]]
name = "log in"
method = "POST"
url = "${env:SCARECROW_SITE}/login"
form = { csrf = "${capture:csrf}", username = "demo", password = "${secret:SCARECROW_DEMO_PASSWORD}" }
[step.expect]
status = 200

[[step]]
name = "member area in the browser"
kind = "browser"
url = "${env:SCARECROW_SITE}/members"
[step.expect]
status = 200
[[step.expect.css]]
selector = "#member-area .member-number"
exists = true
"##;

const COOKIES_BROWSER_FIRST: &str = r##"
timeout = "20s"
[[step]]
name = "log in in the browser"
kind = "browser"
url = "${env:SCARECROW_SITE}/login"
actions = [
  { fill = "form#login input[name=username]", value = "demo" },
  { fill = "form#login input[name=password]", value = "${secret:SCARECROW_DEMO_PASSWORD}" },
  { press = "Enter" },
  { wait_for = "#member-area" },
]

[[step]]
name = "member area over HTTP"
url = "${env:SCARECROW_SITE}/members"
follow_redirects = false
[step.expect]
status = 200
body_contains = "Welcome, Demo Farmer"
"##;

#[tokio::test]
async fn cookies_cross_from_an_http_login_to_a_browser_step_and_back() {
    if !chromium() {
        return;
    }
    let site = Site::start().await;
    let grant = "[[grant]]\ndir = \".\"\nenv = [\"SCARECROW_SITE\"]\nsecrets = [\"SCARECROW_DEMO_PASSWORD\"]\n";
    let dir = setup(
        "cookies",
        grant,
        &[
            ("http-first.toml", COOKIES_HTTP_FIRST),
            ("browser-first.toml", COOKIES_BROWSER_FIRST),
        ],
    );
    let (report, out) = once_json(dir.path(), &site.url, &[]).await;
    assert_eq!(report["passed"], 2, "{report:#}\n{}", stderr(&out));
    // Without the HTTP step's session the member area sends the browser
    // to the login form: the pass above needed the cookie.
    let text = report.to_string();
    assert!(!text.contains(scarecrow::demo::DEMO_PASSWORD), "{text}");
}

/// A fixture site of misbehaving pages, on a free loopback port.
async fn fixture() -> String {
    let echo = r##"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Echo</title></head><body>
<input id="q"><p id="out"></p>
<script>
const q = document.getElementById('q');
q.addEventListener('input', () => {
  document.getElementById('out').textContent = 'Sie suchten: ' + q.value;
  history.replaceState(null, '', '/echo?q=' + encodeURIComponent(q.value));
  document.title = q.value;
});
</script></body></html>"##;
    let late = r##"<!DOCTYPE html><html><body><p>waiting</p>
<script>setTimeout(() => { const p = document.createElement('p'); p.id = 'late'; p.textContent = 'Da!'; document.body.append(p); }, 6000);</script>
</body></html>"##;
    let app = Router::new()
        .route("/echo", get(move || async move { Html(echo) }))
        .route("/late", get(move || async move { Html(late) }))
        .route(
            "/moved",
            get(|| async { Html("<!DOCTYPE html><script>location.replace('/echo')</script>") }),
        )
        .route(
            "/noisy",
            get(|| async {
                Html(
                    "<!DOCTYPE html><html><body><p>Wetter</p>\
<script src=\"/missing.js\"></script>\
<script src=\"http://127.0.0.1:1/tracker.js\"></script>\
<script>console.error('widget: feed empty');</script></body></html>",
                )
            }),
        )
        .route(
            "/remember",
            get(|| async { Html("<!DOCTYPE html><script>localStorage.setItem('member', 'GFU-4217')</script>") }),
        )
        .route(
            "/recall",
            get(|| async { Html("<!DOCTYPE html><body><script>document.body.textContent = 'member ' + localStorage.getItem('member')</script></body>") }),
        )
        .route(
            "/empty500",
            get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/hang",
            get(|| async {
                // The head of a page, then nothing, ever: `load` never fires.
                let first = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                        b"<!DOCTYPE html><html><body><p>almost there",
                    ))
                });
                let never = futures_util::stream::pending();
                axum::response::Response::builder()
                    .header("content-type", "text/html")
                    .body(Body::from_stream(futures_util::StreamExt::chain(
                        first, never,
                    )))
                    .expect("response")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_page_that_never_finishes_loading_fails_as_a_timeout_within_the_steps_timeout() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let check = r##"
timeout = "20s"
[[step]]
name = "hanging page"
kind = "browser"
url = "${env:SCARECROW_SITE}/hang"
timeout = "3s"
"##;
    let dir = setup("hang", "", &[("hang.toml", check)]);
    let (report, out) = once_json(dir.path(), &url, &[]).await;
    let run = &report["results"][0];
    assert_eq!(run["reason"], "timeout", "{report:#}\n{}", stderr(&out));
    let message = run["message"].as_str().unwrap_or_default();
    assert!(message.contains("loading the page"), "{message}");
    // Within the step's 3 s (and far from the run's 20 s).
    let ms = run["duration_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(ms < 5_000.0, "{ms} ms");
}

#[tokio::test]
async fn a_filled_value_never_appears_in_output() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let typed = "Geheim-Äpfel-7731";
    let check = format!(
        r##"
timeout = "20s"
[[step]]
name = "search"
kind = "browser"
url = "${{env:SCARECROW_SITE}}/echo"
actions = [ {{ fill = "#q", value = "{typed}" }}, {{ wait_for_text = "Sie suchten" }} ]
[step.expect]
body_contains = "nothing like this"
"##
    );
    let dir = setup("fill", "", &[("fill.toml", &check)]);
    for format in ["json", "human", "junit"] {
        let out = scarecrow_in(
            dir.path(),
            &url,
            &["once", "--config", "config.toml", "--format", format],
        )
        .await;
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("Sie su"), "the page's text is shown: {all}");
        assert!(all.contains("[redacted]"), "{all}");
        for form in [typed, "Geheim-%C3%84pfel-7731", "Geheim-\\u00c4pfel-7731"] {
            assert!(!all.contains(form), "{format}: {form} in {all}");
        }
    }
}

#[tokio::test]
async fn killing_the_browser_mid_run_fails_that_run_and_the_next_run_passes() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let port = free_port();
    let check = r##"
every = "2s"
timeout = "15s"
[[step]]
name = "late element"
kind = "browser"
url = "${env:SCARECROW_SITE}/late"
actions = [ { wait_for = "#late" } ]
"##;
    let dir = setup(
        "kill",
        &format!("listen = \"127.0.0.1:{port}\""),
        &[("late.toml", check)],
    );
    let (daemon, log) = logged_daemon(dir.path(), &url);
    let pid = daemon.id().expect("pid");

    // A run passes (the browser started); the next starts within the 2 s
    // interval and waits 6 s for its element: 3 s after the pass, a run is
    // under way.
    wait_for(&log, |l| l.contains("check passed"), 40).await;
    let browser = children(pid).into_iter().next().expect("the browser runs");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &browser.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());

    wait_for(
        &log,
        |l| l.contains("the browser exited during the step"),
        30,
    )
    .await;
    let failed_at = log().len();
    wait_for(
        &log,
        move |l| l[failed_at..].contains("check recovered"),
        40,
    )
    .await;
    assert!(
        children(pid).iter().all(|p| *p != browser),
        "a new browser: {:?}",
        children(pid)
    );
}

#[tokio::test]
async fn a_hung_browser_is_killed_and_the_next_run_starts_another() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let port = free_port();
    let check = r##"
every = "1s"
timeout = "4s"
[[step]]
name = "echo"
kind = "browser"
url = "${env:SCARECROW_SITE}/echo"
"##;
    let dir = setup(
        "hang-browser",
        &format!("listen = \"127.0.0.1:{port}\"\nlog_level = \"debug\""),
        &[("echo.toml", check)],
    );
    let (daemon, log) = logged_daemon(dir.path(), &url);
    let pid = daemon.id().expect("pid");
    wait_for(&log, |l| l.contains("check passed"), 40).await;
    let browser = children(pid).into_iter().next().expect("the browser runs");
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &browser.to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());

    wait_for(
        &log,
        |l| l.contains("the browser stopped answering; killing it"),
        30,
    )
    .await;
    let killed_at = log().len();
    wait_for(
        &log,
        move |l| l[killed_at..].contains("check recovered"),
        40,
    )
    .await;
    // Killed and reaped, not left stopped.
    assert!(!std::path::Path::new(&format!("/proc/{browser}")).exists());
    drop(daemon);
}

/// The daemon of `dir`'s config, its standard error collected as it comes.
fn logged_daemon(dir: &Path, site: &str) -> (Reaped, impl Fn() -> String + use<>) {
    let mut command = run_daemon(&dir.join("config.toml"));
    command
        .current_dir(dir)
        .env("SCARECROW_SITE", site)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("daemon");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let err = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(err).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().expect("lines").push(line);
        }
    });
    (Reaped(child), move || {
        lines.lock().expect("lines").join("\n")
    })
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("ps")
        .args(["-o", "pid=", "--ppid", &pid.to_string()])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

async fn wait_for(log: &impl Fn() -> String, done: impl Fn(&str) -> bool, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(&log()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s; the log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_chromium_validate_warns_once_skips_and_the_daemon_fails_the_step_as_setup() {
    let site = Site::start().await;
    let gateway = "[[step]]\nurl = \"${env:SCARECROW_SITE}/\"\n";
    let dir = setup(
        "missing",
        "",
        &[("widget.toml", WIDGET), ("gateway.toml", gateway)],
    );
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("[browser]\n", "[browser]\npath = \"no/such/chromium\"\n"),
    )
    .expect("config");

    let validate = scarecrow_in(
        dir.path(),
        &site.url,
        &["validate", "--config", "config.toml"],
    )
    .await;
    assert_eq!(validate.status.code(), Some(0), "{}", stderr(&validate));
    assert!(
        stderr(&validate).contains("warning: Chromium is not installed at"),
        "{}",
        stderr(&validate)
    );
    assert!(
        stderr(&validate).contains("the browser steps of widget fail"),
        "{}",
        stderr(&validate)
    );
    assert_eq!(stdout(&validate), "2 checks valid, 0 errors, 1 warning\n");

    let once = scarecrow_in(dir.path(), &site.url, &["once", "--config", "config.toml"]).await;
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}{}",
        stdout(&once),
        stderr(&once)
    );
    assert!(
        stderr(&once).contains("skipped widget: it has browser steps. Chromium is not installed"),
        "{}",
        stderr(&once)
    );
    assert!(
        stdout(&once).ends_with("1 check: 1 passed, 0 failed\n"),
        "{}",
        stdout(&once)
    );

    let (report, out) = once_json(dir.path(), &site.url, &["--check", "widget"]).await;
    assert_eq!(
        report["results"].as_array().map(Vec::len),
        Some(0),
        "{report:#}{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn what_a_browser_cannot_do_is_a_load_error_with_its_place() {
    let cases = [
        (
            "resolve = { \"example.org\" = \"127.0.0.1:80\" }\n[[step]]\nkind = \"browser\"\nurl = \"http://example.org/\"\n",
            "resolve.toml:1:1",
            "`resolve` cannot apply to a browser step",
        ),
        (
            "[[step]]\nkind = \"browser\"\nurl = \"file:///etc/passwd\"\n",
            "file.toml:3:7",
            "http",
        ),
        (
            "[[step]]\nkind = \"browser\"\nurl = \"http://127.0.0.1/\"\nactions = [ { click = \"a[\" } ]\n",
            "selector.toml:4:23",
            "invalid CSS selector",
        ),
        (
            "[[step]]\nkind = \"browser\"\nurl = \"http://127.0.0.1/\"\nwait_until = \"networkidle\"\n",
            "wait.toml:4:14",
            "expected one of \"load\", \"domcontentloaded\"",
        ),
        (
            "[[step]]\nkind = \"browser\"\nurl = \"http://127.0.0.1/\"\nactions = [ { fill = \"#q\" } ]\n",
            "fill.toml:4:13",
            "`fill` needs a `value`",
        ),
    ];
    for (text, place, words) in cases {
        let file = place.split(':').next().expect("file");
        let dir = setup("load", "", &[(file, text)]);
        let out = scarecrow_in(
            dir.path(),
            "http://127.0.0.1:1",
            &["validate", "--config", "config.toml"],
        )
        .await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(place), "{file}: {err}");
        assert!(err.contains(words), "{file}: {err}");
    }
}

#[tokio::test]
async fn a_declared_incident_links_its_screenshot_which_the_api_serves_with_its_token() {
    if !chromium() {
        return;
    }
    let site = Site::start().await;
    let hook = common::Receiver::start().await;
    let port = free_port();
    let check = r##"
critical = true
every = "1s"
failure_threshold = 1
timeout = "20s"
[[step]]
name = "widget in a browser"
kind = "browser"
url = "${env:SCARECROW_SITE}/weather/widget"
actions = [ { wait_for = "#forecast" } ]
[[step.expect.css]]
selector = "#forecast td.temp"
count = { min = 5 }
"##;
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nexternal_url = \"http://127.0.0.1:{port}/\"\n\
         api_token = \"${{secret:SCARECROW_TEST_API_TOKEN}}\"\n\
         [[sinks]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        hook.url
    );
    let dir = setup("link", &config, &[("widget.toml", check)]);
    site.switch("break", "widget", "").await;
    let mut command = run_daemon(&dir.path().join("config.toml"));
    command
        .current_dir(dir.path())
        .env("SCARECROW_SITE", &site.url)
        .env("SCARECROW_TEST_API_TOKEN", "t0ken-for-the-api")
        .env_remove("RUST_LOG");
    let _daemon = Reaped(command.spawn().expect("daemon"));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let declared = loop {
        if let Some(d) = hook.delivered("incident.declared").into_iter().next() {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "no declaration");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let evidence = &declared.body["data"]["evidence"];
    let name = evidence["screenshot"]
        .as_str()
        .unwrap_or_else(|| panic!("{evidence:#}"));
    let link = evidence["screenshot_url"].as_str().expect("a link");
    assert_eq!(
        link,
        format!("http://127.0.0.1:{port}/api/v1/screenshots/{name}")
    );

    let client = reqwest::Client::new();
    let anonymous = client.get(link).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    let png = client
        .get(link)
        .bearer_auth("t0ken-for-the-api")
        .send()
        .await
        .expect("get");
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.headers()["cache-control"], "private, no-store");
    let bytes = png.bytes().await.expect("body");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    for other in [
        "..%2Fconfig.toml",
        "x.png",
        "0123456789abcdef0123456789abcdef.txt",
    ] {
        let refused = client
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/screenshots/{other}"
            ))
            .bearer_auth("t0ken-for-the-api")
            .send()
            .await
            .expect("get");
        assert_eq!(refused.status(), 404, "{other}");
    }
}

#[tokio::test]
async fn what_the_page_itself_does_wrong_fails_the_step_when_asked() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let step = |extra: &str| {
        format!(
            "timeout = \"20s\"\n[[step]]\nkind = \"browser\"\nurl = \"${{env:SCARECROW_SITE}}/noisy\"\n{extra}\n[step.expect]\nbody_contains = \"Wetter\"\n"
        )
    };
    let checks = [
        ("lenient.toml", step("")),
        ("console.toml", step("console_errors = \"fail\"")),
        ("requests.toml", step("failed_requests = \"fail\"")),
        (
            "ignoring.toml",
            step("failed_requests = \"fail\"\nignore_requests = [\"/missing\\\\.js$\"]"),
        ),
        (
            "moved.toml",
            "[[step]]\nkind = \"browser\"\nurl = \"${env:SCARECROW_SITE}/moved\"\n[step.expect]\nbody_contains = \"Sie suchten\"\n".to_owned(),
        ),
        (
            "empty500.toml",
            "[[step]]\nkind = \"browser\"\nurl = \"${env:SCARECROW_SITE}/empty500\"\n".to_owned(),
        ),
    ];
    let checks: Vec<(&str, &str)> = checks.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let dir = setup("noisy", "", &checks);
    let (report, out) = once_json(dir.path(), &url, &[]).await;
    let run = |name: &str| {
        report["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {report:#}{}", stderr(&out)))
    };
    // Reported either way, failing only when asked; the cross-origin
    // request that failed is no concern of the page's.
    let lenient = run("lenient");
    assert_eq!(lenient["result"], "success", "{lenient:#}");
    let browser = &lenient["steps"][0]["browser"];
    assert_eq!(
        browser["console"][0], "console.error: widget: feed empty",
        "{lenient:#}"
    );
    let failed = browser["failed_requests"]
        .as_array()
        .expect("failed requests");
    assert_eq!(failed.len(), 1, "{lenient:#}");
    assert!(
        failed[0]
            .as_str()
            .is_some_and(|f| f.ends_with("/missing.js: answered 404")),
        "{lenient:#}"
    );

    let console = run("console");
    assert_eq!(console["reason"], "assertion", "{console:#}");
    assert!(
        console["message"]
            .as_str()
            .is_some_and(|m| m
                .contains("the page logged 1 error(s), first: console.error: widget: feed empty")),
        "{console:#}"
    );
    let requests = run("requests");
    assert!(
        requests["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 same-origin request(s) failed")),
        "{requests:#}"
    );
    assert_eq!(run("ignoring")["result"], "success");
    // A script's redirect before `load` is followed, not waited out.
    assert_eq!(run("moved")["result"], "success", "{:#}", run("moved"));
    // An error status without a body is judged, not a load failure.
    let empty = run("empty500");
    assert_eq!(empty["reason"], "assertion", "{empty:#}");
    assert!(
        empty["message"]
            .as_str()
            .is_some_and(|m| m.contains("got 500")),
        "{empty:#}"
    );
}

#[tokio::test]
async fn the_browser_steps_of_a_run_share_its_storage_and_the_next_run_starts_afresh() {
    if !chromium() {
        return;
    }
    let url = fixture().await;
    let step = |path: &str, expect: &str| {
        format!(
            "[[step]]\nkind = \"browser\"\nurl = \"${{env:SCARECROW_SITE}}/{path}\"\n[step.expect]\nbody_contains = \"{expect}\"\n"
        )
    };
    let one_run = format!(
        "{}{}",
        step("remember", ""),
        step("recall", "member GFU-4217")
    );
    let fresh = step("recall", "member null");
    let dir = setup(
        "storage",
        "",
        &[("one-run.toml", &one_run), ("fresh.toml", &fresh)],
    );
    let (report, out) = once_json(dir.path(), &url, &[]).await;
    assert_eq!(report["passed"], 2, "{report:#}{}", stderr(&out));
}
