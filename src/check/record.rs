//! A counted run as it is kept: its result and the id incidents refer to
//! it by. One value, shared by the run history and the incident engine, so
//! a run is neither copied nor serialized twice.

use super::{Redacted, RunResult};

/// A counted run and its id (`run_…`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub result: Redacted<RunResult>,
}
