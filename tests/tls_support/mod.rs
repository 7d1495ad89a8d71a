//! Loopback TLS for tests/tls.rs: a test CA that issues certificates, an
//! HTTPS server (optionally requiring a client certificate) and a CONNECT
//! proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "scarecrow test CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names`, valid from midnight UTC `from` days from
    /// today until midnight `until` days from today.
    pub fn issue(&self, names: &[&str], from: i64, until: i64) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        let ymd = |d: NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
        params.not_before = ymd(day(from));
        params.not_after = ymd(day(until));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

pub fn day(offset: i64) -> NaiveDate {
    Utc::now().date_naive() + TimeDelta::days(offset)
}

pub fn midnight(offset: i64) -> DateTime<Utc> {
    day(offset).and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// An HTTPS server on a loopback port that answers every request with
/// `200 hello`; with `client_ca`, it requires a client certificate that CA
/// issued.
pub async fn https_server(server: &Issued, client_ca: Option<&Ca>) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(server.cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder();
    let config = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    }
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake the client or this server rejects ends here.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    answer(tls).await;
                }
            });
        }
    });
    addr
}

/// Reads a request head and answers `200 hello`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let head = read_head(&mut s).await;
    if head.is_empty() {
        return;
    }
    let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return String::new(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An HTTP proxy that tunnels every `CONNECT host:port` to 127.0.0.1:port,
/// whatever the host: a name only the proxy can reach.
pub async fn connect_proxy() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut client).await;
                let port = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|target| target.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let Some(port) = port else { return };
                let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
                    return;
                };
                let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
                if client.write_all(ok).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    addr
}
