//! Walking an error's causes: what failed is named by the innermost cause
//! ("connection refused"), not by the layer that reports it ("error sending
//! request"). A leaf: it imports nothing of ours, so every layer may use it.

use std::error::Error;

/// How many causes are followed at most: a chain that long is a loop or a
/// bug, not more information.
const MAX_CAUSES: usize = 32;

/// `err` and its causes, outermost first. `io::Error::source` skips the error
/// an `io::Error` wraps, so a wrapped error is visited itself.
pub fn chain<'e>(
    err: &'e (dyn Error + 'static),
) -> impl Iterator<Item = &'e (dyn Error + 'static)> {
    std::iter::successors(Some(err), |e| cause(*e)).take(MAX_CAUSES + 1)
}

fn cause<'e>(e: &'e (dyn Error + 'static)) -> Option<&'e (dyn Error + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner as &(dyn Error + 'static)),
        None => e.source(),
    }
}

/// The innermost cause of `err` (`err` itself when it has none).
pub fn innermost<'e>(err: &'e (dyn Error + 'static)) -> &'e (dyn Error + 'static) {
    chain(err).last().unwrap_or(err)
}

/// `outer: inner: innermost`. A cause whose message only repeats the one
/// before it is left out (an `io::Error` shows the message of what it wraps).
pub fn joined(err: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    let mut last = String::new();
    for e in chain(err) {
        let message = e.to_string();
        if message == last {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
        last = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("sending failed")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("handshake failed")]
    struct Handshake(#[source] std::io::Error);

    fn refused() -> Outer {
        let inner = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        Outer(std::io::Error::other(Handshake(inner)))
    }

    #[test]
    fn follows_the_error_an_io_error_wraps() {
        let err = refused();
        let names: Vec<String> = chain(&err).map(|e| e.to_string()).collect();
        assert_eq!(
            names,
            [
                "sending failed",
                "handshake failed",
                "handshake failed",
                "connection refused"
            ]
        );
        assert_eq!(innermost(&err).to_string(), "connection refused");
        assert_eq!(
            joined(&err),
            "sending failed: handshake failed: connection refused"
        );
    }

    #[test]
    fn an_error_without_causes_is_its_own_innermost() {
        let err = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(chain(&err).count(), 1);
        assert_eq!(innermost(&err).to_string(), err.to_string());
        assert_eq!(joined(&err), err.to_string());
    }
}
