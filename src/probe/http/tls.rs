//! TLS in the probe: a check's connection options on a client, the expiry
//! of the certificate each HTTPS response came with, and what kind of
//! certificate problem a failed handshake had, in plain words.

use chrono::{DateTime, Utc};
use rustls::CertificateError;

use super::verify::{ForeignSignature, NotPinned, SelfSigned};
use crate::check::HttpStep;

/// Notes the host of a response and, for HTTPS, when its certificate expires.
pub(super) fn record(response: &reqwest::Response, url: &url::Url, result: &mut HttpStep) {
    result.host = url.host_str().map(str::to_owned);
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate());
    result.cert_expires_at = der.and_then(|der| {
        let expiry = not_after(der);
        if expiry.is_none() {
            tracing::debug!(host = ?result.host, "cannot read the peer certificate's notAfter");
        }
        expiry
    });
}

/// The `notAfter` of a DER certificate.
pub(super) fn not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
}

/// What was wrong with the peer's certificate, as far as the handshake says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsFailure {
    Expired,
    UnknownIssuer,
    SelfSigned,
    HostnameMismatch,
    PinMismatch,
    Other,
}

impl TlsFailure {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TlsFailure::Expired => "expired",
            TlsFailure::UnknownIssuer => "unknown_issuer",
            TlsFailure::SelfSigned => "self_signed",
            TlsFailure::HostnameMismatch => "hostname_mismatch",
            TlsFailure::PinMismatch => "pin_mismatch",
            TlsFailure::Other => "other",
        }
    }
}

/// The sub-reason of a failed handshake and the message for it,
/// `tls (expired): certificate expired on …`.
pub(super) fn describe(err: &rustls::Error) -> (TlsFailure, String) {
    use rustls::AlertDescription as Alert;
    let other = |what: &str| (TlsFailure::Other, what.to_owned());
    let (kind, what) = match err {
        rustls::Error::InvalidCertificate(cert) => certificate(cert),
        // TLS 1.3 servers say so; a TLS 1.2 server's "handshake failure"
        // could mean anything.
        rustls::Error::AlertReceived(Alert::CertificateRequired) => other(
            "the server requires a client certificate \
             (`client_cert` and `client_key` in `[tls]`)",
        ),
        rustls::Error::AlertReceived(Alert::HandshakeFailure) => other(
            "the server refused the handshake (no common cipher suite or \
             protocol version, or it wants a client certificate)",
        ),
        rustls::Error::AlertReceived(Alert::ProtocolVersion) => {
            other("the server supports no TLS version the probe speaks (TLS 1.2 and 1.3)")
        }
        rustls::Error::AlertReceived(alert) => (
            TlsFailure::Other,
            format!("the server ended the handshake with the alert {alert:?}"),
        ),
        rustls::Error::PeerIncompatible(_) => other(
            "the server offers no TLS version, cipher suite or key exchange \
             the probe supports",
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            other("the server did not answer with TLS (is it plain HTTP? then use http://)")
        }
        rustls::Error::NoCertificatesPresented => other("the server sent no certificate"),
        other => (TlsFailure::Other, format!("TLS handshake failed: {other}")),
    };
    (kind, format!("tls ({}): {what}", kind.as_str()))
}

fn certificate(err: &CertificateError) -> (TlsFailure, String) {
    use TlsFailure::*;
    match err {
        CertificateError::ExpiredContext { time, not_after } => {
            let on = unix_date(not_after.as_secs());
            let ago = time.as_secs().saturating_sub(not_after.as_secs()) / 86_400;
            let ago = match ago {
                0 => "less than a day ago".to_owned(),
                1 => "1 day ago".to_owned(),
                n => format!("{n} days ago"),
            };
            (Expired, format!("certificate expired on {on} ({ago})"))
        }
        CertificateError::Expired => (Expired, "certificate expired".to_owned()),
        CertificateError::NotValidYetContext { not_before, .. } => (
            Other,
            format!(
                "certificate is not valid until {} (is the clock right?)",
                unix_date(not_before.as_secs())
            ),
        ),
        CertificateError::NotValidYet => (Other, "certificate is not valid yet".to_owned()),
        CertificateError::UnknownIssuer => (
            UnknownIssuer,
            "certificate is not signed by a trusted authority \
             (trust a private CA with `ca` in `[tls]`)"
                .to_owned(),
        ),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<&str> = presented.iter().map(|n| dns_name(n)).collect();
            let valid_for = match names.as_slice() {
                [] => "no host name".to_owned(),
                names => names.join(", "),
            };
            (
                HostnameMismatch,
                format!("certificate is for {valid_for}, not {}", expected.to_str()),
            )
        }
        CertificateError::NotValidForName => (
            HostnameMismatch,
            "certificate is not valid for the host name".to_owned(),
        ),
        CertificateError::Revoked => (Other, "certificate was revoked".to_owned()),
        CertificateError::BadEncoding => (Other, "certificate is not valid X.509".to_owned()),
        CertificateError::BadSignature => (
            Other,
            "a certificate's signature does not verify with its issuer's key".to_owned(),
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            Other,
            "certificate is not meant for TLS servers (its extended key usage)".to_owned(),
        ),
        CertificateError::Other(e) => ours(&*e.0),
        other => (Other, format!("invalid certificate: {other}")),
    }
}

