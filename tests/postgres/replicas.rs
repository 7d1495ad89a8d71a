//! Three replicas on one PostgreSQL store and one receiver: the checks are
//! shared (each runs once per interval across them), a dead replica's
//! checks move, an outage is declared and resolved once, a killed leader's
//! notification goes out from the next leader with its original event id,
//! and a leader paused past its lease writes and claims nothing once
//! another leads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::{Receiver, Site};

use super::daemon::{Daemon, eventually};

const INTERVAL_SECS: u64 = 2;

/// A replica with `checks` critical checks of `site` every
/// [`INTERVAL_SECS`], declaring to `hook`.
fn replica(
    name: &str,
    db: &crate::common::postgres::Database,
    site: &str,
    hook: &str,
    checks: usize,
) -> Daemon {
    let d = Daemon::on(name, db, site, hook);
    let dir = d.dir.path().join("checks");
    std::fs::remove_dir_all(&dir).expect("rm checks");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for n in 0..checks {
        let check = format!(
            "critical = true\nevery = \"{INTERVAL_SECS}s\"\ntimeout = \"1s\"\n\n\
             [[step]]\nname = \"home\"\nurl = \"{site}/\"\n"
        );
        std::fs::write(dir.join(format!("feature-{n}.toml")), check).expect("check");
    }
    d
}

/// Three replicas of `checks` checks on a database of their own, started
/// and seeing each other, with their site, receiver and leader.
struct Three {
    replicas: Vec<Daemon>,
    lead: usize,
    site: Site,
    hook: Receiver,
    db: crate::common::postgres::Database,
    _shared: tokio::sync::RwLockReadGuard<'static, ()>,
}

/// `None` when PostgreSQL is not installed (the test says SKIPPED).
async fn three(name: &str, checks: usize) -> Option<Three> {
    let shared = super::SHARED.read().await;
    let db = super::database(name)?;
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut replicas: Vec<Daemon> = (0..3)
        .map(|i| replica(&format!("{name}-{i}"), &db, &site.url, &hook.url, checks))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    for r in &replicas {
        sees_members(r, 3).await;
    }
    let lead = leader(&replicas, &[0, 1, 2]).await;
    Some(Three {
        replicas,
        lead,
        site,
        hook,
        db,
        _shared: shared,
    })
}

/// Waits until `replica` sees `n` members alive.
async fn sees_members(replica: &Daemon, n: u32) {
    eventually(&format!("{n} members"), 60, async || {
        (replica
            .metric("scarecrow_members{location=\"default\"}")
            .await?
            == f64::from(n))
        .then_some(())
    })
    .await;
}

/// The replica that leads, once exactly one of `candidates` says so.
async fn leader(replicas: &[Daemon], candidates: &[usize]) -> usize {
    eventually("one leader", 60, async || {
        let mut leading = Vec::new();
        for &i in candidates {
            if replicas[i].metric("scarecrow_leader").await? == 1.0 {
                leading.push(i);
            }
        }
        (leading.len() == 1).then(|| leading[0])
    })
    .await
}

