//! The SQLite store through its public API, on real files in a scratch
//! directory: the conformance suite every backend passes, then what is
//! SQLite's own (files, locks, schema versions, the writer's queue).

mod common;
mod store_conformance;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::FutureExt;
use scarecrow::incident::EventKind;
use scarecrow::incident::store::{Claimer, Store as _};
use scarecrow::store::{self, Backend, Reader, Store};
use store_conformance::{incident, run, state, transition};

/// A directory removed when the test ends, pass or fail.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = common::scratch(&format!("store-{name}"));
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// In a directory that does not exist yet: `open` creates it.
    fn db(&self) -> PathBuf {
        self.path().join("state").join("scarecrow.db")
    }
}

fn open(path: &Path) -> Store {
    Store::open(&Backend::Sqlite(path.to_owned()), store::DEFAULT_HISTORY).expect("open the store")
}

fn reader(path: &Path) -> Reader {
    Reader::open(&Backend::Sqlite(path.to_owned())).expect("reader")
}

fn claimer() -> Claimer {
    Claimer::new(std::time::Duration::from_secs(60))
}

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = Scratch::new("conformance");
    let n = AtomicUsize::new(0);
    store_conformance::conformance(async |keep| {
        let db = dir
            .path()
            .join(format!("{}.db", n.fetch_add(1, Ordering::Relaxed)));
        let store = Store::open(&Backend::Sqlite(db.clone()), keep).expect("open");
        store_conformance::Opened {
            store,
            reader: reader(&db),
        }
    })
    .await;
}

#[tokio::test]
async fn states_and_incidents_come_back_after_reopening() {
    let dir = Scratch::new("reopen");
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops", "chat"],
    );
    let first = claimer();
    {
        let store = open(&dir.db());
        store.queue_state("weather", &state(1)).expect("queue");
        store
            .record_run(Arc::new(run("weather", 1)))
            .await
            .expect("record");
        store.commit(t.clone(), &first).await.expect("commit");
        store.close().await;
    }
    let store = open(&dir.db());
    let snapshot = store.load().await.expect("load");
    assert_eq!(snapshot.states.get("diesel"), Some(&t.state));
    assert_eq!(snapshot.states.get("weather"), Some(&state(1)));
    // Its notifications, claimed by a worker that stopped without letting
    // go: another one takes them once that claim expires.
    let now = chrono::Utc::now();
    let next = claimer();
    assert_eq!(store.claim(&next, now).await.expect("claim"), vec![]);
    let later = now + chrono::TimeDelta::seconds(61);
    assert_eq!(store.claim(&next, later).await.expect("claim").len(), 2);
}

#[tokio::test]
async fn queued_runs_of_many_checks_keep_each_checks_order() {
    let dir = Scratch::new("interleaved");
    let store = open(&dir.db());
    let checks = ["weather", "diesel", "login"];
    // As the daemon queues them: interleaved, nobody waiting, one batch.
    for n in 0..20 {
        for check in checks {
            store.queue_run(Arc::new(run(check, n))).expect("queue");
            store.queue_state(check, &state(n as u32)).expect("queue");
        }
    }
    store.close().await;

    let reader = reader(&dir.db());
    let states = open(&dir.db()).load().await.expect("load").states;
    for check in checks {
        let newest: Vec<_> = (0..20).rev().map(|n| run(check, n).result).collect();
        assert_eq!(reader.recent_runs(check, 100).expect("runs"), newest);
        assert_eq!(states.get(check), Some(&state(19)));
    }
}

