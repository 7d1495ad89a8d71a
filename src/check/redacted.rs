//! The type every output of a run requires. A run's result leaves the probe
//! as a `Redacted<RunResult>`, sealed where the run's secrets are known
//! (`probe::redact`), and the log line, the metrics, the live state, the
//! API, the store, `once`'s report and an incident's evidence each take one.
//! An output added later has no unredacted value to show: to get one it
//! would have to vouch for it, and `tests/layering.rs` holds the short list
//! of places that may.

use std::ops::Deref;

use serde::Serialize;

/// A value that holds no secret of the run that produced it. Read-only: a
/// change after redaction could bring a secret back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Vouches that `value` holds no secret: after the probe's redaction has
    /// passed over every string of it, for a value built with no text from
    /// outside in it (the run of a panic), or read back from a store, which
    /// took only redacted values. Tests vouch for the runs they build.
    pub fn vouched(value: T) -> Redacted<T> {
        Redacted(value)
    }
}

impl<T> Deref for Redacted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
