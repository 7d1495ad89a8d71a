//! Parsing a page as HTML within bounds a hostile page cannot push: its
//! element depth and the run's deadline.
//!
//! A page of 100,000 nested elements costs html5ever time quadratic in the
//! depth (each new element searches the open elements for scope), and
//! selector matching with `:has()` recurses once per level, which
//! overflows the stack. Browsers stop nesting at a few hundred levels (Blink
//! at 512), so a page deeper than that is not one a user sees either.

use std::fmt;
use std::time::Instant;

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use html5ever::tendril::{StrTendril, TendrilSink};
use scraper::{Html, HtmlTreeSink};

use crate::check::Reason;

/// How deeply elements may nest in a page.
pub const MAX_PAGE_DEPTH: usize = 512;

/// The parser is fed this many bytes at a time, and depth and deadline are
/// checked between feeds: a feed adds at most a few thousand levels (`<a>`
/// is three bytes), a bounded amount of work before the check.
const FEED: usize = 8 * 1024;

/// Why a page cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    TooDeep,
    /// The deadline passed while parsing; the run reports its timeout.
    Deadline,
}

impl PageError {
    /// The class of the run's failure: a page too deep to judge is judged
    /// like one too large.
    pub fn reason(self) -> Reason {
        match self {
            PageError::TooDeep => Reason::BodyTooLarge,
            PageError::Deadline => Reason::Timeout,
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::TooDeep => write!(f, "page nesting deeper than {MAX_PAGE_DEPTH} elements"),
            PageError::Deadline => f.write_str("timed out parsing the page"),
        }
    }
}

/// `body` parsed as an HTML document, unless it nests deeper than
/// [`MAX_PAGE_DEPTH`] or parsing is still going at `deadline`.
pub fn parse(body: &str, deadline: Option<Instant>) -> Result<Html, PageError> {
    let sink = HtmlTreeSink::new(Html::new_document());
    let mut parser = html5ever::parse_document(sink, Default::default());
    let mut rest = body;
    while !rest.is_empty() {
        let mut cut = rest.len().min(FEED);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (feed, tail) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(feed));
        rest = tail;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PageError::Deadline);
        }
        // The latest node sits where the parser inserts: its depth is
        // the depth the page has reached.
        let html = parser.tokenizer.sink.sink.0.borrow();
        let latest = html.tree.nodes().next_back();
        if latest.is_some_and(|n| depth(n) > MAX_PAGE_DEPTH) {
            return Err(PageError::TooDeep);
        }
    }
    let html = parser.finish();
    // Between checks the page may have gone deep and come back: the whole
    // tree decides.
    match deeper_than(&html, MAX_PAGE_DEPTH) {
        true => Err(PageError::TooDeep),
        false => Ok(html),
    }
}

/// How many elements `node` is inside, itself included.
fn depth(node: NodeRef<'_, scraper::Node>) -> usize {
    let up = node.ancestors().filter(|n| n.value().is_element()).count();
    up + usize::from(node.value().is_element())
}

/// Whether any element of `html` has more than `max` element ancestors
/// and itself, found without recursion.
fn deeper_than(html: &Html, max: usize) -> bool {
    // A tree of no more nodes than that cannot be deeper.
    if html.tree.nodes().len() <= max {
        return false;
    }
    let mut depth = 0;
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(n) if n.value().is_element() => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            Edge::Close(n) if n.value().is_element() => depth -= 1,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n))
    }

    #[test]
    fn a_page_as_deep_as_the_limit_parses_and_one_level_more_does_not() {
        // html and body make two levels.
        let html = parse(&nested(MAX_PAGE_DEPTH - 2), None).unwrap();
        let sel = scraper::Selector::parse("div:has(div)").unwrap();
        assert_eq!(html.select(&sel).count(), MAX_PAGE_DEPTH - 3);
        let deeper = parse(&nested(MAX_PAGE_DEPTH - 1), None);
        assert_eq!(deeper.unwrap_err(), PageError::TooDeep);
    }

    #[test]
    fn depth_is_found_between_feeds_and_in_the_whole_tree() {
        // Deep at a feed's end.
        let deep = nested(100_000);
        assert_eq!(parse(&deep, None).unwrap_err(), PageError::TooDeep);
        // Deep and back within one feed, which then ends shallow.
        let tail = "<p>flat</p>".repeat(FEED);
        let page = format!("{}{tail}", nested(600));
        assert_eq!(parse(&page, None).unwrap_err(), PageError::TooDeep);
    }

    #[test]
    fn many_elements_side_by_side_are_not_deep() {
        let page = "<li>item</li>".repeat(50_000);
        assert!(parse(&page, None).is_ok());
        let unclosed = "<p>para".repeat(5_000);
        assert!(parse(&unclosed, None).is_ok());
    }

    #[test]
    fn a_passed_deadline_stops_parsing_after_the_first_feed() {
        let page = "<p>x</p>".repeat(10 * FEED);
        let past = Instant::now();
        assert_eq!(parse(&page, Some(past)).unwrap_err(), PageError::Deadline);
        assert_eq!(
            parse("<p>x</p>", Some(past)).unwrap_err(),
            PageError::Deadline
        );
    }

    #[test]
    fn feeds_split_on_character_boundaries() {
        let page = format!("<p>{}</p>", "für ".repeat(FEED));
        let html = parse(&page, None).unwrap();
        let p = scraper::Selector::parse("p").unwrap();
        let text: String = html.select(&p).flat_map(|e| e.text()).collect();
        assert_eq!(text, "für ".repeat(FEED));
    }
}
