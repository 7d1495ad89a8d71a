//! scarecrow on PostgreSQL, on a throwaway cluster this binary starts
//! (tests/common/postgres.rs): the store through its API, the daemon end
//! to end, replicas sharing it, replicas in two locations with a quorum,
//! PostgreSQL going away under it (and a replica declaring alone
//! meanwhile), `store copy`, and TLS.

#[path = "postgres/alone.rs"]
mod alone;
mod common;
#[path = "postgres/daemon.rs"]
mod daemon;
#[path = "postgres/locations.rs"]
mod locations;
#[path = "postgres/replicas.rs"]
mod replicas;
#[path = "postgres/stale.rs"]
mod stale;
#[path = "postgres/store.rs"]
mod store;
mod store_conformance;
#[path = "postgres/tls.rs"]
mod tls;
#[allow(dead_code)]
mod tls_support;

use scarecrow::store::Backend;
use scarecrow::store::postgres::{Connect, SslMode};

/// Every test holds it to read; the one that stops the cluster holds it to
/// write, so it stops PostgreSQL under nobody else.
static SHARED: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The store at `db`, with its password given apart from the URL.
fn backend(db: &common::postgres::Database) -> Backend {
    let connect = Connect::new(&db.url, Some(db.password.clone()), SslMode::Prefer, None)
        .expect("a PostgreSQL URL");
    Backend::Postgres(connect)
}

/// A fresh database named after the test, or `None` when PostgreSQL is not
/// installed (and the test says SKIPPED).
fn database(name: &str) -> Option<common::postgres::Database> {
    Some(common::postgres::cluster()?.database(name))
}