/// The probe's own verifiers' refusals, and the rest in rustls's words.
fn ours(e: &(dyn std::error::Error + 'static)) -> (TlsFailure, String) {
    if let Some(SelfSigned(digest)) = e.downcast_ref() {
        return (
            TlsFailure::SelfSigned,
            format!(
                "self-signed certificate (not issued by a trusted CA); \
                 to trust this one certificate, pin it in `[tls]`: pin_sha256 = \"{digest}\""
            ),
        );
    }
    if let Some(NotPinned(digest)) = e.downcast_ref() {
        return (
            TlsFailure::PinMismatch,
            format!(
                "the server's certificate has SHA-256 {digest}, which `pin_sha256` does not list"
            ),
        );
    }
    if e.downcast_ref::<ForeignSignature>().is_some() {
        return (
            TlsFailure::Other,
            "the server's handshake signature does not match its certificate \
             (the server does not hold the certificate's key)"
                .to_owned(),
        );
    }
    (TlsFailure::Other, format!("invalid certificate: {e}"))
}

/// `DnsName("shop.test")`, as webpki words a presented name, as `shop.test`.
fn dns_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .unwrap_or(presented)
}

fn unix_date(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{secs}s after 1970"),
            |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;

    fn day(n: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(n * 86_400))
    }

    #[test]
    fn sub_reasons_are_named_in_the_message() {
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: day(20_600),
            not_after: day(20_590),
        });
        assert_eq!(
            describe(&expired),
            (
                TlsFailure::Expired,
                "tls (expired): certificate expired on 2026-05-17 00:00 UTC (10 days ago)"
                    .to_owned()
            )
        );
        let mismatch =
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("localhost").unwrap(),
                presented: vec!["DnsName(\"other.test\")".to_owned()],
            });
        assert_eq!(
            describe(&mismatch).1,
            "tls (hostname_mismatch): certificate is for other.test, not localhost"
        );
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(describe(&unknown).0, TlsFailure::UnknownIssuer);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let (kind, message) = describe(&alert);
        assert_eq!(kind, TlsFailure::Other);
        assert!(
            message.starts_with("tls (other): the server requires a client certificate"),
            "{message}"
        );
        let other = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(
            describe(&other)
                .1
                .starts_with("tls (other): the server refused the handshake ("),
            "{:?}",
            describe(&other)
        );
    }

    #[test]
    fn other_failures_are_in_plain_words_not_debug_dumps() {
        let not_tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(
            describe(&not_tls).1,
            "tls (other): the server did not answer with TLS (is it plain HTTP? then use http://)"
        );
        let early = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            time: day(20_590),
            not_before: day(20_600),
        });
        assert_eq!(
            describe(&early).1,
            "tls (other): certificate is not valid until 2026-05-27 00:00 UTC (is the clock right?)"
        );
        for cert in [
            CertificateError::Revoked,
            CertificateError::BadSignature,
            CertificateError::InvalidPurpose,
            CertificateError::BadEncoding,
        ] {
            let (kind, message) = describe(&rustls::Error::InvalidCertificate(cert));
            assert_eq!(kind, TlsFailure::Other);
            assert!(
                message.starts_with("tls (other): certificate ")
                    || message.starts_with("tls (other): a certificate's"),
                "{message}"
            );
        }
    }
}
