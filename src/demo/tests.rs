//! The demo site served on a real loopback port, driven like a check would.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};
use scraper::{Html, Selector};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{DEMO_PASSWORD, DEMO_USER, DemoSite};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Demo {
    base: String,
    client: Client,
    // Dropping this stops the server.
    _stop: oneshot::Sender<()>,
}

/// A form's CSRF token and the cookie it is bound to.
struct Csrf {
    token: String,
    cookie: String,
}

impl Demo {
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(DemoSite::new().serve(listener, async {
            let _ = stopped.await;
        }));
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .build()?;
        Ok(Self {
            base,
            client,
            _stop: stop,
        })
    }

    async fn get(&self, path: &str, cookie: &str) -> reqwest::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        self.client.get(url).header(COOKIE, cookie).send().await
    }

    async fn post(
        &self,
        path: &str,
        cookie: &str,
        form: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let request = self.client.post(url).header(COOKIE, cookie);
        let request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        request.body(form.to_owned()).send().await
    }

    async fn get_text(&self, path: &str) -> Result<(StatusCode, String), reqwest::Error> {
        let response = self.get(path, "").await?;
        Ok((response.status(), response.text().await?))
    }

    async fn switch(&self, action: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let response = self.post(&format!("/_demo/{action}"), "", "").await?;
        assert_eq!(response.status(), StatusCode::OK, "{action}");
        Ok(serde_json::from_str(&response.text().await?)?)
    }

    async fn csrf(&self, form_path: &str) -> Result<Csrf, Box<dyn std::error::Error>> {
        let response = self.get(form_path, "").await?;
        let cookie = set_cookie(&response, "demo_csrf").ok_or("no demo_csrf cookie")?;
        let html = Html::parse_document(&response.text().await?);
        let selector = Selector::parse("input[name=csrf]").map_err(|e| e.to_string())?;
        let token = html
            .select(&selector)
            .next()
            .and_then(|input| input.value().attr("value"))
            .ok_or("no csrf field")?
            .to_owned();
        Ok(Csrf { token, cookie })
    }
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|value| value.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn login_flow_with_csrf() -> TestResult {
    let demo = Demo::start().await?;
    let anonymous = demo.get("/members", "").await?;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()[LOCATION], "/login");

    let Csrf { token, cookie } = demo.csrf("/login").await?;
    let good = format!("csrf={token}&username={DEMO_USER}&password={DEMO_PASSWORD}");
    let forged = demo.post("/login", "", &good).await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        forged
            .text()
            .await?
            .contains("Invalid or missing CSRF token")
    );

    let wrong = format!("csrf={token}&username={DEMO_USER}&password=hay");
    let wrong = demo.post("/login", &cookie, &wrong).await?;
    assert_eq!(wrong.status(), StatusCode::OK);
    assert!(
        wrong
            .text()
            .await?
            .contains("<p class=\"error\">Invalid username or password</p>")
    );

    let ok = demo.post("/login", &cookie, &good).await?;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/members");
    let session = set_cookie(&ok, "demo_session").ok_or("no session cookie")?;
    let members = demo.get("/members", &session).await?;
    assert_eq!(members.status(), StatusCode::OK);
    assert!(
        members
            .text()
            .await?
            .contains("<h1>Welcome, Demo Farmer</h1>")
    );

    demo.post("/logout", &session, "").await?;
    let after = demo.get("/members", &session).await?;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    Ok(())
}

