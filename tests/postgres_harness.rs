//! What tests/common/postgres.rs promises, checked through psql alone.

mod common;

use common::postgres::{Cluster, cluster};
use common::stderr;
use std::process::{Command, Output};
use std::sync::RwLock;

/// Taken for writing by the test that stops the server, so the others,
/// running on parallel threads, never find it down.
static SERVER: RwLock<()> = RwLock::new(());

#[test]
fn each_database_is_its_own() {
    let Some(cluster) = cluster() else { return };
    let _up = SERVER.read();
    let (a, b) = (cluster.database("own"), cluster.database("own"));
    assert_ne!(a.name, b.name);
    a.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)");
    assert_eq!(a.psql("SELECT count(*) FROM t"), "2");
    let in_b = "SELECT count(*) FROM pg_tables WHERE tablename = 't'";
    assert_eq!(b.psql(in_b), "0");
}

#[test]
fn tcp_takes_the_password_and_refuses_another() {
    let Some(cluster) = cluster() else { return };
    let _up = SERVER.read();
    let db = cluster.database("password");
    let url = format!(
        "postgres://scarecrow@127.0.0.1:{}/{}",
        cluster.port, db.name
    );
    assert_eq!(db.url, url);

    let right = over_tcp(cluster, &db.url, &db.password);
    assert!(right.status.success(), "{}", stderr(&right));
    let wrong = over_tcp(cluster, &db.url, "p@ss/word:1");
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("password authentication failed"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn data_outlives_stop_and_start() {
    let Some(cluster) = cluster() else { return };
    let _down = SERVER.write();
    let db = cluster.database("restart");
    db.psql("CREATE TABLE t (x text); INSERT INTO t VALUES ('kept')");

    cluster.stop();
    assert!(!over_tcp(cluster, &db.url, &db.password).status.success());
    cluster.start();
    assert_eq!(db.psql("SELECT x FROM t"), "kept");
}

fn over_tcp(cluster: &Cluster, url: &str, password: &str) -> Output {
    Command::new(cluster.bin.join("psql"))
        .env("PGPASSWORD", password)
        .args(["--no-psqlrc", "--dbname", url, "--command", "SELECT 1"])
        .output()
        .expect("run psql")
}
