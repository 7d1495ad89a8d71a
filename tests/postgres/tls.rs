//! `sslmode` against a PostgreSQL that serves TLS with a certificate from a
//! test CA for `localhost`: what each mode accepts and refuses, as libpq.

use scarecrow::store::postgres::{Connect, SslMode};
use scarecrow::store::{self, Backend, Reader, Store};

use crate::common;
use crate::tls_support::Ca;

#[tokio::test]
async fn sslmode_verifies_the_servers_certificate_as_libpq_does() {
    let _shared = super::SHARED.read().await;
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let ca = Ca::new();
    let server = ca.issue(&["localhost"], -1, 30);
    cluster.serve_tls(&server.cert, &server.key);
    let db = cluster.database("tls");
    let by_name = db.url.replace("127.0.0.1", "localhost");
    let backend = |url: &str, mode: SslMode, ca: Option<&str>| {
        let ca = ca.map(|pem| pem.as_bytes().to_vec());
        let connect = Connect::new(url, Some(db.password.clone()), mode, ca).expect("a URL");
        Backend::Postgres(connect)
    };

    // Over TLS, verified: the store's own connection is encrypted.
    let verified = backend(&by_name, SslMode::VerifyFull, Some(&ca.pem));
    let store = Store::open(&verified, store::DEFAULT_HISTORY).expect("verify-full with the CA");
    let encrypted = db.psql(&format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = '{}' AND ssl",
        db.name
    ));
    assert_eq!(encrypted, "1", "the writer's connection uses TLS");
    store.close().await;

    for (url, mode, trusted, works) in [
        (&by_name, SslMode::VerifyFull, true, true),
        // No CA: the system's roots do not know the test CA.
        (&by_name, SslMode::VerifyFull, false, false),
        // The certificate names localhost, not 127.0.0.1.
        (&db.url, SslMode::VerifyFull, true, false),
        (&db.url, SslMode::VerifyCa, true, true),
        (&db.url, SslMode::VerifyCa, false, false),
        // Encrypted, unverified, as libpq's require and prefer.
        (&db.url, SslMode::Require, false, true),
        (&db.url, SslMode::Prefer, false, true),
        (&db.url, SslMode::Disable, false, true),
    ] {
        let ca = trusted.then_some(ca.pem.as_str());
        let opened = Reader::open(&backend(url, mode, ca));
        assert_eq!(
            opened.is_ok(),
            works,
            "{url} {mode:?} with the CA: {trusted}: {:?}",
            opened.err()
        );
    }
}