#[tokio::test]
async fn break_and_fix_each_feature() -> TestResult {
    let demo = Demo::start().await?;
    let (status, html) = demo.get_text("/weather").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches(" °C</td>").count(), 5);

    let broken = demo.switch("break/weather").await?;
    assert_eq!(
        broken["weather"],
        serde_json::json!({ "broken": true, "mode": "stale" })
    );
    let (status, html) = demo.get_text("/weather").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<td class=\"temp\">–</td>").count(), 5);
    demo.switch("break/weather?mode=error").await?;
    let (status, html) = demo.get_text("/weather").await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(html.contains("Upstream weather service unavailable"));
    demo.switch("fix/weather").await?;
    assert_eq!(
        demo.get_text("/weather")
            .await?
            .1
            .matches(" °C</td>")
            .count(),
        5
    );

    demo.switch("break/login").await?;
    let Csrf { token, cookie } = demo.csrf("/login").await?;
    let good = format!("csrf={token}&username={DEMO_USER}&password={DEMO_PASSWORD}");
    let rejected = demo.post("/login", &cookie, &good).await?;
    assert_eq!(rejected.status(), StatusCode::OK);
    assert!(
        rejected
            .text()
            .await?
            .contains("Invalid username or password")
    );
    demo.switch("fix/login").await?;
    assert_eq!(
        demo.post("/login", &cookie, &good).await?.status(),
        StatusCode::SEE_OTHER
    );

    demo.switch("break/diesel").await?;
    assert!(
        !demo
            .get_text("/diesel/order")
            .await?
            .1
            .contains("name=\"liters\"")
    );
    let Csrf { token, cookie } = demo.csrf("/diesel/order").await?;
    let no_liters = format!("csrf={token}&product=red&postcode=AB1");
    let response = demo.post("/diesel/order", &cookie, &no_liters).await?;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    demo.switch("fix/diesel").await?;
    assert!(
        demo.get_text("/diesel/order")
            .await?
            .1
            .contains("name=\"liters\"")
    );

    // The widget's feed empties; its page's HTML stays the same.
    let page = demo.get_text("/weather/widget").await?.1;
    let days = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v["days"].as_array().map_or(0, Vec::len))
    };
    assert_eq!(days(&demo.get_text("/weather/widget/data").await?.1)?, 5);
    demo.switch("break/widget").await?;
    assert_eq!(days(&demo.get_text("/weather/widget/data").await?.1)?, 0);
    assert_eq!(demo.get_text("/weather/widget").await?.1, page);
    let status = demo.switch("fix/widget").await?;
    assert_eq!(days(&demo.get_text("/weather/widget/data").await?.1)?, 5);

    let all_fixed = serde_json::json!({
        "weather": { "broken": false }, "widget": { "broken": false }, "login": { "broken": false },
        "diesel": { "broken": false }, "site": { "broken": false }
    });
    assert_eq!(status, all_fixed);
    let unknown = demo.post("/_demo/break/tractor", "", "").await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bad_mode = demo.post("/_demo/break/login?mode=error", "", "").await?;
    assert_eq!(bad_mode.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn the_site_switch_takes_every_page_down_but_the_switches() -> TestResult {
    let demo = Demo::start().await?;
    let status = demo.switch("break/site").await?;
    assert_eq!(status["site"]["broken"], true);
    for page in ["/", "/weather", "/login", "/diesel/order"] {
        let (code, html) = demo.get_text(page).await?;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{page}");
        assert!(html.contains("The member site is down"), "{page}");
    }
    assert_eq!(demo.get_text("/_demo/status").await?.0, StatusCode::OK);
    demo.switch("fix/site").await?;
    assert_eq!(demo.get_text("/weather").await?.0, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn diesel_orders_are_validated_numbered_and_marked() -> TestResult {
    let demo = Demo::start().await?;
    let Csrf { token, cookie } = demo.csrf("/diesel/order").await?;
    let invalid = format!("csrf={token}&liters=lots&product=red&postcode=%3Cb%3E");
    let response = demo.post("/diesel/order", &cookie, &invalid).await?;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains("<p class=\"error\" data-field=\"liters\">Liters must be"));
    assert!(html.contains("value=\"&lt;b&gt;\""));

    let test = format!("csrf={token}&liters=2000&product=red&postcode=AB1+2CD&test_order=1");
    let response = demo.post("/diesel/order", &cookie, &test).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(html.contains("<h1>Order received</h1>") && html.contains("TEST ORDER"));
    assert!(html.contains("-000001</strong>"));
    let real = format!("csrf={token}&liters=500&product=road&postcode=AB1+2CD");
    let html = demo
        .post("/diesel/order", &cookie, &real)
        .await?
        .text()
        .await?;
    assert!(html.contains("-000002</strong>") && !html.contains("TEST ORDER"));

    let (_, orders) = demo.get_text("/_demo/orders").await?;
    let orders: serde_json::Value = serde_json::from_str(&orders)?;
    assert_eq!(orders[0]["test"], true);
    assert_eq!(orders[1]["test"], false);
    Ok(())
}

#[tokio::test]
async fn odd_requests_get_pages_not_panics() -> TestResult {
    let demo = Demo::start().await?;
    assert_eq!(
        demo.get_text("/nowhere/<x>").await?.0,
        StatusCode::NOT_FOUND
    );
    let garbage = demo.post("/diesel/order", "demo_csrf=", "%%%&&=").await?;
    assert_eq!(garbage.status(), StatusCode::FORBIDDEN);
    let url = format!("{}/login", demo.base);
    let json = demo
        .client
        .post(url)
        .body("{}")
        .header(CONTENT_TYPE, "application/json");
    assert_eq!(json.send().await?.status(), StatusCode::FORBIDDEN);
    Ok(())
}
