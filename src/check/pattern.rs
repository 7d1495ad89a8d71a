//! Compiled regular expressions, shared by every check that uses the same
//! source. Generated check files repeat their patterns: with 10,000 checks
//! of one `body_matches`, a regex each (program plus its search caches,
//! about 16 KB) was most of the daemon's memory. One shared `Arc<Regex>`
//! also shares its pool of caches, which are what a search allocates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use regex::Regex;

/// A compiled regular expression that remembers its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub Arc<Regex>);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The patterns compiled so far, by source. Holds them weakly, so a pattern
/// no loaded check uses any more is freed.
#[derive(Debug, Default)]
pub struct Patterns {
    compiled: Mutex<HashMap<Box<str>, Weak<Regex>>>,
}

impl Patterns {
    /// The compiled `source`, shared with every other user of the same text.
    pub fn compile(&self, source: &str) -> Result<Pattern, regex::Error> {
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(re) = compiled.get(source).and_then(Weak::upgrade) {
            return Ok(Pattern(re));
        }
        let re = Arc::new(Regex::new(source)?);
        // Drop dead entries before the map grows, so it stays about as
        // large as the set of patterns in use however often checks reload.
        if compiled.len() == compiled.capacity() {
            compiled.retain(|_, re| re.strong_count() > 0);
        }
        compiled.insert(source.into(), Arc::downgrade(&re));
        Ok(Pattern(re))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_compiles_once_and_is_freed_when_unused() {
        let patterns = Patterns::default();
        let a = patterns.compile("eggs: [0-9]+").unwrap();
        let b = patterns.compile("eggs: [0-9]+").unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let other = patterns.compile("milk").unwrap();
        assert!(!Arc::ptr_eq(&a.0, &other.0));

        let weak = Arc::downgrade(&a.0);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "no check holds it any more");
        let again = patterns.compile("eggs: [0-9]+").unwrap();
        assert!(again.0.is_match("eggs: 12"));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_and_not_cached() {
        let patterns = Patterns::default();
        assert!(patterns.compile("eggs: [0-9").is_err());
        assert!(patterns.compile("eggs: [0-9").is_err());
    }
}
