//! Which class of failure an HTTP error is, decided by the types in its
//! source chain, never by its message text.

use std::io::ErrorKind;

use crate::check::Reason;
use crate::error_chain;

use super::client::DnsError;

/// Classifies an error of the client and words it for a user: what went
/// wrong, then the URL (shown without its query).
pub(super) fn classify(err: &reqwest::Error, url: &str) -> (Reason, String) {
    let (reason, what) = what(err);
    (reason, format!("{what} ({url})"))
}

fn what(err: &reqwest::Error) -> (Reason, String) {
    let chain: Vec<_> = error_chain::chain(err).collect();

    if let Some(dns) = chain.iter().find_map(|e| e.downcast_ref::<DnsError>()) {
        return (Reason::Dns, dns.to_string());
    }
    if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return (Reason::Tls, super::tls::describe(tls).1);
    }
    if let Some(h) = chain.iter().find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if h.is_timeout() {
            return (Reason::Timeout, "timed out".to_owned());
        }
        if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() || h.is_parse_version_h2()
        {
            return (
                Reason::Http,
                format!("the server did not answer with valid HTTP: {h}"),
            );
        }
        if h.is_incomplete_message() {
            return (
                Reason::Http,
                "the connection closed before the response was complete".to_owned(),
            );
        }
    }
    let connecting = err.is_connect();
    if let Some(io) = chain
        .iter()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
    {
        let named = match io.kind() {
            ErrorKind::ConnectionRefused => Some("connection refused"),
            ErrorKind::ConnectionReset => Some("connection reset by the server"),
            ErrorKind::ConnectionAborted => Some("connection aborted"),
            ErrorKind::NotConnected | ErrorKind::BrokenPipe => Some("connection lost"),
            ErrorKind::HostUnreachable => Some("host unreachable"),
            ErrorKind::NetworkUnreachable => Some("network unreachable"),
            ErrorKind::AddrNotAvailable => Some("address not available"),
            ErrorKind::UnexpectedEof => Some("the connection closed unexpectedly"),
            _ => None,
        };
        if io.kind() == ErrorKind::TimedOut {
            return (Reason::Timeout, "the connection timed out".to_owned());
        }
        let reason = if connecting {
            Reason::Connect
        } else {
            Reason::Http
        };
        return match named {
            Some(text) => (reason, text.to_owned()),
            None if connecting => (reason, format!("could not connect: {io}")),
            None => (reason, format!("connection error: {io}")),
        };
    }
    // Fallbacks for chains without a type we know.
    let innermost = chain
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string);
    if err.is_timeout() {
        (Reason::Timeout, "timed out".to_owned())
    } else if connecting {
        (Reason::Connect, format!("could not connect: {innermost}"))
    } else if err.is_decode() {
        (
            Reason::Http,
            format!("could not decode the response body: {innermost}"),
        )
    } else if err.is_body() {
        (
            Reason::Http,
            format!("error reading the response body: {innermost}"),
        )
    } else if err.is_builder() {
        (Reason::Setup, format!("invalid request: {innermost}"))
    } else {
        (Reason::Http, format!("request failed: {innermost}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_looks_inside_io_errors() {
        let tls = rustls::Error::General("boom".into());
        let io = std::io::Error::new(ErrorKind::InvalidData, tls);
        let chain: Vec<_> = error_chain::chain(&io).collect();
        assert_eq!(chain.len(), 2);
        assert!(chain[1].downcast_ref::<rustls::Error>().is_some());
    }
}
