//! What one delivery attempt came to: the outcome every kind's sender
//! returns and the outbox acts on.

use std::fmt;

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// 408, 5xx, timeouts, connection errors: try again (not before
    /// `retry_after` when the receiver said so).
    Retry {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// 429: the receiver's rate limit, not a failure. Try again once
    /// `retry_after` has passed, without growing the backoff.
    Throttled {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Other 4xx (and 3xx): dead-letter it.
    Rejected {
        error: String,
    },
    /// 410 Gone: disable this sink loudly.
    Gone {
        error: String,
    },
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Delivered { status } => write!(f, "delivered ({status})"),
            Attempt::Retry {
                error,
                retry_after: Some(after),
            } => write!(f, "{error}; retry after {}s", after.as_secs()),
            Attempt::Retry { error, .. } => write!(f, "{error}; will retry"),
            Attempt::Throttled {
                error,
                retry_after: Some(after),
            } => write!(f, "{error}; throttled for {}s", after.as_secs()),
            Attempt::Throttled { error, .. } => write!(f, "{error}; throttled"),
            Attempt::Rejected { error } => write!(f, "rejected: {error}"),
            Attempt::Gone { error } => write!(f, "gone: {error}"),
        }
    }
}
