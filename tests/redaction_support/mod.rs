//! Shared by the redaction tests: a leaky loopback site that echoes every
//! credential it is sent, the failing flow that logs in to it with a secret,
//! and every form in which a leaked secret would show.
#![allow(dead_code)]

use axum::http::{HeaderMap, header};
use axum::routing::get;
use base64::Engine as _;

/// Chosen so that every encoding differs: space, `&`, quotes, `/`, non-ASCII.
pub const PASSWORD: &str = "Tr0ub4dor&3 \"horse\"/é+x";
pub const COOKIE: &str = "Cookie-Secret-9f8e7d";
pub const TOKEN: &str = "csrf-Token-77aa55";
pub const SECRET_NAME: &str = "SCARECROW_TEST_LEAKY_PASSWORD";
/// A session cookie no check captures: only the run's cookie jar knows it.
pub const SESSION: &str = "sess-4f9a2c7e1b-admin";
/// A cookie the cookie check names public: it stays shown.
pub const THEME: &str = "solarized-dark";

/// Every form in which a leak would show. Any piece of the password long
/// enough to matter contains its first nine characters.
pub fn forbidden() -> Vec<String> {
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
        SESSION.to_owned(),
        "4f9a2c7e1b".to_owned(),
        base64::engine::general_purpose::STANDARD.encode(SESSION)[..12].to_owned(),
    ]
}

pub fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(!text.contains(&f), "{what} shows {f:?}:\n{text}");
    }
}

/// The leaky site: sets a session cookie and a CSRF token, then answers the
/// login with everything it was sent, and a page that fails the check.
pub async fn leaky_site() -> String {
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
    serve(app).await
}

/// The leaky check: it logs in to `site` with the secret (as Basic auth and
/// in the form, with a secret capture and a cookie) and fails on all that
/// the site echoes.
pub fn check_toml(site: &str) -> String {
    format!(
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
    )
}

/// A site that sets a session cookie (with a public `theme` and a short
/// `lang`) at `/login` and echoes it there, and echoes the `Cookie` header
/// at `/home`: as is, URL-encoded and in base64. Neither page says
/// "Welcome", so a check expecting it fails with the echo as evidence.
pub async fn cookie_site() -> String {
    fn echo(cookie: &str) -> axum::response::Html<String> {
        axum::response::Html(format!(
            "<p>cookie: {cookie}</p><p>url: {}</p><p>b64: {}</p>",
            url::form_urlencoded::byte_serialize(cookie.as_bytes()).collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode(cookie),
        ))
    }
    let app = axum::Router::new()
        .route(
            "/login",
            get(|| async {
                (
                    axum::response::AppendHeaders([
                        (
                            header::SET_COOKIE,
                            format!("sid={SESSION}; Path=/; HttpOnly"),
                        ),
                        (header::SET_COOKIE, format!("theme={THEME}; Path=/")),
                        (header::SET_COOKIE, "lang=en".to_owned()),
                    ]),
                    echo(&format!("sid={SESSION} theme={THEME} lang=en")),
                )
            }),
        )
        .route(
            "/home",
            get(|headers: HeaderMap| async move {
                echo(
                    headers
                        .get(header::COOKIE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-"),
                )
            }),
        );
    serve(app).await
}

/// A check on [`cookie_site`] that fails on `/login` itself, or, with
/// `next`, logs in and fails on `/home`.
pub fn cookie_check_toml(site: &str, next: bool) -> String {
    let (first, path) = if next {
        (
            format!(
                "[[step]]\nurl = \"{site}/login\"\n\n[step.expect]\nbody_contains = \"cookie\"\n\n"
            ),
            "/home",
        )
    } else {
        (String::new(), "/login")
    };
    format!(
        "public_cookies = [\"theme\"]\n\n{first}[[step]]\nurl = \"{site}{path}\"\n\n[step.expect]\nbody_contains = \"Welcome\"\n"
    )
}

/// Serves `app` on a free loopback port for the rest of the test; its URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
