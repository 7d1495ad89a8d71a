//! A check file's client-level keys: `[tls]`, `resolve` and `proxy`. The
//! files `[tls]` names are read and parsed now, at load: a file that cannot be
//! read, or holds no certificate or key, is an error at its key; so is a
//! `pin_sha256` that is not a SHA-256 fingerprint.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::reader::{Ctx, Env, Table, Value};
use super::values::{Reader, deny, template_text, text};
use crate::check::{CertDigest, Connection, PemFile, TlsOptions};

/// Reads `[tls]`, `resolve` and `proxy` from the check's top-level table;
/// a check without `proxy` gets `default_proxy` and its `no_proxy` (those
/// of `[defaults]`).
pub fn read(
    r: &mut Reader,
    t: &Table,
    default_proxy: Option<&url::Url>,
    no_proxy: &[String],
) -> Option<Arc<Connection>> {
    let tls = match t.get("tls") {
        Some(v) => tls(r, v),
        None => Some(TlsOptions::default()),
    };
    let resolve = match t.get("resolve") {
        Some(v) => resolve(r, v),
        None => Some(BTreeMap::new()),
    };
    let (proxy, no_proxy) = match t.get("proxy") {
        Some(v) => (check_proxy(r, v).map(Some), Vec::new()),
        None => (Some(default_proxy.cloned()), no_proxy.to_vec()),
    };
    let connection = Connection {
        tls: tls?,
        resolve: resolve?,
        proxy: proxy?,
        no_proxy,
    };
    Some(if connection.is_default() {
        Connection::shared_default()
    } else {
        Arc::new(connection)
    })
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
enum Holds {
    Certificates,
    Key,
}

fn tls(r: &mut Reader, v: &Value) -> Option<TlsOptions> {
    let t = r.cx.table(v, "[tls]")?;
    let file = |r: &mut Reader, key, holds| match t.get(key) {
        Some(v) => pem_file(r, v, holds).map(Some),
        None => Some(None),
    };
    let ca = file(r, "ca", Holds::Certificates);
    let client_cert = file(r, "client_cert", Holds::Certificates);
    let client_key = file(r, "client_key", Holds::Key);
    let mut ok = true;
    for (given, missing) in [("client_cert", "client_key"), ("client_key", "client_cert")] {
        if let (Some(span), None) = (t.key_span(given), t.key_span(missing)) {
            r.cx.error(
                span,
                format!("`{given}` needs `{missing}` (mutual TLS uses both)"),
            );
            ok = false;
        }
    }
    let insecure = match t.get("insecure") {
        Some(v) => {
            let on = r.cx.bool(v);
            if on == Some(true) {
                r.cx.warning(
                    v.span(),
                    "`insecure = true` turns certificate verification OFF for this check: \
                     expired, self-signed and wrong-host certificates all pass \
                     (trust a private CA with `ca`, or one certificate with `pin_sha256`, instead)",
                );
            }
            on
        }
        None => Some(false),
    };
    let pin_sha256 = match t.get("pin_sha256") {
        Some(v) => pins(r, v),
        None => Some(Vec::new()),
    };
    if let Some(span) = t.key_span("pin_sha256") {
        let conflicts = [
            ("ca", t.key_span("ca").is_some()),
            ("insecure", insecure == Some(true)),
        ];
        for (other, _) in conflicts.into_iter().filter(|(_, set)| *set) {
            r.cx.error(
                span.clone(),
                format!(
                    "`pin_sha256` and `{other}` cannot be used together: \
                     a pin trusts exactly the certificates it lists"
                ),
            );
            ok = false;
        }
    }
    t.finish(&mut r.cx);
    let options = TlsOptions {
        ca: ca?,
        client_cert: client_cert?,
        client_key: client_key?,
        insecure: insecure?,
        pin_sha256: pin_sha256?,
    };
    ok.then_some(options)
}

/// `pin_sha256 = "AB:CD:…"`, or a list of them (a certificate and its
/// successor): digests of the certificates trusted as the server's.
fn pins(r: &mut Reader, v: &Value) -> Option<Vec<CertDigest>> {
    const EXPECTED: &str = "expected a SHA-256 fingerprint as \
        `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints it \
        (64 hex digits; colons optional)";
    let given = r.cx.strings(v);
    if given.is_empty() {
        if v.get_ref().as_array().is_some() {
            r.cx.error(v.span(), format!("{EXPECTED}, found an empty list"));
        }
        return None;
    }
    let mut pins = Vec::with_capacity(given.len());
    for (text, span) in given {
        match CertDigest::parse(text) {
            Some(pin) => pins.push(pin),
            None => r.cx.error(span, format!("{EXPECTED}, found {text:?}")),
        }
    }
    // Every item a pin: `strings` reported (and dropped) items of other types.
    let listed = v.get_ref().as_array().map_or(1, |a| a.len());
    (pins.len() == listed).then_some(pins)
}

/// Reads the PEM file a string value names, relative to the check file.
fn pem_file(r: &mut Reader, v: &Value, holds: Holds) -> Option<PemFile> {
    let name = text(r, v)?;
    let base = r.cx.src.path.parent().unwrap_or(Path::new(""));
    let path = base.join(&name);
    // Refused before it is read: an ungranted file is never opened.
    if let Err(message) = r.access.file(&path) {
        deny(r, v.span(), message);
        return None;
    }
    let shown = path.display();
    let pem = match crate::fsread::read(&path, crate::fsread::SMALL_FILE_CAP) {
        Ok(pem) => pem,
        Err(e) => {
            r.cx.error(v.span(), format!("cannot read {shown}: {e}"));
            return None;
        }
    };
    let problem = match holds {
        Holds::Certificates => certificates_problem(&pem),
        Holds::Key => PrivateKeyDer::from_pem_slice(&pem)
            .err()
            .map(|e| format!("no private key: {e}")),
    };
    if let Some(problem) = problem {
        r.cx.error(v.span(), format!("{shown}: {problem}"));
        return None;
    }
    Some(PemFile { path, pem })
}

/// Why a PEM bundle is not a list of X.509 certificates, if it is not.
fn certificates_problem(pem: &[u8]) -> Option<String> {
    let certs = match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) => certs,
        Err(e) => return Some(format!("invalid PEM: {e}")),
    };
    if certs.is_empty() {
        return Some("no certificate (`-----BEGIN CERTIFICATE-----`) in the file".to_owned());
    }
    certs.iter().enumerate().find_map(|(i, der)| {
        x509_parser::parse_x509_certificate(der)
            .err()
            .map(|e| format!("certificate {} is not valid X.509: {e}", i + 1))
    })
}

