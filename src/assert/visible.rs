//! What a person sees of a failing response, for the evidence: a page's
//! visible text (no scripts, styles or hidden elements), taken from where a
//! coordinator would look first, with the page's title beside it; for JSON
//! the part the failing query looked at. The raw start of an HTML page is
//! its `<head>`, which tells nobody what members see.

use std::time::Instant;

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};

use crate::check::Pick;
use crate::text::{excerpt_at_word, one_line};

/// The documented length of an excerpt, in characters.
pub const EXCERPT_CHARS: usize = 300;

/// A title longer than this is cut: the text is what matters.
const TITLE_CHARS: usize = 80;

/// Where pages put the message of a failed form or action: ARIA alerts,
/// Django's `.errornote` and `.errorlist`, and the common class names of
/// Bootstrap, Rails and their likes.
const ALERTS: &str = "[role=alert], .errornote, .errorlist, .alert-danger, .alert-error, .alert, .error-message, .errors, .error, .flash, .invalid-feedback";

/// Elements whose content a browser does not show as text.
const UNSHOWN: [&str; 11] = [
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "title",
];

/// The excerpt of a failing response's `body`: for HTML, its title and the
/// visible text of the first of these that has any — the elements a failing
/// query in `looked_at` matched, an alert region, `<main>`, the first `<h1>`
/// and what follows it, the body; for JSON, the first value a failing
/// JSONPath found (or the document); otherwise the text. White space folded,
/// cut at a word. Parsing stops at `deadline`; the text's start stands in
/// for a page that cannot be parsed in time. Not redacted: the caller
/// redacts the excerpt, after decoding has revealed what entities hid.
pub fn excerpt(body: &str, looked_at: &[Pick], deadline: Instant) -> String {
    let start = body.trim_start();
    if start.starts_with(['{', '[']) {
        if let Some(fragment) = json(body, looked_at) {
            return fragment;
        }
    } else if start.starts_with('<')
        && let Ok(page) = super::page::parse(body, Some(deadline))
    {
        return html(&page, looked_at);
    }
    excerpt_at_word(&one_line(body), EXCERPT_CHARS).into_owned()
}

fn html(page: &Html, looked_at: &[Pick]) -> String {
    let title = first(page, "title")
        .map(|t| one_line(&t.text().collect::<String>()))
        .unwrap_or_default();
    let text = looked_at
        .iter()
        .filter_map(|pick| match pick {
            Pick::Css { selector, .. } => Some(&selector.selector),
            _ => None,
        })
        .find_map(|s| shown(page.select(s)))
        .or_else(|| shown(page.select(&selector(ALERTS))))
        .or_else(|| shown(first(page, "main")))
        .or_else(|| {
            let h1 = first(page, "h1")?;
            let body = first(page, "body")?;
            Some(visible(*body, Some(h1.id()))).filter(|t| !t.is_empty())
        })
        .or_else(|| shown(first(page, "body")))
        .unwrap_or_default();
    let text = excerpt_at_word(&text, EXCERPT_CHARS);
    match (title.is_empty(), text.is_empty()) {
        (true, _) => text.into_owned(),
        (false, true) => excerpt_at_word(&title, TITLE_CHARS).into_owned(),
        (false, false) => format!("{} — {text}", excerpt_at_word(&title, TITLE_CHARS)),
    }
}

/// The visible text of the first of `elements` that shows any.
fn shown<'a>(elements: impl IntoIterator<Item = ElementRef<'a>>) -> Option<String> {
    elements
        .into_iter()
        .map(|e| visible(*e, None))
        .find(|t| !t.is_empty())
}

fn first<'a>(page: &'a Html, css: &str) -> Option<ElementRef<'a>> {
    page.select(&selector(css)).next()
}

fn selector(css: &str) -> Selector {
    // Constant selectors of this file, parsed by its tests.
    Selector::parse(css).unwrap_or_else(|_| unreachable!("invalid selector {css:?}"))
}

/// The text a browser shows of `root`, white space folded: from the node
/// `from` on when given, with text in blocks apart kept apart. Stops once
/// there is more than an excerpt's worth.
fn visible(root: NodeRef<'_, Node>, from: Option<ego_tree::NodeId>) -> String {
    let mut out = Text::default();
    let mut started = from.is_none();
    let mut hidden_depth = 0usize;
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                started |= Some(node.id()) == from;
                match node.value() {
                    Node::Element(e) if hidden_depth > 0 || is_hidden(e) => hidden_depth += 1,
                    Node::Element(e) if is_block(e.name()) => out.space(),
                    Node::Text(t) if hidden_depth == 0 && started => out.push(t),
                    _ => {}
                }
            }
            Edge::Close(node) => match node.value() {
                Node::Element(_) if hidden_depth > 0 => hidden_depth -= 1,
                Node::Element(e) if is_block(e.name()) => out.space(),
                _ => {}
            },
        }
        if out.chars > EXCERPT_CHARS {
            break;
        }
    }
    out.text
}

/// Text with white space folded as it is written.
#[derive(Default)]
struct Text {
    text: String,
    chars: usize,
    gap: bool,
}

impl Text {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.gap = true;
                continue;
            }
            if std::mem::take(&mut self.gap) && !self.text.is_empty() {
                self.text.push(' ');
                self.chars += 1;
            }
            self.text.push(c);
            self.chars += 1;
        }
    }

    fn space(&mut self) {
        self.gap = true;
    }
}

fn is_hidden(e: &scraper::node::Element) -> bool {
    let style = || {
        e.attr("style").is_some_and(|s| {
            let s: String = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_lowercase)
                .collect();
            s.contains("display:none") || s.contains("visibility:hidden")
        })
    };
    UNSHOWN.contains(&e.name())
        || e.attr("hidden").is_some()
        || e.attr("aria-hidden") == Some("true")
        || (e.name() == "input"
            && e.attr("type")
                .is_some_and(|t| t.eq_ignore_ascii_case("hidden")))
        || style()
}

