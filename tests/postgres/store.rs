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

/// A second daemon on the same store joins as a member at once; it does
/// not lead (its incident writes are refused) until the first gives the
/// lease up, then it leads within a tick or two.
#[tokio::test]
async fn a_second_daemon_joins_as_a_member_and_leads_once_the_first_stops() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("lease") else { return };
    let first = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    let started = std::time::Instant::now();
    let second = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("joins");
    assert!(
        started.elapsed() < store::postgres::LEASE,
        "no wait to join"
    );
    let leads = |s: &Store| {
        s.cluster()
            .expect("a PostgreSQL store has members")
            .borrow()
            .leading
    };
    assert!(leads(&first));
    assert!(!leads(&second));
    let mut members = second.cluster().expect("members");
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        members.wait_for(|c| c.members.len() == 2),
    )
    .await
    .expect("both members seen")
    .expect("watch");
    let t = transition(
        EventKind::Declared,
        incident("inc_a", "weather", 0),
        0,
        &["ops"],
    );
    let claimer = Claimer::new(std::time::Duration::from_secs(60));
    let refused = second
        .commit(t.clone(), &claimer)
        .await
        .expect_err("only the leader writes incidents");
    assert!(refused.0.contains("does not lead"), "{refused}");

    first.close().await;
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        members.wait_for(|c| c.leading && c.members.len() == 1),
    )
    .await
    .expect("the second leads once the first gave the lease up")
    .expect("watch");
    second
        .commit(t, &claimer)
        .await
        .expect("the leader commits");
    assert_eq!(db.psql("SELECT epoch FROM lease"), "2");
    second.close().await;
    assert_eq!(db.psql("SELECT count(*) FROM members"), "0", "both left");
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
    assert_eq!(db.psql("SELECT max(version) FROM scarecrow_schema"), "3");
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
    db.psql("INSERT INTO scarecrow_schema (version, compatible_from) VALUES (4, 3)");
    Reader::open(&backend(&db)).expect("an expanded schema is readable");
    Store::open(&backend(&db), store::DEFAULT_HISTORY)
        .expect("and writable")
        .close()
        .await;
    // A newer one removed what this one reads (contract): refused.
    db.psql("INSERT INTO scarecrow_schema (version, compatible_from) VALUES (5, 4)");
    let e = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect_err("refused");
    assert!(e.0.contains("migrated by a newer scarecrow"), "{e}");
    let e = Reader::open(&backend(&db)).expect_err("refused");
    assert!(e.0.contains("usable from version 4"), "{e}");
}

/// Another member took the lease over (as after this one was paused past
/// it): this one writes no incident, state or claim more, and says so
/// through `Store::lost`. (Its runs are history, which any member
/// writes; the daemon stops on `lost` anyway.)
#[tokio::test]
async fn a_store_whose_lease_was_taken_over_writes_nothing_more() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("fenced") else { return };
    let store = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    store
        .record_run(Arc::new(run("weather", 0)))
        .await
        .expect("record");
    db.psql("UPDATE lease SET holder = 'another', host = 'elsewhere', epoch = epoch + 1");

    let t = transition(
        EventKind::Declared,
        incident("inc_a", "weather", 0),
        0,
        &["ops"],
    );
    let claimer = Claimer::new(std::time::Duration::from_secs(60));
    let refused = store.commit(t, &claimer).await.expect_err("no transition");
    assert!(
        refused.0.contains("took this store's lease over"),
        "{refused}"
    );
    store
        .claim(&claimer, chrono::Utc::now())
        .await
        .expect_err("no claim either");
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

/// Two members write runs of one check: its counters are one streak over
/// both, in the order the runs were written, a batch that mixes outcomes
/// counts its last ones, and a run older than the last one counted (held
/// by a member that was cut off) leaves them alone.
#[tokio::test]
async fn members_count_one_streak_per_check() {
    let _shared = super::SHARED.read().await;
    let Some(db) = database("counters") else {
        return;
    };
    let a = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    let b = Store::open(&backend(&db), store::DEFAULT_HISTORY).expect("open");
    let counters =
        || db.psql("SELECT failures, passes FROM check_counters WHERE check_name = 'weather'");
    // Run n fails when n is a multiple of 3.
    a.record_run(Arc::new(run("weather", 0)))
        .await
        .expect("record");
    assert_eq!(counters(), "1|0");
    b.record_run(Arc::new(run("weather", 3)))
        .await
        .expect("record");
    assert_eq!(counters(), "2|0", "one streak over both members");
    for n in [4, 5, 6] {
        a.queue_run(Arc::new(run("weather", n))).expect("queue");
    }
    a.record_run(Arc::new(run("weather", 7)))
        .await
        .expect("record");
    assert_eq!(
        counters(),
        "0|1",
        "pass, pass, fail, pass: one pass in a row"
    );
    b.record_run(Arc::new(run("weather", 8)))
        .await
        .expect("record");
    assert_eq!(counters(), "0|2");
    a.record_run(Arc::new(run("weather", 1)))
        .await
        .expect("record");
    assert_eq!(counters(), "0|2", "an older run is history, not news");
    assert_eq!(db.psql("SELECT count(*) FROM runs"), "8");
    a.close().await;
    b.close().await;
}
