//! A location gone quiet in the two-location setup of locations.rs: stale,
//! it counts neither way, so a quorum of two cannot be met while a share
//! is met by the location left; and a location running every second is
//! never taken for stale between reads of the store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::daemon::eventually;
use super::locations::*;

/// Stops the `ams` replica and waits until every replica left shows `ams`
/// stale for every check.
async fn ams_stops_and_goes_stale(t: &mut TwoLocations) {
    assert_eq!(t.replicas[AMS].stop().await, Some(0));
    for i in FRA {
        for n in 0..CHECKS {
            shows(&t.replicas[i], n, "ams", "stale").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_location_goes_stale_and_does_not_make_up_a_quorum_of_two() {
    let Some(mut t) = two_locations(
        "stale-two",
        Quorum::InChecks("{ min_failing = 2 }"),
        EVERY_2S,
    )
    .await
    else {
        return;
    };

    ams_stops_and_goes_stale(&mut t).await;
    t.fra.switch("break", "site", "").await;
    for n in 0..CHECKS {
        shows(&t.replicas[FRA[0]], n, "fra", "failing").await;
    }
    tokio::time::sleep(Duration::from_secs(4 * INTERVAL_SECS)).await;
    assert!(
        t.hook.all().is_empty(),
        "one failing location and a stale one declare nothing: {:#?}",
        per_check(&t.hook, "incident.declared")
    );
    for n in 0..CHECKS {
        assert_eq!(
            page_state(&t.replicas[FRA[1]], n, "ams").await.as_deref(),
            Some("stale")
        );
    }
    for i in FRA {
        assert_eq!(t.replicas[i].stop().await, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_50_percent_the_one_fresh_location_failing_declares_once_with_the_other_stale() {
    let quorum = Quorum::InChecks("{ min_failing = \"50%\" }");
    let Some(mut t) = two_locations("stale-half", quorum, EVERY_2S).await else {
        return;
    };

    ams_stops_and_goes_stale(&mut t).await;
    t.fra.switch("break", "site", "").await;
    let broke = Instant::now();
    eventually("the first declaration", 60, async || {
        (!per_check(&t.hook, "incident.declared").is_empty()).then_some(())
    })
    .await;
    took(
        "50%, ams stale: breaking fra's site to the first declaration",
        broke.elapsed(),
    );
    let declared = once_each(&t.hook, "incident.declared").await;
    for (check, body) in &declared {
        let evidence = &body["data"]["evidence"];
        assert_eq!(
            states(&evidence["locations"], true),
            expect(&[("ams", "stale"), ("fra", "failing")]),
            "{check}: {evidence:#}"
        );
        runs_are_the_locations(&t.db, check, &evidence["locations"]);
    }
    eprintln!(
        "data.evidence of a declaration with a stale location:\n{:#}",
        declared["feature-0"]["data"]["evidence"]
    );

    t.fra.switch("fix", "site", "").await;
    once_each(&t.hook, "incident.resolved").await;
    for i in FRA {
        assert_eq!(t.replicas[i].stop().await, Some(0));
    }
}

/// 60 % of two fresh locations is both; of one, that one: the failing
/// location alone declares once the other goes stale.
#[tokio::test(flavor = "multi_thread")]
async fn at_60_percent_from_config_toml_a_location_going_stale_leaves_the_failing_one_enough() {
    let quorum = Quorum::InConfig("{ min_failing = \"60%\" }");
    let Some(mut t) = two_locations("stale-share", quorum, EVERY_2S).await else {
        return;
    };

    t.fra.switch("break", "site", "").await;
    for n in 0..CHECKS {
        shows(&t.replicas[AMS], n, "fra", "failing").await;
    }
    tokio::time::sleep(Duration::from_secs(4 * INTERVAL_SECS)).await;
    assert!(
        t.hook.all().is_empty(),
        "one failing location of two fresh ones is 50 %: {:#?}",
        per_check(&t.hook, "incident.declared")
    );

    assert_eq!(t.replicas[AMS].stop().await, Some(0));
    let stopped = Instant::now();
    eventually("the first declaration", 60, async || {
        (!per_check(&t.hook, "incident.declared").is_empty()).then_some(())
    })
    .await;
    eprintln!(
        "60%: stopping ams to the first declaration: {:?} (ams goes stale 2 × interval + timeout + 5 s of store lag = {} s after its last run)",
        stopped.elapsed(),
        2 * INTERVAL_SECS + 1 + 5
    );
    let declared = once_each(&t.hook, "incident.declared").await;
    for (check, body) in &declared {
        let evidence = &body["data"]["evidence"];
        assert_eq!(
            states(&evidence["locations"], true),
            expect(&[("ams", "stale"), ("fra", "failing")]),
            "{check}: {evidence:#}"
        );
    }
    for i in FRA {
        assert_eq!(t.replicas[i].stop().await, Some(0));
    }
}

/// A location that runs a check every second is never taken for stale:
/// not on any replica's status page, and not by the leader, for which it
/// would leave the failing location alone enough for 60 %.
///
/// Ignored while it fails: a location's latest run reaches the other
/// replicas through the store, up to a second after it ran (the writer
/// gathers runs that long) and then at their next read of it (about every
/// second, later while their writer gathers), so with `every = "1s"` a
/// running location's last known run is often older than two intervals
/// and the timeout. The leader judges the locations after each run of a
/// read, a location's newer run in the same read not yet counted: it
/// declares and resolves within milliseconds, again and again.
#[tokio::test(flavor = "multi_thread")]
async fn a_location_running_every_second_is_never_taken_for_stale() {
    const EVERY_1S: &str = "every = \"1s\"\ntimeout = \"500ms\"";
    let quorum = Quorum::InChecks("{ min_failing = \"60%\" }");
    let Some(mut t) = two_locations("every-second", quorum, EVERY_1S).await else {
        return;
    };

    t.fra.switch("break", "site", "").await;
    for n in 0..CHECKS {
        shows(&t.replicas[AMS], n, "fra", "failing").await;
    }
    let watched = Instant::now();
    let mut stale = Vec::new();
    while watched.elapsed() < Duration::from_secs(20) {
        for (i, r) in t.replicas.iter().enumerate() {
            let page = page(r).await.expect("the status page");
            for n in 0..CHECKS {
                if state_on(&page, n, "ams").as_deref() == Some("stale") {
                    stale.push((watched.elapsed(), i, n));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let declared: BTreeMap<String, usize> = per_check(&t.hook, "incident.declared")
        .into_iter()
        .map(|(check, bodies)| (check, bodies.len()))
        .collect();
    let resolved: BTreeMap<String, usize> = per_check(&t.hook, "incident.resolved")
        .into_iter()
        .map(|(check, bodies)| (check, bodies.len()))
        .collect();
    eprintln!(
        "every 1s, 20 s with fra failing and ams passing: ams shown stale {} times \
         (when, replica, check: {stale:?}); declared {declared:?}, resolved {resolved:?}",
        stale.len()
    );
    assert!(
        stale.is_empty() && declared.is_empty(),
        "ams runs every second: never stale, nothing declared"
    );
    for r in &mut t.replicas {
        assert_eq!(r.stop().await, Some(0));
    }
}
