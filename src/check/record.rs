//! A counted run as it is kept: its result and the id incidents refer to
//! it by. One value, shared by the run history and the incident engine, so
//! a run is neither copied nor serialized twice.

use std::sync::Arc;

use super::{Redacted, RunResult};

/// A counted run, its id (`run_…`) and where it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub result: Redacted<RunResult>,
    /// The location of the daemon that ran it: one value per daemon,
    /// shared by its runs.
    pub location: Arc<str>,
}
