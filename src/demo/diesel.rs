//! The bulk diesel order form: CSRF-protected, no login, test orders allowed.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::csrf::{self, Tokens};
use super::layout::page;
use super::shared::Shared;
use crate::text::EscapeHtml;

const LITERS: RangeInclusive<u32> = 500..=10_000;
/// (form value, label)
const PRODUCTS: [(&str, &str); 2] = [
    ("red", "Red diesel (agricultural)"),
    ("road", "Road diesel"),
];
const MAX_POSTCODE_CHARS: usize = 16;
/// Only the most recent orders are kept; the demo never needs more.
const MAX_ORDERS: usize = 100;

/// Every field is optional so that a bad submission gets our own answer.
#[derive(Default, Deserialize)]
pub(super) struct OrderForm {
    csrf: Option<String>,
    liters: Option<String>,
    product: Option<String>,
    postcode: Option<String>,
    test_order: Option<String>,
}

/// A valid submission.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Draft {
    liters: u32,
    product: &'static str,
    #[serde(skip)]
    label: &'static str,
    postcode: String,
    /// Test orders are accepted like real ones but never delivered.
    test: bool,
}

/// A placed order, as listed by `GET /_demo/orders`.
#[derive(Clone, Serialize)]
pub(super) struct Order {
    number: String,
    placed_at: String,
    #[serde(flatten)]
    draft: Draft,
}

/// The order form's state: the orders placed, and whether the form is broken.
#[derive(Clone, Default)]
pub(super) struct Diesel {
    orders: Shared<OrderBook>,
    pub(super) broken: Shared<bool>,
}

/// The order counter and the most recent orders, oldest first.
#[derive(Default)]
struct OrderBook {
    placed: u64,
    recent: VecDeque<Order>,
}

impl OrderBook {
    fn place(&mut self, draft: Draft, now: DateTime<Utc>) -> Order {
        self.placed += 1;
        let number = format!("D-{}-{:06}", now.year(), self.placed);
        let placed_at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let order = Order {
            number,
            placed_at,
            draft,
        };
        if self.recent.len() >= MAX_ORDERS {
            self.recent.pop_front();
        }
        self.recent.push_back(order.clone());
        order
    }
}

pub(super) async fn form(State(diesel): State<Diesel>, State(tokens): State<Tokens>) -> Response {
    let token = tokens.issue();
    let body = form_html(&token, &OrderForm::default(), &[], !diesel.broken.get());
    ([csrf::set_cookie(&token)], page("Order diesel", &body)).into_response()
}

pub(super) async fn submit(
    State(diesel): State<Diesel>,
    headers: HeaderMap,
    form: Result<Form<OrderForm>, FormRejection>,
) -> Response {
    // An unreadable body carries no token, so it gets the CSRF answer.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let Some(token) = csrf::verified(&headers, form.csrf.as_deref()) else {
        return csrf::rejected("/diesel/order");
    };
    match validate(&form) {
        Err(errors) => {
            let body = form_html(token, &form, &errors, !diesel.broken.get());
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            (status, page("Order diesel", &body)).into_response()
        }
        Ok(draft) => {
            let order = diesel.orders.lock().place(draft, Utc::now());
            tracing::info!(order = %order.number, test = order.draft.test, "demo diesel order placed");
            page("Order received", &receipt_html(&order)).into_response()
        }
    }
}

pub(super) async fn recent(State(diesel): State<Diesel>) -> Json<Vec<Order>> {
    Json(diesel.orders.lock().recent.iter().cloned().collect())
}

/// All problems at once, each as (field, message).
fn validate(form: &OrderForm) -> Result<Draft, Vec<(&'static str, String)>> {
    let (min, max) = (LITERS.start(), LITERS.end());
    let liters = match required(&form.liters) {
        None => Err(format!(
            "Liters is required: enter a whole number from {min} to {max}."
        )),
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| LITERS.contains(n))
            .ok_or_else(|| {
                format!("Liters must be a whole number from {min} to {max}, not “{text}”.")
            }),
    };
    let product = match required(&form.product) {
        None => Err("Product is required: choose red or road diesel.".to_owned()),
        Some(value) => PRODUCTS
            .iter()
            .find(|(known, _)| *known == value)
            .ok_or_else(|| "Product must be red or road diesel.".to_owned()),
    };
    let postcode = match required(&form.postcode) {
        None => Err("Postcode is required.".to_owned()),
        Some(text) if text.chars().count() > MAX_POSTCODE_CHARS => {
            Err("Postcode is too long.".to_owned())
        }
        Some(text) => Ok(text),
    };
    match (liters, product, postcode) {
        (Ok(liters), Ok(&(product, label)), Ok(postcode)) => Ok(Draft {
            liters,
            product,
            label,
            postcode: postcode.to_owned(),
            // HTML semantics: a checkbox is ticked when its name is sent at all.
            test: form.test_order.is_some(),
        }),
        (liters, product, postcode) => {
            let errors = [
                ("liters", liters.err()),
                ("product", product.err()),
                ("postcode", postcode.err()),
            ];
            Err(errors
                .into_iter()
                .filter_map(|(field, error)| Some((field, error?)))
                .collect())
        }
    }
}

