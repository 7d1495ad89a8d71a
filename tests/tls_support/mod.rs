//! Loopback TLS for tests/tls.rs: a test CA that issues certificates,
//! self-signed certificates, an HTTPS server (optionally requiring a client
//! certificate, offering HTTP/2, or signing with a key that does not fit its
//! certificate) and a CONNECT proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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

/// A certificate and its key, in PEM, and the certificate's DER.
pub struct Issued {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
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
            der: cert.der().to_vec(),
        }
    }
}

/// A self-signed certificate for `names`, valid from midnight UTC `from`
/// days from today until midnight `until` days from today. With `ca`, it is
/// a CA certificate, as `openssl req -x509` makes by default.
pub fn self_signed(names: &[&str], ca: bool, from: i64, until: i64) -> Issued {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    let ymd = |d: NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = ymd(day(from));
    params.not_after = ymd(day(until));
    params
        .distinguished_name
        .push(DnType::CommonName, "self-signed test server");
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Issued {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// The SHA-256 of a DER certificate as `openssl x509 -fingerprint -sha256`
/// prints it: `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
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
    .with_single_cert(certs(server), key(server))
    .unwrap();
    serve(config, Protocols::default()).await
}

/// The application protocol (ALPN) of each connection a server accepted,
/// `none` when there was none.
pub type Protocols = Arc<Mutex<Vec<String>>>;

/// [`https_server`] offering HTTP/2 and HTTP/1.1, and answering in the one
/// the client chose.
pub async fn https_server_h2(server: &Issued) -> (SocketAddr, Protocols) {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs(server), key(server))
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let protocols = Protocols::default();
    (serve(config, Arc::clone(&protocols)).await, protocols)
}

/// [`https_server`] presenting `server`'s certificate but signing the
/// handshake with `key_of`'s key: a server that has a copy of the
/// certificate, not its key.
pub async fn https_server_with_wrong_key(server: &Issued, key_of: &Issued) -> SocketAddr {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signer = provider.key_provider.load_private_key(key(key_of)).unwrap();
    let certified = rustls::sign::CertifiedKey::new(certs(server), signer);
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    serve(config, Protocols::default()).await
}

/// Always the same certificate and key, fitting or not (rustls checks the
/// fit only when it is given both as DER).
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn certs(issued: &Issued) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(issued.cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn key(issued: &Issued) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap()
}

/// Accepts TLS connections on a loopback port and answers `200 hello` over
/// HTTP/2 or HTTP/1.1, as negotiated, noting each protocol in `protocols`.
async fn serve(config: rustls::ServerConfig, protocols: Protocols) -> SocketAddr {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let protocols = Arc::clone(&protocols);
            tokio::spawn(async move {
                // A handshake the client or this server rejects ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let shown = alpn.as_deref().map_or_else(
                    || "none".to_owned(),
                    |p| String::from_utf8_lossy(p).into_owned(),
                );
                protocols.lock().unwrap().push(shown);
                if alpn.as_deref() == Some(b"h2") {
                    answer_h2(tls).await;
                } else {
                    answer(tls).await;
                }
            });
        }
    });
    addr
}

/// Answers every request of an HTTP/2 connection with `200 hello`.
async fn answer_h2<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) {
    let service = hyper::service::service_fn(|_req| async {
        Ok::<_, std::convert::Infallible>(hyper::Response::new("hello".to_owned()))
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(s), service)
        .await;
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
