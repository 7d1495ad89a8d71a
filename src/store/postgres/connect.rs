//! Where the PostgreSQL store is and how to reach it: `[store] url`, the
//! password apart from it (a URL breaks on `@` or `/` in one), and TLS as
//! libpq's `sslmode` spells it.

use std::sync::Arc;
use std::time::Duration;

use postgres::Client;
use postgres::config::{Host, SslMode as WireMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long connecting may take, TLS and authentication included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection idle this long is probed, so a dead server or a silent
/// network path is noticed in about a minute, not after hours of TCP
/// retransmissions.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Unacknowledged data this old breaks the connection (Linux
/// `TCP_USER_TIMEOUT`): a write to a server that vanished fails in time.
const USER_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a statement may run.
const STATEMENT_TIMEOUT: &str = "SET statement_timeout = '60s';
    SET idle_in_transaction_session_timeout = '5s'";

/// libpq's `sslmode`, less `allow`: a mode that tries plain text first
/// has no use where the store carries incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS if the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS, unverified: protects against eavesdropping, not against a
    /// server in the middle.
    Require,
    /// TLS, the certificate's chain verified, any host name.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A PostgreSQL store's address and credentials. Shows the server and the
/// database, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    url: String,
    password: Option<String>,
    ssl: SslMode,
    /// PEM certificates trusted besides the system's roots.
    ca: Option<Vec<u8>>,
    /// `postgres://host:port/db`, for messages.
    shown: String,
}

impl Connect {
    /// `url` as libpq takes it (`postgres://user@host:5432/db`), without a
    /// password; `ca` the PEM of `[store] ca`.
    pub fn new(
        url: &str,
        password: Option<String>,
        ssl: SslMode,
        ca: Option<Vec<u8>>,
    ) -> Result<Connect, String> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| format!("`url` is not a PostgreSQL URL: {e}"))?;
        if config.get_password().is_some() {
            return Err(
                "`url` holds a password: write it in `password` (a `${secret:…}` or `${file:…}`)"
                    .to_owned(),
            );
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres");
        Ok(Connect {
            shown: format!("postgres://{host}:{port}/{db}"),
            url: url.to_owned(),
            password,
            ssl,
            ca,
        })
    }

    /// A new connection. Call it off the async runtime: the synchronous
    /// client runs one of its own.
    pub(super) fn connect(&self) -> Result<Client, String> {
        let mut config: postgres::Config = self.url.parse().map_err(|e| super::error::chain(&e))?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("scarecrow");
        }
        config
            .ssl_mode(match self.ssl {
                SslMode::Disable => WireMode::Disable,
                SslMode::Prefer => WireMode::Prefer,
                _ => WireMode::Require,
            })
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(KEEPALIVE_IDLE)
            .tcp_user_timeout(USER_TIMEOUT);
        let mut client = config
            .connect(MakeRustlsConnect::new(self.tls()?))
            .map_err(|e| super::error::chain(&e))?;
        // No statement holds the writer (and every run queued behind it)
        // for longer; and a process paused or cut off inside a transaction
        // (between the lease's fence and the commit) loses it, and its row
        // locks, after 5 s, well inside the lease: the others can take over.
        client
            .batch_execute(STATEMENT_TIMEOUT)
            .map_err(|e| super::error::chain(&e))?;
        Ok(client)
    }

    fn tls(&self) -> Result<rustls::ClientConfig, String> {
        // The process's provider (main installs aws-lc-rs); the same one
        // otherwise, as in tests that never ran main.
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match self.ssl {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                Arc::new(Unverified(algorithms))
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = match &self.ca {
                    Some(pem) => CertificateDer::pem_slice_iter(pem)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("`ca`: {e}"))?,
                    None => Vec::new(),
                };
                let system = rustls_platform_verifier::Verifier::new_with_extra_roots(
                    roots,
                    provider.clone(),
                )
                .map_err(|e| format!("the system's certificate roots: {e}"))?;
                Arc::new(Chain {
                    system,
                    any_name: self.ssl == SslMode::VerifyCa,
                })
            }
        };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

/// `postgres://host:port/db`, for messages and logs.
impl std::fmt::Display for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("server", &self.shown)
            .field("sslmode", &self.ssl)
            .finish_non_exhaustive()
    }
}

/// `prefer` and `require`: any certificate, as libpq; the handshake
/// signature is still checked against it.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca` and `verify-full`: the system's roots and `ca`; with
/// `any_name`, a certificate for another host name is accepted.
#[derive(Debug)]
struct Chain {
    system: rustls_platform_verifier::Verifier,
    any_name: bool,
}

impl ServerCertVerifier for Chain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .system
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.any_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.system.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.system.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.system.supported_verify_schemes()
    }
}
