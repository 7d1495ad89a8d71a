//! The secrets of a templated webhook's headers, read once when it starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::template::Resolve;

/// Secrets read once, at build, for the placeholders of header templates.
#[derive(Default)]
pub(super) struct Resolved {
    pub(super) secrets: HashMap<String, String>,
    pub(super) files: HashMap<PathBuf, String>,
}

impl Resolve for Resolved {
    fn secret(&self, name: &str) -> Result<String, String> {
        self.secrets
            .get(name)
            .cloned()
            .ok_or_else(|| "not read when the sink started".to_owned())
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "not read when the sink started".to_owned())
    }

    fn capture(&self, _: &str) -> Option<String> {
        None
    }
}

/// Passes look-ups through and remembers what they found.
pub(super) struct Recorder<'a> {
    inner: &'a dyn Resolve,
    seen: Mutex<Resolved>,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(inner: &'a dyn Resolve) -> Recorder<'a> {
        Recorder {
            inner,
            seen: Mutex::default(),
        }
    }

    pub(super) fn finish(self) -> Resolved {
        self.seen
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Resolve for Recorder<'_> {
    fn secret(&self, name: &str) -> Result<String, String> {
        let v = self.inner.secret(name)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.secrets.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    fn file(&self, path: &Path) -> Result<String, String> {
        let v = self.inner.file(path)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.files.insert(path.to_owned(), v.clone());
        Ok(v)
    }

    fn capture(&self, _: &str) -> Option<String> {
        None
    }
}