/// `resolve = { "shop.example.org" = "10.0.0.7" }`: host name to address.
fn resolve(r: &mut Reader, v: &Value) -> Option<BTreeMap<String, SocketAddr>> {
    let t = r.cx.table(v, "resolve")?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (host, span, value) in t.entries() {
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid_host {
            r.cx.error(
                span,
                format!("{host:?} is not a host name (write it as in the URL, without port)"),
            );
            ok = false;
            continue;
        }
        let Some(s) = r.cx.str(value) else {
            ok = false;
            continue;
        };
        let addr = s
            .parse::<SocketAddr>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)));
        match addr {
            Ok(addr) => {
                let name = url::Host::Domain(host);
                if let Err(message) = r.access.host(&name) {
                    deny(r, span.clone(), message);
                    ok = false;
                }
                if let Err(message) = r.access.destination(&super::grant::ip_host(addr.ip())) {
                    deny(r, value.span(), message);
                    ok = false;
                }
                out.insert(host.to_ascii_lowercase(), addr);
            }
            Err(_) => {
                r.cx.error(
                    value.span(),
                    format!(
                        "expected an IP address such as \"10.0.0.7\" or \"10.0.0.7:8443\", found {s:?}"
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A check's own `proxy = "http://proxy:3128"`: its placeholders need the
/// grants like any other.
fn check_proxy(r: &mut Reader, v: &Value) -> Option<url::Url> {
    let text = text(r, v)?;
    proxy_url(&mut r.cx, v, &text)
}

/// `[defaults] proxy`: `config.toml` is the operator's, so no grant applies.
pub(super) fn proxy(cx: &mut Ctx, v: &Value, env: Env) -> Option<url::Url> {
    let s = cx.str(v)?;
    let text = template_text(s, env)
        .map_err(|e| cx.error(v.span(), e))
        .ok()?;
    proxy_url(cx, v, &text)
}

/// An HTTP(S) proxy URL with a host.
fn proxy_url(cx: &mut Ctx, v: &Value, text: &str) -> Option<url::Url> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            cx.error(
                v.span(),
                format!(
                    "expected an http:// or https:// proxy URL with a host, found scheme `{}`",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            cx.error(v.span(), format!("invalid proxy URL {text:?}: {e}"));
            None
        }
    }
}