/// Elements a browser lays out as blocks (or line breaks): words on either
/// side are apart.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "main"
            | "nav"
            | "aside"
            | "form"
            | "fieldset"
            | "legend"
            | "label"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "pre"
            | "blockquote"
            | "figure"
            | "figcaption"
            | "option"
            | "button"
            | "hr"
    )
}

/// The first value a failing JSONPath found, as compact JSON behind its
/// path, or else the start of the document on one line. `None` when the
/// body is not JSON.
fn json(body: &str, looked_at: &[Pick]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    let found = looked_at.iter().find_map(|pick| match pick {
        Pick::JsonPath(path) => {
            let node = path.path.query(&doc).first()?;
            Some(format!("{}: {node}", path.source))
        }
        _ => None,
    });
    let text = found.unwrap_or_else(|| doc.to_string());
    Some(excerpt_at_word(&text, EXCERPT_CHARS).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    fn css(s: &str) -> Pick {
        Pick::Css {
            selector: crate::check::Css {
                source: s.into(),
                selector: Selector::parse(s).expect("selector"),
            },
            attr: None,
        }
    }

    const DJANGO_LOGIN: &str = r#"<!DOCTYPE html><html lang="en-us"><head><title>Log in | Django site admin</title>
<link rel="stylesheet" href="/static/admin/css/base.css"><script>var x = "<p>not shown</p>";</script>
<style>.errornote{color:red}</style></head><body class="login"><div id="container">
<div id="header"><div id="branding"><h1 id="site-name"><a href="/admin/">Django administration</a></h1></div></div>
<div id="content" class="colM"><p class="errornote">
    Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive.
</p><div id="content-main"><form action="/admin/login/" method="post"><input type="hidden" name="csrfmiddlewaretoken" value="tok">
<div class="form-row"><label for="id_username">Username:</label> <input type="text" name="username"></div></form></div></div></div></body></html>"#;

    #[test]
    fn a_failed_django_login_shows_its_error_note_and_title() {
        let text = excerpt(DJANGO_LOGIN, &[], far());
        assert_eq!(
            text,
            "Log in | Django site admin — Please enter the correct username and password for a staff account. Note that both fields may be case-sensitive."
        );
    }

    #[test]
    fn the_element_a_failing_query_looked_at_comes_first() {
        let text = excerpt(DJANGO_LOGIN, &[css("label"), css("nav")], far());
        assert_eq!(text, "Log in | Django site admin — Username:");
        // A query that matched nothing falls through to the alert.
        let text = excerpt(DJANGO_LOGIN, &[css("#nothing")], far());
        assert!(text.contains("Please enter the correct"), "{text}");
    }

    #[test]
    fn without_an_alert_main_then_the_first_heading_and_what_follows() {
        let page = r#"<html><head><title>Wetter</title></head><body><nav>Start Mitglieder Diesel</nav>
<h1>Wetter für Hof Grünwald</h1><p>Daten vom <b>01.12.2026</b> — veraltet</p><table><tr><td>°C</td><td></td></tr></table></body></html>"#;
        assert_eq!(
            excerpt(page, &[], far()),
            "Wetter — Wetter für Hof Grünwald Daten vom 01.12.2026 — veraltet °C"
        );
        let main = page.replace("<h1>", "<main>Hauptteil</main><h1>");
        assert_eq!(excerpt(&main, &[], far()), "Wetter — Hauptteil");
    }

    #[test]
    fn hidden_elements_scripts_and_styles_are_not_text() {
        let page = r#"<html><body><div hidden>h1</div><p style="DISPLAY: none">h2</p><span aria-hidden="true">h3</span>
<script>h4</script><noscript>h5</noscript><template>h6</template><p>shown</p></body></html>"#;
        assert_eq!(excerpt(page, &[], far()), "shown");
    }

    #[test]
    fn a_long_page_is_cut_at_a_word_and_a_long_token_inside() {
        let words = "Dieselbestellung ".repeat(40);
        let text = excerpt(
            &format!("<html><body><p>{words}</p></body></html>"),
            &[],
            far(),
        );
        assert!(text.ends_with("Dieselbestellung…"), "{text}");
        assert!(text.chars().count() <= EXCERPT_CHARS + 1, "{text}");
        let token = "x".repeat(1000);
        let text = excerpt(&format!("<p>{token}</p>"), &[], far());
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 1, "{text}");
    }

    #[test]
    fn json_shows_what_the_failing_path_found() {
        let path = crate::check::JsonPath {
            source: "$.forecast[0]".into(),
            path: serde_json_path::JsonPath::parse("$.forecast[0]").expect("path"),
        };
        let body = r#"{"station": "Grünwald", "forecast": [{"day": "Mo", "temp": null}]}"#;
        assert_eq!(
            excerpt(body, &[Pick::JsonPath(path)], far()),
            r#"$.forecast[0]: {"day":"Mo","temp":null}"#
        );
        let whole = excerpt(body, &[], far());
        assert!(whole.contains(r#""station":"Grünwald""#), "{whole}");
    }

    #[test]
    fn plain_text_and_broken_pages_show_their_start() {
        assert_eq!(excerpt("Bad  Gateway\n", &[], far()), "Bad Gateway");
        assert_eq!(excerpt("{ not json", &[], far()), "{ not json");
        let past = Instant::now() - std::time::Duration::from_secs(1);
        assert_eq!(excerpt("<p>too late</p>", &[], past), "<p>too late</p>");
    }

    #[test]
    fn the_alert_selectors_parse() {
        assert!(Selector::parse(ALERTS).is_ok());
    }
}