/// The trimmed value, if there is one.
fn required(field: &Option<String>) -> Option<&str> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn flag(on: bool, attribute: &'static str) -> &'static str {
    if on { attribute } else { "" }
}

fn form_html(
    token: &str,
    values: &OrderForm,
    errors: &[(&str, String)],
    with_liters: bool,
) -> String {
    let errors: String = errors
        .iter()
        .map(|(field, e)| {
            format!(
                "<p class=\"error\" data-field=\"{field}\">{}</p>\n",
                EscapeHtml(e)
            )
        })
        .collect();
    let value =
        |field: &Option<String>| EscapeHtml(field.as_deref().unwrap_or_default()).to_string();
    let (min, max) = (LITERS.start(), LITERS.end());
    // The broken switch simulates a deploy that dropped this field from the template.
    let liters = match with_liters {
        true => format!(
            "<label for=\"liters\">Quantity (liters, {min} to {max})</label>\n\
<input id=\"liters\" name=\"liters\" type=\"number\" min=\"{min}\" max=\"{max}\" value=\"{}\" required>\n",
            value(&values.liters),
        ),
        false => String::new(),
    };
    let options: String = PRODUCTS
        .iter()
        .map(|(product, label)| {
            let selected = flag(values.product.as_deref() == Some(product), " selected");
            format!("<option value=\"{product}\"{selected}>{label}</option>")
        })
        .collect();
    format!(
        "<h1>Order diesel</h1>\n\
<p>Bulk delivery to your farm within three working days. \
No login required: members and non-members order the same way.</p>\n{errors}\
<form id=\"order\" method=\"post\" action=\"/diesel/order\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n{liters}\
<label for=\"product\">Product</label>\n<select id=\"product\" name=\"product\">{options}</select>\n\
<label for=\"postcode\">Delivery postcode</label>\n\
<input id=\"postcode\" name=\"postcode\" type=\"text\" value=\"{}\" required>\n\
<label><input type=\"checkbox\" name=\"test_order\" value=\"1\"{}> Test order (not delivered)</label>\n\
<button type=\"submit\">Place order</button>\n</form>",
        EscapeHtml(token),
        value(&values.postcode),
        flag(values.test_order.is_some(), " checked"),
    )
}

fn receipt_html(order: &Order) -> String {
    let draft = &order.draft;
    let (banner, delivery) = match draft.test {
        true => (
            "<p class=\"test-order\"><strong>TEST ORDER</strong>: this order will not be delivered.</p>\n",
            "None (test order)",
        ),
        false => ("", "Within three working days"),
    };
    format!(
        "<h1>Order received</h1>\n{banner}\
<p class=\"order-number\">Order number: <strong id=\"order-number\">{}</strong></p>\n\
<table class=\"summary\">\n\
<tr><th>Product</th><td>{}</td></tr>\n<tr><th>Quantity</th><td>{} liters</td></tr>\n\
<tr><th>Postcode</th><td>{}</td></tr>\n<tr><th>Delivery</th><td>{delivery}</td></tr>\n\
</table>\n<p><a href=\"/diesel/order\">Place another order</a></p>",
        EscapeHtml(&order.number),
        draft.label,
        draft.liters,
        EscapeHtml(&draft.postcode),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(liters: &str, product: &str, postcode: &str) -> Vec<&'static str> {
        let [liters, product, postcode] = [liters, product, postcode].map(|v| Some(v.to_owned()));
        let form = OrderForm {
            liters,
            product,
            postcode,
            ..OrderForm::default()
        };
        validate(&form)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    #[test]
    fn validates_every_field_at_once() {
        assert_eq!(errors(" 2000 ", "road", " AB1 2CD "), Vec::<&str>::new());
        assert_eq!(
            errors("499", "petrol", " "),
            ["liters", "product", "postcode"]
        );
        assert_eq!(errors("10001", "red", "X"), ["liters"]);
        assert_eq!(errors("1.5e3", "red", "X"), ["liters"]);
        assert_eq!(errors("500", "red", "12345678901234567"), ["postcode"]);
    }

    #[test]
    fn numbers_orders_and_keeps_only_the_latest() {
        let mut book = OrderBook::default();
        let now = Utc::now();
        let (product, label) = PRODUCTS[0];
        let draft = Draft {
            liters: 500,
            product,
            label,
            postcode: "X".into(),
            test: true,
        };
        for _ in 0..MAX_ORDERS + 5 {
            book.place(draft.clone(), now);
        }
        assert_eq!(book.recent.len(), MAX_ORDERS);
        let last = book.recent.back().map(|order| order.number.clone());
        assert_eq!(last, Some(format!("D-{}-000105", now.year())));
    }
}