/// Root bypasses file permissions, so "read-only" cannot be staged here;
/// another connection holding the write lock is a store-down condition
/// root cannot bypass. It costs the 5 s busy timeout.
#[tokio::test]
async fn a_locked_database_fails_readably_and_recovers() {
    let dir = Scratch::new("locked");
    let store = open(&dir.db());
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops"],
    );
    assert!(store.is_healthy());

    let other = rusqlite::Connection::open(dir.db()).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let err = store
        .commit(t.clone(), &claimer())
        .await
        .expect_err("the database is locked");
    assert!(
        err.to_string()
            .contains("committing incident.declared inc_a"),
        "{err}"
    );
    assert!(err.to_string().contains("database is locked"), "{err}");
    assert!(!store.is_healthy());
    // Readers are not blocked by a writer, and the failed commit left nothing.
    let reader = reader(&dir.db());
    assert_eq!(reader.incident("inc_a").expect("read"), None);

    other.execute_batch("ROLLBACK").expect("release the lock");
    store
        .commit(t.clone(), &claimer())
        .await
        .expect("works again");
    store
        .record_run(Arc::new(run("diesel", 1)))
        .await
        .expect("works again");
    assert!(store.is_healthy());
    assert!(reader.incident("inc_a").expect("read").is_some());
}

#[tokio::test]
async fn opening_fails_readably() {
    let dir = Scratch::new("open-errors");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("a file");
    let err =
        Store::open(&Backend::Sqlite(file.join("scarecrow.db")), 10).expect_err("parent is a file");
    assert!(
        err.to_string()
            .starts_with("store: creating the directory "),
        "{err}"
    );

    let err =
        Reader::open(&Backend::Sqlite(dir.path().join("missing.db"))).expect_err("no such file");
    assert!(err.to_string().contains("no database at"), "{err}");

    open(&dir.db()).close().await;
    let newer = rusqlite::Connection::open(dir.db()).expect("connection");
    newer
        .pragma_update(None, "user_version", 99)
        .expect("pretend a newer build wrote it");
    drop(newer);
    let err = Store::open(&Backend::Sqlite(dir.db()), 10).expect_err("newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    let err = Reader::open(&Backend::Sqlite(dir.db())).expect_err("newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn runs_written_by_schema_version_1_read_the_same_after_the_upgrade() {
    let dir = Scratch::new("upgrade");
    let (passed, failed) = (run("weather", 1), run("weather", 3));
    {
        let store = open(&dir.db());
        for r in [passed.clone(), failed.clone()] {
            store.record_run(Arc::new(r)).await.expect("record");
        }
        store.close().await;
    }
    // Version 1 kept the whole run as JSON, and the duration unrounded.
    let v1 = rusqlite::Connection::open(dir.db()).expect("connection");
    for r in [&passed, &failed] {
        let whole = serde_json::to_string(&r.result).expect("json");
        v1.execute(
            "UPDATE runs SET json = ?1, duration_ms = duration_ms + 0.0000004 WHERE run_id = ?2",
            rusqlite::params![whole, r.run_id],
        )
        .expect("rewrite as version 1");
    }
    // Nor the outbox claims of version 3.
    v1.execute_batch(
        "DROP INDEX outbox_pending_pair;
        ALTER TABLE outbox DROP COLUMN claimed_by;
        ALTER TABLE outbox DROP COLUMN claimed_until;",
    )
    .expect("drop the claims");
    v1.pragma_update(None, "user_version", 1)
        .expect("version 1");
    drop(v1);

    open(&dir.db()).close().await;
    let reader = reader(&dir.db());
    assert_eq!(
        reader.recent_runs("weather", 10).expect("runs"),
        [failed.result, passed.result]
    );
}

#[tokio::test]
async fn close_and_drop_write_what_is_queued() {
    let dir = Scratch::new("flush");
    let store = open(&dir.db());
    // Queue requests without waiting for their answers.
    for n in 0..50 {
        let _ = store.record_run(Arc::new(run("diesel", n))).now_or_never();
    }
    store.close().await;
    let err = store
        .record_run(Arc::new(run("diesel", 99)))
        .await
        .expect_err("closed");
    assert_eq!(err.to_string(), "store: store is closed");

    let store = open(&dir.db());
    for n in 50..80 {
        let _ = store.record_run(Arc::new(run("diesel", n))).now_or_never();
    }
    drop(store);

    let reader = reader(&dir.db());
    assert_eq!(reader.recent_runs("diesel", 1000).expect("runs").len(), 80);
}
