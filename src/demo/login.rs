//! Member login: a CSRF-protected form, sessions, and the members' area.

use std::collections::VecDeque;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::csrf::{self, Tokens};
use super::layout::page;
use super::shared::Shared;
use crate::text::EscapeHtml;

/// The demo member's username.
pub const DEMO_USER: &str = "demo";
/// The demo member's password.
pub const DEMO_PASSWORD: &str = "harvest-2026";

const SESSION_COOKIE: &str = "demo_session";
/// A check logging in every minute should not grow memory forever.
const MAX_SESSIONS: usize = 1000;

/// The login feature's state: open sessions, and whether the auth backend is broken.
#[derive(Clone, Default)]
pub(super) struct Login {
    sessions: Shared<Sessions>,
    pub(super) broken: Shared<bool>,
}

/// Open session ids, oldest first.
#[derive(Default)]
struct Sessions(VecDeque<String>);

impl Sessions {
    fn open(&mut self, id: String) {
        if self.0.len() >= MAX_SESSIONS {
            self.0.pop_front();
        }
        self.0.push_back(id);
    }

    fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|open| open == id)
    }

    fn close(&mut self, id: &str) {
        self.0.retain(|open| open != id);
    }
}

/// Every field is optional so that a bad submission gets our own answer.
#[derive(Default, Deserialize)]
pub(super) struct LoginForm {
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

pub(super) async fn form(State(tokens): State<Tokens>) -> Response {
    let token = tokens.issue();
    let html = page("Member login", &form_html(&token, "", None));
    ([csrf::set_cookie(&token)], html).into_response()
}

pub(super) async fn submit(
    State(login): State<Login>,
    State(tokens): State<Tokens>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // An unreadable body carries no token, so it gets the CSRF answer.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let Some(token) = csrf::verified(&headers, form.csrf.as_deref()) else {
        return csrf::rejected("/login");
    };
    let username = form.username.unwrap_or_default();
    let valid = username == DEMO_USER && form.password.as_deref() == Some(DEMO_PASSWORD);
    // A broken auth backend looks exactly like wrong credentials to the user,
    // which is why only a check with real credentials notices it.
    if !valid || login.broken.get() {
        let error = "Invalid username or password";
        return page("Member login", &form_html(token, &username, Some(error))).into_response();
    }
    let session = tokens.issue();
    login.sessions.lock().open(session.clone());
    let cookie = format!("{SESSION_COOKIE}={session}; HttpOnly; Path=/; SameSite=Lax");
    ([(SET_COOKIE, cookie)], Redirect::to("/members")).into_response()
}

pub(super) async fn members(State(login): State<Login>, headers: HeaderMap) -> Response {
    let logged_in =
        csrf::cookie(&headers, SESSION_COOKIE).is_some_and(|id| login.sessions.lock().contains(id));
    if !logged_in {
        return Redirect::to("/login").into_response();
    }
    page("Members", MEMBER_AREA).into_response()
}

pub(super) async fn logout(State(login): State<Login>, headers: HeaderMap) -> Response {
    if let Some(id) = csrf::cookie(&headers, SESSION_COOKIE) {
        login.sessions.lock().close(id);
    }
    let expired = format!("{SESSION_COOKIE}=; Max-Age=0; HttpOnly; Path=/; SameSite=Lax");
    ([(SET_COOKIE, expired)], Redirect::to("/login")).into_response()
}

const MEMBER_AREA: &str = "<h1>Welcome, Demo Farmer</h1>\n\
<section id=\"member-area\">\n\
<p class=\"member-number\">Membership number: <strong>GFU-004217</strong></p>\n\
<h2>Your membership</h2>\n<ul>\n\
<li>Status: active, dues paid for this year</li>\n\
<li>Member price on <a href=\"/diesel/order\">bulk diesel</a></li>\n\
<li>Next event: the winter machinery fair at the village hall</li>\n\
</ul>\n</section>\n\
<form id=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form>";

fn form_html(token: &str, username: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>\n", EscapeHtml(e)))
        .unwrap_or_default();
    format!(
        "<h1>Member login</h1>\n{error}\
<form id=\"login\" method=\"post\" action=\"/login\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
<label for=\"username\">Username</label>\n\
<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" value=\"{}\" required>\n\
<label for=\"password\">Password</label>\n\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
<button type=\"submit\">Log in</button>\n</form>\n\
<p class=\"note\">Demo member: <code>{DEMO_USER}</code> / <code>{DEMO_PASSWORD}</code></p>",
        EscapeHtml(token),
        EscapeHtml(username),
    )
}
