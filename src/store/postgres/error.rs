//! How PostgreSQL's failures become the store's: the error its statements
//! answer with, its text with every cause, and whether it means the
//! database could not be reached.

use postgres::error::SqlState;

/// A failed statement: PostgreSQL's error, or a value that does not decode.
#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error("{}", chain(.0))]
    Sql(#[from] postgres::Error),
    #[error("{0}")]
    Invalid(String),
    /// The leader's lease is another member's now (see `lease.rs`).
    #[error("another scarecrow took this store's lease over")]
    Lost,
    /// A write only the leader makes, asked of a member that does not lead.
    #[error("this replica does not lead: only the leader writes incidents")]
    NotLeading,
}

/// An error with its causes: `postgres::Error` shows only its kind ("db
/// error") and keeps the server's message in its source.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether the database could not be reached (or could not now: a lock
/// timed out), as opposed to refusing.
pub(super) fn unreachable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    // A row another member holds (paused, cut off) or a
                    // statement cut short: the runs are held and tried
                    // again, not dropped.
                    SqlState::LOCK_NOT_AVAILABLE,
                    SqlState::QUERY_CANCELED,
                    SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                ]
                .contains(code)
        }
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}
