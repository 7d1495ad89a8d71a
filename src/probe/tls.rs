//! TLS in the probe: a check's connection options on a client, the expiry
//! of the certificate each HTTPS response came with, and what kind of
//! certificate problem a failed handshake had.

use chrono::{DateTime, Utc};
use rustls::CertificateError;

use crate::check::{Connection, StepResult};

/// Applies a check's `[tls]`, `resolve` and `proxy` to a client builder.
/// The files were read and parsed at load; what fails here is what only
/// the TLS library can judge (a key that does not fit its certificate).
pub(super) fn configure(
    mut builder: reqwest::ClientBuilder,
    connection: &Connection,
) -> Result<reqwest::ClientBuilder, reqwest::Error> {
    let tls = &connection.tls;
    if let Some(ca) = &tls.ca {
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca.pem)?);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = Vec::with_capacity(cert.pem.len() + key.pem.len() + 1);
        pem.extend_from_slice(&cert.pem);
        pem.push(b'\n');
        pem.extend_from_slice(&key.pem);
        builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
    }
    if tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    for (host, addr) in &connection.resolve {
        builder = builder.resolve(host, *addr);
    }
    if let Some(proxy) = &connection.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
    }
    Ok(builder)
}

/// Notes the host of a response and, for HTTPS, when its certificate expires.
pub(super) fn record(response: &reqwest::Response, url: &url::Url, result: &mut StepResult) {
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
    HostnameMismatch,
    Other,
}

impl TlsFailure {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TlsFailure::Expired => "expired",
            TlsFailure::UnknownIssuer => "unknown_issuer",
            TlsFailure::HostnameMismatch => "hostname_mismatch",
            TlsFailure::Other => "other",
        }
    }
}

/// The sub-reason of a failed handshake and the message for it,
/// `tls (expired): certificate expired on …`.
pub(super) fn describe(err: &rustls::Error) -> (TlsFailure, String) {
    let (kind, what) = match err {
        rustls::Error::InvalidCertificate(cert) => certificate(cert),
        // TLS 1.3 servers say so; a TLS 1.2 server's "handshake failure"
        // could mean anything.
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => (
            TlsFailure::Other,
            "the server requires a client certificate \
             (`client_cert` and `client_key` in `[tls]`)"
                .to_owned(),
        ),
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
        other => (Other, format!("invalid certificate: {other}")),
    }
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
        assert_eq!(
            describe(&other).1,
            "tls (other): TLS handshake failed: received fatal alert: HandshakeFailure"
        );
    }
}
