//! The store on PostgreSQL through its public API: the conformance suite
//! every backend passes, then what is PostgreSQL's own (its lease, day
//! partitions, schema versions).

use std::sync::Arc;

use crate::common;
use crate::store_conformance::{self, incident, run, state, transition};
use scarecrow::incident::EventKind;
use scarecrow::incident::store::{Claimer, Store as _};
use scarecrow::store::{self, Reader, Retention, Store};

use super::{backend, database};

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let _shared = super::SHARED.read().await;
    store_conformance::conformance(async |keep| {
        let db = backend(&cluster.database("conformance"));
        let store = Store::open(&db, keep).expect("open");
        store_conformance::Opened {
            store,
            reader: Reader::open(&db).expect("reader"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_second_daemon_on_the_same_store_is_refused_until_the_first_stops() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("lease") else { return };
    let first = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    let started = std::time::Instant::now();
    let second = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect_err("refused");
    assert!(
        second.0.contains("another scarecrow writes to this store")
            && second.0.contains("One daemon writes to a store"),
        "{second}"
    );
    // It waited for the lease to lapse, which the first one kept renewing.
    assert!(started.elapsed() >= store::postgres::LEASE, "{second}");
    first.close().await;
    // Given up on close: the next one need not wait.
    let next = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open after close");
    next.close().await;
}

#[tokio::test]
async fn state_survives_reopening_and_runs_land_in_day_partitions() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("reopen") else { return };
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "diesel", 0),
        0,
        &["ops"],
    );
    {
        let store = Store::open(&backend(&db), Retention::from(100)).expect("open");
        store.queue_state("weather", &state(1)).expect("queue");
        for n in 0..3 {
            store.queue_run(Arc::new(run("weather", n))).expect("queue");
        }
        store
            .commit(t.clone(), &Claimer::new(std::time::Duration::from_secs(60)))
            .await
            .expect("commit");
        store.close().await;
    }
    let store = Store::open(&backend(&db), Retention::from(100)).expect("reopen");
    let snapshot = store.load().await.expect("load");
    assert_eq!(snapshot.states.get("diesel"), Some(&t.state));
    assert_eq!(snapshot.states.get("weather"), Some(&state(1)));
    store.close().await;
    let day = run("weather", 0)
        .result
        .started_at
        .format("%Y%m%d")
        .to_string();
    assert_eq!(db.psql(&format!("SELECT count(*) FROM runs_p{day}")), "3");
    assert_eq!(db.psql("SELECT count(*) FROM runs_default"), "0");
    assert_eq!(db.psql("SELECT max(version) FROM scarecrow_schema"), "1");
}

#[tokio::test]
async fn a_store_migrated_by_a_newer_scarecrow_is_used_only_if_it_is_compatible() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("newer") else { return };
    Store::open(&backend(&db), store::DEFAULT_HISTORY)
        .expect("open")
        .close()
        .await;
    // A newer scarecrow added something (expand): this one goes on.
    db.psql("INSERT INTO scarecrow_schema (version, compatible_from) VALUES (2, 1)");
    Reader::open(&backend(&db)).expect("an expanded schema is readable");
    Store::open(&backend(&db), store::DEFAULT_HISTORY)
        .expect("and writable")
        .close()
        .await;
    // A newer one removed what this one reads (contract): refused.
    db.psql("INSERT INTO scarecrow_schema (version, compatible_from) VALUES (3, 2)");
    let e = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect_err("refused");
    assert!(e.0.contains("migrated by a newer scarecrow"), "{e}");
    let e = Reader::open(&backend(&db)).expect_err("refused");
    assert!(e.0.contains("usable from version 2"), "{e}");
}

/// Another daemon took the lease over (as after this one was paused past
/// it): this one writes nothing more, and says so through `Store::lost`.
#[tokio::test]
async fn a_store_whose_lease_was_taken_over_writes_nothing_more() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("fenced") else { return };
    let store = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    store
        .record_run(Arc::new(run("weather", 0)))
        .await
        .expect("record");
    db.psql("UPDATE lease SET holder = 'another', host = 'elsewhere'");

    let refused = store
        .record_run(Arc::new(run("weather", 1)))
        .await
        .expect_err("fenced");
    assert!(
        refused.0.contains("took this store's lease over"),
        "{refused}"
    );
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "weather", 0),
        0,
        &["ops"],
    );
    let claimer = Claimer::new(std::time::Duration::from_secs(60));
    store
        .commit(t, &claimer)
        .await
        .expect_err("no transition either");
    let why = tokio::time::timeout(std::time::Duration::from_secs(5), store.lost())
        .await
        .expect("lost is told");
    assert!(why.contains("took this store's lease over"), "{why}");
    assert_eq!(db.psql("SELECT count(*) FROM runs"), "1");
    assert_eq!(db.psql("SELECT count(*) FROM incidents"), "0");
    assert_eq!(
        db.psql("SELECT holder FROM lease"),
        "another",
        "left as it is"
    );
    store.close().await;
}
