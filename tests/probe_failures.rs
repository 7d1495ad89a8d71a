//! The probe against real loopback servers that misbehave in one way each:
//! every failure class with its reason and message, and a passing flow.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use scarecrow::check::{
    Assertion, Body, Capture, Check, Css, Outcome, Pick, Query, Reason, Redacted, Redirects,
    Request, RunResult, Schedule, StatusMatch, StatusSet, Step, StepKind, Target, TextPredicate,
};
use scarecrow::probe::{Probe, ProbeSettings};
use scarecrow::template::Template;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

/// Serves every connection to a fresh loopback port with `handler`.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    addr
}

/// Reads one request: its head, and its body by Content-Length.
async fn read_request(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break buf.len(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    (head, body)
}

/// Writes a whole response and closes the connection.
async fn respond(mut s: TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let _ = s.shutdown().await;
}

fn t(s: &str) -> Template {
    Template::parse(s, |_| None).unwrap()
}

fn get(name: &str, url: &str) -> Step {
    Step {
        name: name.into(),
        kind: StepKind::Http(Request {
            method: http::Method::GET,
            url: Target::new(t(url)).unwrap(),
            headers: vec![],
            query: vec![],
            body: None,
            redirects: Redirects::default(),
            auth: None,
        }),
        captures: vec![],
        assertions: vec![],
        timeout: None,
        retry: Default::default(),
    }
}

fn status_is(code: u16) -> Assertion {
    Assertion::Status(StatusSet(vec![StatusMatch::Code(code)]))
}

fn body_contains(text: &str) -> Assertion {
    Assertion::Body(TextPredicate::Contains(t(text)))
}

async fn run(timeout: Duration, max_body_bytes: u64, steps: Vec<Step>) -> Redacted<RunResult> {
    let check = Check {
        name: "test".into(),
        description: None,
        critical: true,
        owner: None,
        runbook: None,
        labels: Default::default(),
        schedule: Schedule::Every(Duration::from_secs(60)),
        timeout,
        steps,
        incidents: Default::default(),
        connection: Default::default(),
        public_cookies: Vec::new(),
        depends_on: Vec::new(),
        locations: Vec::new(),
        source: "checks/test.toml".into(),
    };
    let settings = ProbeSettings {
        user_agent: "scarecrow-test".into(),
        max_body_bytes,
        ..ProbeSettings::default()
    };
    Probe::new(settings).unwrap().run(&check).await
}

const MIB: u64 = 1 << 20;
const GENEROUS: Duration = Duration::from_secs(30);

/// The failure's reason and message; panics with the result on success.
fn failure(r: &RunResult) -> (Reason, &str) {
    match &r.outcome {
        Outcome::Failure {
            reason, message, ..
        } => (*reason, message.as_str()),
        Outcome::Success => panic!("expected a failure, got {r:#?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_connect_with_the_url_without_its_query() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/weather?token=s3cret");
    let r = run(GENEROUS, MIB, vec![get("open page", &url)]).await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Connect);
    assert_eq!(
        message,
        format!("step \"open page\": connection refused (http://{addr}/weather)")
    );
    assert_eq!(r.steps[0].url, format!("http://{addr}/weather"));
    assert!(
        r.steps[0].http().unwrap().phases.connect.is_some(),
        "{:?}",
        r.steps[0].http().unwrap().phases
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_at_the_deadline_waiting_for_headers() {
    let addr = serve(|s| async move {
        let _held = s;
        sleep(Duration::from_secs(3600)).await;
    })
    .await;
    // Within a generous bound: the server would take hours, a loaded
    // machine a while.
    let r = tokio::time::timeout(
        GENEROUS,
        run(
            Duration::from_secs(2),
            MIB,
            vec![get("open page", &format!("http://{addr}/"))],
        ),
    )
    .await
    .expect("the deadline ends the run");
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Timeout);
    assert_eq!(
        message,
        "step \"open page\": timed out after 2s waiting for response headers"
    );
    assert_eq!(r.steps.len(), 1);
    let p = r.steps[0].http().unwrap().phases;
    assert!(p.connect.is_some() && p.ttfb.is_some(), "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_body_times_out_reading_the_body() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
        let mut ok = s.write_all(head.as_bytes()).await.is_ok();
        while ok {
            sleep(Duration::from_millis(200)).await;
            ok = s.write_all(b"x").await.is_ok();
        }
    })
    .await;
    // Within a generous bound: the server would take hours, a loaded
    // machine a while.
    let r = tokio::time::timeout(
        GENEROUS,
        run(
            Duration::from_secs(2),
            MIB,
            vec![get("open page", &format!("http://{addr}/"))],
        ),
    )
    .await
    .expect("the deadline ends the run");
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Timeout);
    assert_eq!(
        message,
        "step \"open page\": timed out after 2s reading the body"
    );
    assert_eq!(r.steps[0].http().unwrap().status, Some(200));
    assert!(
        r.steps[0].http().unwrap().phases.transfer.is_some(),
        "{:?}",
        r.steps[0].http().unwrap().phases
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_stops_early() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut chunk = b"10000\r\n".to_vec();
        chunk.extend(std::iter::repeat_n(b'a', 0x10000));
        chunk.extend(b"\r\n");
        // 800 chunks of 64 KiB: 50 MiB that the probe must not read.
        for _ in 0..800 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
    .await;
    let r = run(
        GENEROUS,
        MIB,
        vec![get("download", &format!("http://{addr}/big"))],
    )
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::BodyTooLarge);
    assert_eq!(
        message,
        "step \"download\": response body exceeds max_body_size 1MiB"
    );
    assert!(
        r.duration < Duration::from_secs(15),
        "took {:?}",
        r.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_http_is_http() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let _ = s
            .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 nonsense\r\n\r\n")
            .await;
        let _ = s.shutdown().await;
    })
    .await;
    let r = run(
        GENEROUS,
        MIB,
        vec![get("open page", &format!("http://{addr}/"))],
    )
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Http);
    assert!(
        message.starts_with("step \"open page\": the server did not answer with valid HTTP"),
        "{message}"
    );
    assert!(message.ends_with(&format!("(http://{addr}/)")), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop_stops_at_the_limit() {
    let addr = serve(|mut s| async move {
        let (head, _) = read_request(&mut s).await;
        let to = if head.starts_with("get /a") {
            "/b"
        } else {
            "/a"
        };
        respond(s, "302 Found", &format!("Location: {to}?n=1\r\n"), b"").await;
    })
    .await;
    let r = run(
        GENEROUS,
        MIB,
        vec![get("open form", &format!("http://{addr}/a"))],
    )
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Redirects);
    assert_eq!(
        message,
        format!("step \"open form\": more than 10 redirects (last: http://{addr}/b)")
    );
    assert_eq!(r.steps[0].http().unwrap().redirects.len(), 10);
    assert_eq!(r.steps[0].http().unwrap().status, Some(302));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_is_dns() {
    let r = run(
        GENEROUS,
        MIB,
        vec![get("open page", "http://nonexistent.invalid/x")],
    )
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Dns);
    assert!(
        message.starts_with("step \"open page\": DNS lookup of nonexistent.invalid failed"),
        "{message}"
    );
    assert!(
        message.ends_with("(http://nonexistent.invalid/x)"),
        "{message}"
    );
    assert!(
        r.steps[0].http().unwrap().phases.dns.is_some(),
        "{:?}",
        r.steps[0].http().unwrap().phases
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_body_is_decoded_per_its_charset() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        let headers = "Content-Type: text/html; charset=ISO-8859-1\r\n";
        respond(s, "200 OK", headers, b"<p>Gr\xfc\xdfe aus K\xf6ln</p>").await;
    })
    .await;
    let mut step = get("greet", &format!("http://{addr}/"));
    step.assertions = vec![status_is(200), body_contains("Grüße aus Köln")];
    let r = run(GENEROUS, MIB, vec![step]).await;
    assert_eq!(r.outcome, Outcome::Success, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_assertions_and_missing_secrets_name_the_step() {
    let addr = serve(|mut s| async move {
        read_request(&mut s).await;
        respond(s, "503 Service Unavailable", "", b"down").await;
    })
    .await;
    let mut step = get("open weather page", &format!("http://{addr}/"));
    step.assertions = vec![status_is(200), body_contains("Forecast")];
    let r = run(
        GENEROUS,
        MIB,
        vec![step, get("never runs", "http://127.0.0.1:1/")],
    )
    .await;
    assert_eq!(
        failure(&r),
        (
            Reason::Assertion,
            "step \"open weather page\": expected status 200, got 503"
        )
    );
    assert_eq!(r.steps.len(), 1, "steps after a failure do not run");
    assert_eq!(r.steps[0].failures.len(), 2, "{:?}", r.steps[0].failures);

    let step = get("login", "http://${secret:SCARECROW_TEST_NEVER_SET}/");
    let r = run(GENEROUS, MIB, vec![step]).await;
    assert_eq!(
        failure(&r),
        (
            Reason::Setup,
            "step \"login\": url: secret `SCARECROW_TEST_NEVER_SET`: not set in the environment"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_flow_uses_a_capture_and_the_cookie_of_step_one() {
    let addr = serve(|mut s| async move {
        let (head, body) = read_request(&mut s).await;
        if head.starts_with("get /form ") {
            let html = br#"<form><input type="hidden" name="csrf" value="tok-42"></form>"#;
            let headers =
                "Content-Type: text/html\r\nSet-Cookie: session=abc; Path=/; HttpOnly\r\n";
            return respond(s, "200 OK", headers, html).await;
        }
        let cookie_ok = head.lines().any(|l| l == "cookie: session=abc");
        match (cookie_ok, body.as_str()) {
            (true, "csrf=tok-42") => respond(s, "200 OK", "", b"thanks").await,
            _ => respond(s, "403 Forbidden", "", format!("{head}\n{body}").as_bytes()).await,
        }
    })
    .await;
    // `localhost` makes the probe resolve a name, so DNS is timed too.
    let base = format!("http://localhost:{}", addr.port());
    let mut open = get("open form", &format!("{base}/form"));
    open.captures = vec![Capture {
        name: "token".into(),
        query: Query::Pick(Pick::Css {
            selector: Css::parse("input[name=csrf]").unwrap(),
            attr: Some("value".into()),
        }),
        secret: false,
    }];
    open.assertions = vec![status_is(200)];
    let mut submit = get("submit", &format!("{base}/submit"));
    let StepKind::Http(request) = &mut submit.kind else {
        panic!("an HTTP step");
    };
    request.method = http::Method::POST;
    request.body = Some(Body::Form(vec![("csrf".into(), t("${capture:token}"))]));
    submit.assertions = vec![status_is(200), body_contains("thanks")];

    let r = run(GENEROUS, MIB, vec![open, submit]).await;
    assert_eq!(r.outcome, Outcome::Success, "{r:#?}");
    assert_eq!(r.steps.len(), 2);
    let p = r.steps[0].http().unwrap().phases;
    assert!(p.dns.is_some() && p.connect.is_some(), "{p:?}");
    assert!(p.ttfb.is_some() && p.transfer.is_some(), "{p:?}");
    assert_eq!(r.steps[1].http().unwrap().method, "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_http_server_is_tls_and_a_hung_handshake_times_out() {
    let plain = serve(|s| respond(s, "400 Bad Request", "", b"this is plain HTTP")).await;
    let r = run(
        GENEROUS,
        MIB,
        vec![get("secure", &format!("https://{plain}/"))],
    )
    .await;
    let (reason, message) = failure(&r);
    assert_eq!(reason, Reason::Tls, "{message}");
    assert!(
        message.starts_with(
            "step \"secure\": tls (other): the server did not answer with TLS (is it plain HTTP?"
        ),
        "{message}"
    );

    let silent = serve(|s| async move {
        let _held = s;
        sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let url = format!("https://{silent}/");
    let r = run(Duration::from_secs(2), MIB, vec![get("secure", &url)]).await;
    assert_eq!(
        failure(&r),
        (
            Reason::Timeout,
            "step \"secure\": timed out after 2s connecting (TCP and TLS handshake)"
        )
    );
    assert!(
        r.steps[0].http().unwrap().phases.connect.is_some(),
        "{:?}",
        r.steps[0].http().unwrap().phases
    );
}

/// `scarecrow once` with one check file (`SCARECROW_SITE` is `site`), in a
/// directory of its own. A run that never ends fails the test after a
/// minute instead of hanging it; the process is killed then.
async fn once_with(name: &str, check: &str, site: SocketAddr) -> std::process::Output {
    let dir = common::scratch(name);
    std::fs::create_dir(dir.path().join("checks")).unwrap();
    std::fs::write(dir.path().join("config.toml"), "checks_dir = \"checks\"\n").unwrap();
    std::fs::write(dir.path().join(format!("checks/{name}.toml")), check).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["once", "--config", "config.toml"])
        .current_dir(dir.path())
        .env("SCARECROW_SITE", format!("http://{site}"))
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(out) => out.expect("run scarecrow"),
        Err(_) => panic!("`scarecrow once` on {name} did not end within a minute"),
    }
}

/// Serves `page` as HTML to every request.
async fn serve_page(page: String) -> SocketAddr {
    let page = std::sync::Arc::new(page);
    serve(move |mut s| {
        let page = page.clone();
        async move {
            read_request(&mut s).await;
            let html = "Content-Type: text/html; charset=utf-8\r\n";
            respond(s, "200 OK", html, page.as_bytes()).await;
        }
    })
    .await
}

/// A check file in German, with a placeholder right before `°C`, loads and
/// passes against a German page. Such a file used to panic the loader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_file_in_german_runs_against_a_german_page() {
    let page = "<html><head><meta charset=\"utf-8\"></head><body>\
        <h1>Vorhersage für München</h1><p class=\"temp\">5°C, gefühlt 3°C</p>\
        <p>Preis: 2,50 €</p></body></html>";
    let site = serve(move |mut s| async move {
        read_request(&mut s).await;
        respond(
            s,
            "200 OK",
            "Content-Type: text/html; charset=utf-8\r\n",
            page.as_bytes(),
        )
        .await;
    })
    .await;
    let check = r#"
description = "Vorhersage für München"
[[step]]
name = "Übersicht öffnen"
url = "${env:SCARECROW_SITE}/wetter/münchen?einheit=°C"
[step.expect]
status = 200
body_contains = ["Vorhersage für München", "${env:SCARECROW_TEST_UNSET:-5}°C", "€"]
[[step.expect.css]]
selector = "p.temp"
contains = "${env:SCARECROW_TEST_UNSET:-gefühlt} 3°C"
"#;
    let out = once_with("wetter", check, site).await;
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    assert!(text.contains("PASS  wetter"), "{text}");
}

/// A page of 100,000 nested elements: parsing it took minutes and a
/// `:has()` selector then overflowed the stack, aborting the process. Now
/// the check fails like a body too large, as soon as the depth shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_nested_deeper_than_512_elements_fails_as_too_large() {
    let n = 100_000;
    let page = format!(
        "<html><body>{}x{}</body></html>",
        "<div>".repeat(n),
        "</div>".repeat(n)
    );
    let site = serve_page(page).await;
    let check = r#"
timeout = "30s"
[[step]]
name = "deep"
url = "${env:SCARECROW_SITE}/"
[[step.expect.css]]
selector = "div:has(p)"
exists = false
"#;
    let out = once_with("deep", check, site).await;
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", common::stderr(&out));
    assert!(text.contains(r#"body_too_large at step "deep""#), "{text}");
    assert!(
        text.contains("page nesting deeper than 512 elements"),
        "{text}"
    );
}

/// A page slower to parse than the check's timeout ends as a timeout at the
/// timeout, and parsing stops there: it used to run on in the background
/// for minutes (here into the deep part at the end, which then aborted
/// the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_slower_to_parse_than_the_timeout_ends_as_a_timeout() {
    // Each element 500 levels down makes the parser search its 500 open
    // elements: seconds of work, before the page even gets deep.
    let slow = format!("{}{}", "<div>".repeat(500), "<div></div>".repeat(700_000));
    let deep = "<div>".repeat(100_000);
    let site = serve_page(format!("<html><body>{slow}{deep}</body></html>")).await;
    let check = r#"
timeout = "3s"
[[step]]
name = "slow"
url = "${env:SCARECROW_SITE}/"
[[step.expect.css]]
selector = "div:has(p)"
exists = false
"#;
    let out = once_with("slow", check, site).await;
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", common::stderr(&out));
    assert!(text.contains(r#"timeout at step "slow""#), "{text}");
}

/// JSON nested past serde_json's recursion limit (128) is not JSON to an
/// assertion: a failed assertion, not a stack overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_100000_deep_fails_the_assertion() {
    let n = 100_000;
    let body = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let site = serve(move |mut s| {
        let body = body.clone();
        async move {
            read_request(&mut s).await;
            let json = "Content-Type: application/json\r\n";
            respond(s, "200 OK", json, body.as_bytes()).await;
        }
    })
    .await;
    let check = r#"
[[step]]
name = "api"
url = "${env:SCARECROW_SITE}/"
[[step.expect.json]]
path = "$..x"
exists = false
"#;
    let out = once_with("api", check, site).await;
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", common::stderr(&out));
    assert!(text.contains(r#"assertion at step "api""#), "{text}");
    assert!(
        text.contains("body is not JSON: recursion limit exceeded"),
        "{text}"
    );
}
