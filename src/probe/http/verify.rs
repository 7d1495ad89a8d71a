//! How the probe decides to trust a server's certificate, as a rustls
//! client config of its own rather than reqwest's, for what reqwest's cannot
//! do: say that a refused certificate is self-signed (with the digest to pin
//! it by), and trust one certificate by its digest (`pin_sha256`). `ca`
//! cannot do the latter for a self-signed certificate: webpki refuses a CA
//! certificate as a server's own.
//!
//! Whatever decides on the certificate, the server must prove it holds the
//! certificate's key: handshake signatures are always verified.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use sha2::{Digest as _, Sha256};

use crate::check::{CertDigest, TlsOptions};

/// A self-signed certificate that nothing trusts.
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate {0}")]
pub(super) struct SelfSigned(pub CertDigest);

/// A certificate whose digest `pin_sha256` does not list.
#[derive(Debug, thiserror::Error)]
#[error("certificate {0} is not pinned")]
pub(super) struct NotPinned(pub CertDigest);

/// A handshake signature that the certificate's key did not make.
#[derive(Debug, thiserror::Error)]
#[error("the handshake signature does not match the certificate")]
pub(super) struct ForeignSignature;

/// The client config for `tls`: its verifier, its client certificate, and
/// ALPN offering HTTP/2 and HTTP/1.1 (as reqwest's own config does).
pub(super) fn client_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, rustls::Error> {
    // The process default, if the embedding program chose one; otherwise
    // the provider reqwest itself builds.
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure {
        Arc::new(WithoutCa {
            accept: Accept::Any,
            algorithms,
        })
    } else if !tls.pin_sha256.is_empty() {
        Arc::new(WithoutCa {
            accept: Accept::Pinned(tls.pin_sha256.clone()),
            algorithms,
        })
    } else {
        let extra_roots = match &tls.ca {
            Some(ca) => CertificateDer::pem_slice_iter(&ca.pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| rustls::Error::General(format!("`ca`: {e}")))?,
            None => Vec::new(),
        };
        // The verifier reqwest uses too: the system's roots, plus `ca`.
        let system = rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots,
            provider.clone(),
        )?;
        Arc::new(Explaining(system))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert.pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| rustls::Error::General(format!("`client_cert`: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(&key.pem)
                .map_err(|e| rustls::Error::General(format!("`client_key`: {e}")))?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The SHA-256 of a DER certificate.
pub(super) fn digest(der: &[u8]) -> CertDigest {
    CertDigest(Sha256::digest(der).into())
}

/// The system's verifier (with `ca` added), whose refusal of a self-signed
/// certificate is reworded as [`SelfSigned`].
#[derive(Debug)]
struct Explaining(rustls_platform_verifier::Verifier);

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| explain(e, end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(self.0.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(self.0.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// The refusals a self-signed certificate gets: no trusted issuer, or (a
/// CA certificate, as `openssl req -x509` makes) webpki's "CA used as end
/// entity", which rustls passes on as an opaque `Other`.
fn explain(err: rustls::Error, end_entity: &CertificateDer<'_>) -> rustls::Error {
    let untrusted = matches!(
        err,
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
                | CertificateError::BadSignature
                | CertificateError::Other(_)
        )
    );
    if untrusted && self_signed(end_entity) {
        return other(SelfSigned(digest(end_entity)));
    }
    err
}

/// Whether the certificate names itself as its issuer.
fn self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, cert)| cert.issuer().as_raw() == cert.subject().as_raw())
}

/// What a check trusts without a CA: the pinned certificates (within their
/// validity period, for any name: the pin names the certificate itself), or
/// with `insecure = true` any certificate.
#[derive(Debug)]
enum Accept {
    Pinned(Vec<CertDigest>),
    Any,
}

/// Decides on the certificate itself, not its issuer. The handshake
/// signature is still checked against the certificate sent: without that a
/// pin would mean nothing (a certificate is public), and `insecure` gives
/// up nothing a user meant to give up by it.
#[derive(Debug)]
struct WithoutCa {
    accept: Accept,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for WithoutCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Accept::Pinned(pins) = &self.accept {
            let got = digest(end_entity);
            if !pins.contains(&got) {
                return Err(other(NotPinned(got)));
            }
            valid_at(end_entity, now)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A bad handshake signature, told apart from a bad signature inside the
/// certificate chain (both are `BadSignature` to rustls).
fn signature(
    verified: Result<HandshakeSignatureValid, rustls::Error>,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verified.map_err(|e| match e {
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            other(ForeignSignature)
        }
        e => e,
    })
}

/// A pinned certificate outside its validity period is refused as webpki
/// refuses any other: with the times, for the message.
fn valid_at(der: &[u8], now: UnixTime) -> Result<(), rustls::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let at = |t: x509_parser::time::ASN1Time| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(t.timestamp()).unwrap_or(0),
        ))
    };
    let validity = cert.validity();
    let (not_before, not_after) = (at(validity.not_before), at(validity.not_after));
    if now.as_secs() > not_after.as_secs() {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        }
        .into());
    }
    if now.as_secs() < not_before.as_secs() {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        }
        .into());
    }
    Ok(())
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}