/// The checks a replica exports series for: those it runs.
async fn owned(replica: &Daemon) -> BTreeSet<String> {
    let text = replica.metrics().await.expect("metrics");
    text.lines()
        .filter_map(|l| l.strip_prefix("scarecrow_check_up{check=\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Runs per check that started within [from, to], from the store.
fn runs_between(
    db: &crate::common::postgres::Database,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, u64> {
    db.psql(&format!(
        "SELECT check_name, count(*) FROM runs WHERE started_at >= '{}' AND started_at <= '{}' GROUP BY 1",
        ts(from),
        ts(to)
    ))
    .lines()
    .filter_map(|l| {
        let (check, n) = l.split_once('|')?;
        Some((check.to_owned(), n.parse().ok()?))
    })
    .collect()
}

/// The webhook ids of one event type the receiver got, any answer.
fn ids(hook: &Receiver, kind: &str) -> Vec<String> {
    hook.all()
        .iter()
        .filter(|r| r.body["type"] == kind)
        .map(|r| r.headers["webhook-id"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_checks_declare_once_and_take_over_a_dead_ones() {
    // Enough that a replica almost surely owns some: the one killed below
    // must have checks to hand over.
    const CHECKS: usize = 9;
    // Bound in this order, dropped in the reverse: the daemons first.
    let Some(Three {
        _shared,
        db,
        hook,
        site,
        lead,
        mut replicas,
    }) = three("replicas", CHECKS).await
    else {
        return;
    };

    // Each check has one owner, which alone exports its series.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut owners = Vec::new();
    for r in &replicas {
        owners.push(owned(r).await);
    }
    let all: usize = owners.iter().map(BTreeSet::len).sum();
    assert_eq!(all, CHECKS, "one owner per check: {owners:?}");

    // Each check runs once per interval across the replicas.
    let from = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(10 * INTERVAL_SECS)).await;
    let to = chrono::Utc::now();
    let counts = runs_between(&db, from, to);
    assert_eq!(counts.len(), CHECKS, "{counts:?}");
    for (check, n) in &counts {
        assert!(
            (9..=11).contains(n),
            "{check} ran {n} times in 10 intervals: {counts:?}"
        );
    }

    // An outage: one declaration per check, one resolution each, whichever
    // replica ran it.
    site.switch("break", "site", "").await;
    eventually("the declarations", 60, async || {
        (ids(&hook, "incident.declared").len() == CHECKS).then_some(())
    })
    .await;
    // Each owner shows its checks' incidents open, leader or not.
    for (i, mine) in owners.iter().enumerate() {
        for check in mine {
            let series = format!("scarecrow_incident_open{{check=\"{check}\"}}");
            eventually("the owner's scarecrow_incident_open", 30, async || {
                (replicas[i].metric(&series).await? == 1.0).then_some(())
            })
            .await;
        }
    }
    site.switch("fix", "site", "").await;
    eventually("the resolutions", 60, async || {
        (ids(&hook, "incident.resolved").len() == CHECKS).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    assert_eq!(
        ids(&hook, "incident.declared").len(),
        CHECKS,
        "declared once"
    );
    assert_eq!(
        ids(&hook, "incident.resolved").len(),
        CHECKS,
        "resolved once"
    );

    // A replica that does not lead dies: its checks move to the others.
    let victim = (0..3)
        .filter(|&i| i != lead)
        .max_by_key(|&i| owners[i].len())
        .expect("a replica");
    assert!(!owners[victim].is_empty(), "{owners:?}");
    replicas[victim].signal("KILL");
    let _ = replicas[victim].child.take().expect("running").wait().await;
    let killed = chrono::Utc::now();
    let started = Instant::now();
    let mut moved_after = Duration::ZERO;
    for check in &owners[victim] {
        eventually("the dead replica's checks to run again", 60, async || {
            let n: u64 = db
                .psql(&format!(
                    "SELECT count(*) FROM runs WHERE check_name = '{check}' AND started_at > '{}'",
                    ts(killed)
                ))
                .parse()
                .ok()?;
            (n > 0).then_some(())
        })
        .await;
        moved_after = moved_after.max(started.elapsed());
    }
    eprintln!("the checks of a SIGKILLed replica ran again after {moved_after:?}");
    let alive: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let mut now_owned = BTreeSet::new();
    for &i in &alive {
        sees_members(&replicas[i], 2).await;
        let mine = owned(&replicas[i]).await;
        assert!(now_owned.is_disjoint(&mine), "one owner per check");
        now_owned.extend(mine);
    }
    assert_eq!(now_owned.len(), CHECKS, "every check has an owner again");

    // It comes back: the checks it gains move at their next due time, in
    // phase, so each skips or repeats at most one run.
    let from = chrono::Utc::now();
    replicas[victim].start();
    for r in &replicas {
        sees_members(r, 3).await;
    }
    let joined_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(10 * INTERVAL_SECS)).await;
    let intervals = ((chrono::Utc::now() - from).num_milliseconds() as f64
        / (INTERVAL_SECS * 1000) as f64) as u64;
    let counts = runs_between(&db, from, chrono::Utc::now());
    for (check, n) in &counts {
        assert!(
            // One for the window's edges, one for the move.
            n.abs_diff(intervals) <= 2,
            "{check} ran {n} times in {intervals} intervals across the join at {joined_at}: {counts:?}"
        );
    }
    // One owner per check among the three again (the one back may own
    // none: with a handful of checks, hashing can give it nothing).
    let mut again = BTreeSet::new();
    let mut exported = 0;
    for r in &replicas {
        let mine = owned(r).await;
        exported += mine.len();
        again.extend(mine);
    }
    assert_eq!(
        (again.len(), exported),
        (CHECKS, CHECKS),
        "one owner per check"
    );
    for r in &mut replicas {
        assert_eq!(r.stop().await, Some(0));
    }
}

/// The leader is SIGKILLed while the receiver answers 503: another replica
/// takes the lease over and delivers the declaration once, with the event
/// id the first one tried.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_leaders_notification_goes_out_once_from_the_next_with_its_event_id() {
    // Bound in this order, dropped in the reverse: the daemons first.
    let Some(Three {
        _shared,
        db: _db,
        hook,
        site,
        lead,
        mut replicas,
    }) = three("failover", 1).await
    else {
        return;
    };

    hook.answer(503);
    site.switch("break", "site", "").await;
    let tried = eventually("a declaration tried", 60, async || {
        ids(&hook, "incident.declared").first().cloned()
    })
    .await;
    replicas[lead].signal("KILL");
    let _ = replicas[lead].child.take().expect("running").wait().await;
    let killed = Instant::now();
    hook.answer(200);

    let delivered = eventually("the declaration delivered", 60, async || {
        let d = hook.delivered("incident.declared");
        (!d.is_empty()).then_some(d)
    })
    .await;
    eprintln!(
        "failover: SIGKILL of the leader to delivery by the next: {:?}",
        killed.elapsed()
    );
    assert_eq!(
        delivered[0].headers["webhook-id"], tried,
        "the original event id"
    );
    let others: Vec<usize> = (0..3).filter(|&i| i != lead).collect();
    leader(&replicas, &others).await;
    // Time for a repeat to show, had there been one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hook.delivered("incident.declared").len(),
        1,
        "delivered once"
    );
    let declared: BTreeSet<String> = ids(&hook, "incident.declared").into_iter().collect();
    assert_eq!(declared.len(), 1, "one event, however often tried");
    for i in others {
        assert_eq!(replicas[i].stop().await, Some(0));
    }
}

/// The leader is paused (SIGSTOP) past its lease; another replica leads
/// and resolves the incident; the old one, continued, transitions and
/// claims nothing, and stops.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_leader_writes_and_claims_nothing_once_another_leads() {
    // Bound in this order, dropped in the reverse: the daemons first.
    let Some(Three {
        _shared,
        db,
        hook,
        site,
        lead,
        mut replicas,
    }) = three("paused", 1).await
    else {
        return;
    };

    site.switch("break", "site", "").await;
    eventually("the declaration", 60, async || {
        (hook.delivered("incident.declared").len() == 1).then_some(())
    })
    .await;
    replicas[lead].signal("STOP");
    let others: Vec<usize> = (0..3).filter(|&i| i != lead).collect();
    let next = leader(&replicas, &others).await;
    site.switch("fix", "site", "").await;
    eventually("the resolution", 60, async || {
        (hook.delivered("incident.resolved").len() == 1).then_some(())
    })
    .await;
    let events = db.psql("SELECT kind FROM events ORDER BY at");
    let outbox = db.psql("SELECT count(*) FROM outbox WHERE state <> 'delivered'");

    replicas[lead].signal("CONT");
    let mut old = replicas[lead].child.take().expect("running");
    let status = tokio::time::timeout(Duration::from_secs(30), old.wait())
        .await
        .expect("the old leader stops once it finds the lease taken")
        .expect("status");
    assert_eq!(
        status.code(),
        Some(2),
        "it stops, as a supervisor restarts it"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(ids(&hook, "incident.declared").len(), 1);
    assert_eq!(ids(&hook, "incident.resolved").len(), 1);
    assert_eq!(hook.all().len(), 2, "nothing else reached the receiver");
    assert_eq!(db.psql("SELECT kind FROM events ORDER BY at"), events);
    assert_eq!(
        db.psql("SELECT count(*) FROM outbox WHERE state <> 'delivered'"),
        outbox
    );
    assert_eq!(outbox, "0");
    assert_eq!(replicas[next].metric("scarecrow_leader").await, Some(1.0));
    for i in others {
        assert_eq!(replicas[i].stop().await, Some(0));
    }
}
