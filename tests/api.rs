//! The JSON API of a running daemon, end to end: every endpoint, its
//! shapes and errors, the API token and the credentials of `/metrics`.

mod common;
mod running;

use common::Site;
use running::{Daemon, METRICS_PASSWORD, METRICS_USER, TOKEN, eventually};

/// The value of one sample line of `/metrics`, read with credentials.
async fn metric(d: &Daemon, series: &str) -> Option<f64> {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", d.url))
        .basic_auth(METRICS_USER, Some(METRICS_PASSWORD))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn json(resp: reqwest::Response) -> serde_json::Value {
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_required_and_compared_exactly() {
    let site = Site::start().await;
    let d = Daemon::start("api-auth", &site.url, "1h").await;
    let client = reqwest::Client::new();
    let checks = format!("{}/api/v1/checks", d.url);

    let resp = client.get(&checks).send().await.expect("GET");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"scarecrow\""
    );
    let body = json(resp).await;
    assert!(body["error"].as_str().is_some_and(|m| m.contains("Bearer")));

    for wrong in [
        &TOKEN[..TOKEN.len() - 1],
        "API-TOKEN-FOR-TESTS",
        "api-token-for-tests2",
    ] {
        let resp = client
            .get(&checks)
            .header("authorization", format!("Bearer {wrong}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 401, "{wrong:?}");
    }
    let resp = client
        .post(format!("{}/api/v1/checks/weather/run", d.url))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 401, "actions need the token too");

    let resp = client
        .get(&checks)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);

    // /metrics has its own credentials; the status page is public.
    let metrics = format!("{}/metrics", d.url);
    let resp = client.get(&metrics).send().await.expect("GET");
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .is_ok_and(|c| c.starts_with("Basic realm="))
    );
    let resp = client
        .get(&metrics)
        .basic_auth(METRICS_USER, Some("wrong"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(&metrics)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(
        resp.status(),
        401,
        "the API token is not a metrics credential"
    );
    let resp = client
        .get(&metrics)
        .basic_auth(METRICS_USER, Some(METRICS_PASSWORD))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("scarecrow_checks_loaded 2")
    );
    let resp = client
        .get(format!("{}/", d.url))
        .send()
        .await
        .expect("GET /");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_runs_config_and_incidents() {
    let site = Site::start().await;
    let d = Daemon::start("api", &site.url, "1h").await;

    // GET /checks: every check with its schedule and state.
    let list = eventually("diesel-order up", 30, async || {
        let (_, body) = d.get("/checks").await;
        let up = body["checks"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == "diesel-order" && c["status"] == "up");
        up.then_some(body)
    })
    .await;
    let checks = list["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2, "{list}");
    let diesel = &checks[0];
    assert_eq!(diesel["name"], "diesel-order");
    assert_eq!(diesel["critical"], true);
    assert_eq!(diesel["owner"], "shop-team");
    assert_eq!(diesel["schedule"], "every 1s");
    assert_eq!(diesel["last_result"]["result"], "success");
    assert!(diesel["last_result"]["duration_ms"].is_number());
    assert!(diesel["last_success_at"].is_string());
    assert!(diesel["next_run_at"].is_string());
    assert!(diesel["open_incident"].is_null());
    let weather = &checks[1];
    assert_eq!(weather["name"], "weather");
    assert_eq!(weather["critical"], false);
    assert_eq!(weather["status"], "pending", "hourly: not run yet");
    assert!(weather["last_result"].is_null());

    // GET /checks/{name}: plus the recent runs with step timings.
    // The store writes runs in batches, a fraction of a second behind.
    let detail = eventually("a run of diesel-order in the store", 10, async || {
        let detail = d.check("diesel-order").await;
        let none = detail["recent_runs"].as_array()?.is_empty();
        (!none).then_some(detail)
    })
    .await;
    let runs = detail["recent_runs"].as_array().expect("recent_runs");
    let step = &runs[0]["steps"][0];
    assert_eq!(step["name"], "open the order form");
    assert!(step["duration_ms"].is_number(), "milliseconds: {step}");
    assert!(step["phases_ms"].is_object(), "{step}");
    assert_eq!(d.get("/checks/nope").await.0, 404);
    assert_eq!(
        d.get("/checks/diesel-order?runs=1").await.1["recent_runs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // POST /checks/{name}/run: runs now, answers the result, counts.
    let runs_total = r#"scarecrow_check_runs_total{check="weather",result="success"}"#;
    assert_eq!(metric(&d, runs_total).await, Some(0.0));
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/v1/checks/weather/run", d.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST run");
    assert_eq!(resp.status(), 200);
    let result = json(resp).await;
    assert_eq!(result["check"], "weather");
    assert_eq!(result["result"], "success", "{result}");
    assert_eq!(result["steps"][0]["name"], "open the weather page");
    assert_eq!(metric(&d, runs_total).await, Some(1.0));
    assert_eq!(d.check("weather").await["status"], "up");
    let resp = client
        .post(format!("{}/api/v1/checks/nope/run", d.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST run");
    assert_eq!(resp.status(), 404);
    let resp = client
        .get(format!("{}/api/v1/checks/weather/run", d.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET run");
    assert_eq!(resp.status(), 405);

    // GET /config: the last load, file by file.
    let (status, config) = d.get("/config").await;
    assert_eq!(status, 200);
    assert_eq!(config["successful"], true, "{config}");
    assert!(config["loaded_at"].is_string());
    let files = config["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{config}");
    assert!(files.iter().all(|f| f["errors"] == serde_json::json!([])));
    assert!(files.iter().any(|f| f["check"] == "diesel-order"));

    // GET /incidents and /incidents/{id}: a broken feature declares one.
    assert_eq!(
        d.get("/incidents").await.1["incidents"],
        serde_json::json!([])
    );
    site.switch("break", "diesel", "").await;
    let open = eventually("an open incident", 30, async || {
        let (_, body) = d.get("/incidents?open=true").await;
        body["incidents"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(open["feature"]["check"], "diesel-order");
    assert_eq!(open["open"], true);
    assert_eq!(open["evidence"]["step"], "open the order form");
    assert!(open["duration_seconds"].is_number());
    let id = open["id"].as_str().expect("id").to_owned();

    let detail = d.check("diesel-order").await;
    assert_eq!(detail["status"], "down");
    assert_eq!(detail["last_result"]["reason"], "assertion");
    assert_eq!(detail["last_result"]["step"], "open the order form");
    assert!(
        detail["last_result"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("liters"))
    );
    assert!(detail["failing_since"].is_string());
    assert_eq!(detail["open_incident"]["id"], id.as_str());

    let (status, inc) = d.get(&format!("/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(inc["incident"]["id"], id.as_str());
    assert_eq!(inc["timeline"][0]["kind"], "incident.declared");
    let notifications = inc["notifications"].as_array().expect("notifications");
    assert!(
        notifications
            .iter()
            .any(|n| n["sink"] == "log" && n["kind"] == "incident.declared"),
        "{inc}"
    );
    let (status, missing) = d.get("/incidents/inc_nope").await;
    assert_eq!(status, 404);
    assert!(missing["error"].is_string());

    // POST /incidents/{id}/resolve: by hand, with a note.
    let resp = client
        .post(format!("{}/api/v1/incidents/{id}/resolve", d.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"note": "fixed the form"}"#)
        .send()
        .await
        .expect("POST resolve");
    assert_eq!(resp.status(), 200);
    let resolved = eventually("the resolution stored", 10, async || {
        let (_, body) = d.get(&format!("/incidents/{id}")).await;
        (body["incident"]["open"] == false).then_some(body)
    })
    .await;
    assert_eq!(resolved["incident"]["resolution"], "manual");
    assert_eq!(resolved["incident"]["note"], "fixed the form");
    let (_, all) = d.get("/incidents").await;
    assert!(
        all["incidents"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["id"] == id.as_str()))
    );
    let (status, bad) = d.get("/incidents?limit=lots").await;
    assert_eq!(status, 400);
    assert!(bad["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_keep_browsers_from_guessing_framing_or_loading() {
    let site = Site::start().await;
    let d = Daemon::start("api-headers", &site.url, "1h").await;
    let client = reqwest::Client::new();

    let page = client
        .get(format!("{}/", d.url))
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let html = page.text().await.expect("page");
    let csp = headers["content-security-policy"]
        .to_str()
        .expect("ascii policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // The page's one style sheet is inline; the policy allows it by its hash.
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(css, _)| css)
        .expect("an inline style sheet");
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style))
    };
    assert!(
        directives.contains(&format!("style-src 'sha256-{hash}'").as_str()),
        "{csp}"
    );
    assert!(!html.contains("<script"), "no scripts to allow");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    // nosniff on every answer: the page, the API, /metrics (even refused),
    // /healthz and paths no route matches.
    for (path, token) in [
        ("/", false),
        ("/healthz", false),
        ("/metrics", false),
        ("/api/v1/checks", true),
        ("/api/v1/nope", true),
        ("/nope", false),
    ] {
        let mut req = client.get(format!("{}{path}", d.url));
        if token {
            req = req.bearer_auth(TOKEN);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(
            resp.headers()
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_credentials_guard_metrics_only() {
    let site = Site::start().await;
    let d = Daemon::start("api-metrics-only", &site.url, "1h").await;
    let client = reqwest::Client::new();
    for path in ["/nope", "/metrics/extra", "/favicon.ico"] {
        let resp = client
            .get(format!("{}{path}", d.url))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.headers().get("www-authenticate").is_none(), "{path}");
    }
    let resp = client
        .get(format!("{}/metrics", d.url))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 401, "/metrics itself still asks");
}

/// A daemon listening on every address (reached here through loopback
/// only), with `token` as its API token when given; logs at info to a file.
struct Exposed {
    /// Killed when dropped, before the directory goes.
    _child: common::Reaped,
    dir: tempfile::TempDir,
    url: String,
}

impl Exposed {
    async fn start(name: &str, site: &str, token: Option<&str>) -> Exposed {
        let port = common::free_port();
        let dir = common::scratch(name);
        std::fs::create_dir_all(dir.path().join("checks")).expect("mkdir");
        let api_token = match token {
            Some(_) => "api_token = \"${secret:SCARECROW_TEST_API_TOKEN}\"\n",
            None => "",
        };
        let config = format!(
            "listen = \"0.0.0.0:{port}\"\n{api_token}[store]\npath = \"data/scarecrow.db\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("config");
        let check = format!("every = \"1h\"\n\n[[step]]\nurl = \"{site}/weather\"\n");
        std::fs::write(dir.path().join("checks/weather.toml"), check).expect("check");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
        let child = common::run_daemon(&dir.path().join("config.toml"))
            .env("SCARECROW_TEST_API_TOKEN", token.unwrap_or(""))
            .env("RUST_LOG", "info")
            .stderr(log)
            .spawn()
            .expect("start daemon");
        let d = Exposed {
            _child: common::Reaped(child),
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        eventually("the daemon serves", 30, async || {
            let r = reqwest::get(format!("{}/healthz", d.url)).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).expect("log")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_without_a_token_the_api_is_off() {
    let site = Site::start().await;
    let d = Exposed::start("api-exposed-open", &site.url, None).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/checks"),
        (reqwest::Method::GET, "/api/v1/incidents"),
        (reqwest::Method::POST, "/api/v1/checks/weather/run"),
        (reqwest::Method::POST, "/api/v1/incidents/inc_x/resolve"),
    ] {
        let resp = client
            .request(method, format!("{}{path}", d.url))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403, "{path}");
        let body = json(resp).await;
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(r#"api_token = "${secret:SCARECROW_API_TOKEN}""#),
            "says how to set a token: {message}"
        );
    }
    // The rest is served as before.
    let resp = client
        .get(format!("{}/healthz", d.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    let log = eventually("the start-up warning", 10, async || {
        let log = d.log();
        log.contains("the API is off").then_some(log)
    })
    .await;
    assert!(log.contains("WARN"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_with_a_token_writes_are_spaced_and_logged() {
    let site = Site::start().await;
    let d = Exposed::start("api-exposed-token", &site.url, Some(TOKEN)).await;
    let client = reqwest::Client::new();
    let checks = format!("{}/api/v1/checks", d.url);
    let resp = client.get(&checks).send().await.expect("GET");
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(&checks)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);

    // Run-now: the first runs, the next right after it is refused.
    let run = format!("{}/api/v1/checks/weather/run", d.url);
    let first = client
        .post(&run)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(first.status(), 200);
    let second = client
        .post(&run)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(second.status(), 429);
    let wait: u64 = second.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(json(second).await["error"].is_string());

    let resolve = format!("{}/api/v1/incidents/inc_x/resolve", d.url);
    let resp = client
        .post(&resolve)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 404);

    // Each write is logged with its caller, never with the token.
    let log = eventually("the writes logged", 10, async || {
        let log = d.log();
        (log.contains("run-now requested") && log.contains("resolve requested")).then_some(log)
    })
    .await;
    let writes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("requested through the API"))
        .collect();
    assert_eq!(writes.len(), 2, "one line per accepted write:\n{log}");
    for line in writes {
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(line.contains("token=true"), "{line}");
    }
    assert!(log.contains("check=weather"), "{log}");
    assert!(log.contains("incident=inc_x"), "{log}");
    assert!(!log.contains(TOKEN), "the token is never logged:\n{log}");
}
