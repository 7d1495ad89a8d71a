//! Why a crontab expression was rejected: its own file so that the field parser and the
//! expression parser both build it without importing each other.

/// Why an expression was rejected, and where (a byte range of the expression).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
}
