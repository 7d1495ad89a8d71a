//! Three replicas in two locations on one PostgreSQL store, two in `fra`
//! and one in `ams`, each location probing a site of its own: every
//! location runs every check and its replicas share them; a check declares
//! once its quorum of locations fail, and not before; a location gone quiet
//! is stale and counts neither way (tests/postgres/stale.rs); the webhook's
//! evidence, the status page and the API say which location fails, passes
//! or went quiet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::postgres::Database;
use crate::common::{Receiver, Site};

use super::daemon::{Daemon, eventually};

pub(super) const INTERVAL_SECS: u64 = 2;
/// The checks' default `failure_threshold`.
pub(super) const FAILURE_THRESHOLD: u64 = 2;
pub(super) const CHECKS: usize = 3;
/// The replicas' indices: two in `fra`, then the one in `ams`.
pub(super) const FRA: [usize; 2] = [0, 1];
pub(super) const AMS: usize = 2;

/// The checks' schedule in most tests: a failing location is failing
/// after two runs, stale ten seconds after its last (two intervals, the
/// timeout and five seconds for the store's lag).
pub(super) const EVERY_2S: &str = "every = \"2s\"\ntimeout = \"1s\"";

/// Where a quorum is written: in each check file, or as the default in
/// `[incidents]` of `config.toml`.
#[derive(Clone, Copy)]
pub(super) enum Quorum {
    InChecks(&'static str),
    InConfig(&'static str),
}

/// A replica with [`CHECKS`] critical checks of `site` on `schedule`
/// (e.g. [`EVERY_2S`]), declaring to `hook`. Every `config.toml` says
/// `location = "fra"`, as one file shared by every location would: the
/// `ams` replica is named by `SCARECROW_LOCATION`, which wins.
pub(super) fn replica(
    name: &str,
    db: &Database,
    (site, hook): (&str, &str),
    quorum: Quorum,
    schedule: &str,
) -> Daemon {
    let d = Daemon::on(name, db, site, hook);
    let path = d.dir.path().join("config.toml");
    let config = std::fs::read_to_string(&path).expect("config");
    let incidents = match quorum {
        Quorum::InConfig(q) => format!("\n[incidents]\nquorum = {q}\n"),
        Quorum::InChecks(_) => String::new(),
    };
    std::fs::write(&path, format!("location = \"fra\"\n{config}{incidents}")).expect("config");
    let in_check = match quorum {
        Quorum::InChecks(q) => format!("quorum = {q}\n"),
        Quorum::InConfig(_) => String::new(),
    };
    let dir = d.dir.path().join("checks");
    std::fs::remove_dir_all(&dir).expect("rm checks");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for n in 0..CHECKS {
        let check = format!(
            "critical = true\n{schedule}\n{in_check}\n\
             [[step]]\nname = \"home\"\nurl = \"{site}/\"\n"
        );
        std::fs::write(dir.join(format!("feature-{n}.toml")), check).expect("check");
    }
    d
}

/// The three replicas, each location's site, the receiver and the store.
/// Fields drop in order: the daemons first.
pub(super) struct TwoLocations {
    pub(super) replicas: Vec<Daemon>,
    pub(super) fra: Site,
    pub(super) ams: Site,
    pub(super) hook: Receiver,
    pub(super) db: Database,
    _shared: tokio::sync::RwLockReadGuard<'static, ()>,
}

/// Started, seeing each other, with every check passing in both locations
/// and a leader in `fra` (started first, so that stopping `ams` leaves the
/// lease where it is). `None` when PostgreSQL is not installed.
pub(super) async fn two_locations(
    name: &str,
    quorum: Quorum,
    schedule: &str,
) -> Option<TwoLocations> {
    let shared = super::SHARED.read().await;
    let db = super::database(name)?;
    let (fra, ams) = (Site::start().await, Site::start().await);
    let hook = Receiver::start().await;
    let mut replicas: Vec<Daemon> = [&fra, &fra, &ams]
        .iter()
        .enumerate()
        .map(|(i, site)| {
            let name = format!("{name}-{i}");
            replica(&name, &db, (&site.url, &hook.url), quorum, schedule)
        })
        .collect();
    for i in FRA {
        replicas[i].start();
    }
    for i in FRA {
        sees_members(&replicas[i], "fra", 2).await;
    }
    let lead = leader(&replicas[..2]).await;
    replicas[AMS].start_with(&[("SCARECROW_LOCATION", "ams")]);
    for r in &replicas {
        sees_members(r, "fra", 2).await;
        sees_members(r, "ams", 1).await;
    }
    assert_eq!(leader(&replicas).await, lead, "the lease stays in fra");
    for n in 0..CHECKS {
        for location in ["fra", "ams"] {
            shows(&replicas[0], n, location, "passing").await;
        }
    }
    Some(TwoLocations {
        replicas,
        fra,
        ams,
        hook,
        db,
        _shared: shared,
    })
}

/// Waits until `replica` sees `n` members alive at `location`.
pub(super) async fn sees_members(replica: &Daemon, location: &str, n: u32) {
    let series = format!("scarecrow_members{{location=\"{location}\"}}");
    eventually(&format!("{n} members in {location}"), 60, async || {
        (replica.metric(&series).await? == f64::from(n)).then_some(())
    })
    .await;
}

/// The replica that leads, once exactly one of `replicas` says so.
pub(super) async fn leader(replicas: &[Daemon]) -> usize {
    eventually("one leader", 60, async || {
        let mut leading = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.metric("scarecrow_leader").await? == 1.0 {
                leading.push(i);
            }
        }
        (leading.len() == 1).then(|| leading[0])
    })
    .await
}

/// The status page of `replica`.
pub(super) async fn page(replica: &Daemon) -> Option<String> {
    reqwest::get(format!("http://127.0.0.1:{}/", replica.port))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The state the status page of `replica` shows for check `n` at
/// `location`: `failing`, `passing` or `stale`.
pub(super) async fn page_state(replica: &Daemon, n: usize, location: &str) -> Option<String> {
    state_on(&page(replica).await?, n, location)
}

/// The state `page` shows for check `n` at `location`.
pub(super) fn state_on(page: &str, n: usize, location: &str) -> Option<String> {
    let card = page.split_once(&format!("id=\"check-feature-{n}\""))?.1;
    let card = card.split("<li class=\"card ").next()?;
    let list = card
        .split_once("<ul class=\"locations\">")?
        .1
        .split("</ul>")
        .next()?;
    let state = list
        .split_once(&format!("<li data-location=\"{location}\" data-state=\""))?
        .1;
    Some(state.split('"').next()?.to_owned())
}

/// Waits until the status page of `replica` shows check `n` in `state` at
/// `location`.
pub(super) async fn shows(replica: &Daemon, n: usize, location: &str, state: &str) {
    eventually(
        &format!("feature-{n} {state} in {location} on the status page"),
        60,
        async || (page_state(replica, n, location).await? == state).then_some(()),
    )
    .await;
}

/// `GET /api/v1/checks/feature-{n}` of `replica`.
pub(super) async fn api_check(replica: &Daemon, n: usize) -> Value {
    let text = reqwest::get(format!(
        "http://127.0.0.1:{}/api/v1/checks/feature-{n}",
        replica.port
    ))
    .await
    .expect("the API")
    .text()
    .await
    .expect("a body");
    serde_json::from_str(&text).expect("JSON")
}

/// Requests of one event type the receiver got, whatever it answered, by
/// check.
pub(super) fn per_check(hook: &Receiver, kind: &str) -> BTreeMap<String, Vec<Value>> {
    let mut got: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in hook.all().into_iter().filter(|r| r.body["type"] == kind) {
        let check = r.body["data"]["check"].as_str().expect("data.check");
        got.entry(check.to_owned()).or_default().push(r.body);
    }
    got
}

/// Waits until every check has `kind`, then a little longer, and asserts
/// once each; returns the bodies, by check.
pub(super) async fn once_each(hook: &Receiver, kind: &str) -> BTreeMap<String, Value> {
    eventually(&format!("{kind} of every check"), 60, async || {
        (per_check(hook, kind).len() == CHECKS).then_some(())
    })
    .await;
    // Time for a repeat to show, had there been one.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    let got = per_check(hook, kind);
    assert_eq!(got.len(), CHECKS, "{kind}: {got:#?}");
    got.into_iter()
        .map(|(check, mut bodies)| {
            assert_eq!(bodies.len(), 1, "one {kind} of {check}: {bodies:#?}");
            (check, bodies.remove(0))
        })
        .collect()
}

/// Each location's state in a `locations` array, checking the fields each
/// entry carries; `all_keys`: the webhook writes unknown values as `null`,
/// the API leaves them out.
pub(super) fn states(locations: &Value, all_keys: bool) -> BTreeMap<String, String> {
    let entries = locations.as_array().expect("a locations array");
    let mut states = BTreeMap::new();
    for l in entries {
        let state = l["state"].as_str().expect("state");
        for key in ["location", "state", "run_id", "at", "consecutive_failures"] {
            assert!(!l[key].is_null(), "{key} in {l}");
        }
        for key in ["reason", "step", "message"] {
            assert!(!all_keys || l.get(key).is_some(), "{key} in {l}");
            // A stale location shows its last run, passed or failed.
            match state {
                "failing" => assert!(!l[key].is_null(), "{key} of a failing location: {l}"),
                "passing" => assert!(l[key].is_null(), "no {key} of a passing one: {l}"),
                _ => {}
            }
        }
        states.insert(
            l["location"].as_str().expect("location").to_owned(),
            state.to_owned(),
        );
    }
    assert_eq!(states.len(), entries.len(), "one entry per location");
    states
}

/// `[("ams", "failing"), ("fra", "failing")]` as [`states`] returns it.
pub(super) fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(l, s)| ((*l).to_owned(), (*s).to_owned()))
        .collect()
}

/// Asserts each location's `run_id` in `locations` is a run of `check`
/// stored at that location.
pub(super) fn runs_are_the_locations(db: &Database, check: &str, locations: &Value) {
    for l in locations.as_array().expect("locations") {
        let run_id = l["run_id"].as_str().expect("run_id");
        assert_eq!(
            db.psql(&format!(
                "SELECT check_name || '@' || location FROM runs WHERE run_id = '{run_id}'"
            )),
            format!("{check}@{}", l["location"].as_str().expect("location")),
            "{l}"
        );
    }
}

/// Runs per check and location that started within [from, to].
pub(super) fn runs_between(
    db: &Database,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<(String, String), u64> {
    let ts =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    db.psql(&format!(
        "SELECT check_name, location, count(*) FROM runs \
         WHERE started_at >= '{}' AND started_at <= '{}' GROUP BY 1, 2",
        ts(from),
        ts(to)
    ))
    .lines()
    .filter_map(|l| {
        let mut cols = l.split('|');
        let (check, location, n) = (cols.next()?, cols.next()?, cols.next()?);
        Some(((check.to_owned(), location.to_owned()), n.parse().ok()?))
    })
    .collect()
}

/// How long a declaration took, against the failing runs it needs at the
/// checks' interval.
pub(super) fn took(what: &str, elapsed: Duration) {
    eprintln!(
        "{what}: {elapsed:?} (2 × interval × failure_threshold = {} s)",
        2 * INTERVAL_SECS * FAILURE_THRESHOLD
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quorum_of_two_declares_nothing_while_one_location_fails_and_once_when_both_do() {
    let Some(mut t) = two_locations(
        "quorum-two",
        Quorum::InChecks("{ min_failing = 2 }"),
        EVERY_2S,
    )
    .await
    else {
        return;
    };

    t.fra.switch("break", "site", "").await;
    // Any replica shows it, the one in the other location too.
    for n in 0..CHECKS {
        shows(&t.replicas[AMS], n, "fra", "failing").await;
    }
    let from = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(4 * INTERVAL_SECS)).await;
    let to = chrono::Utc::now();
    assert!(
        t.hook.all().is_empty(),
        "one failing location of two needed declares nothing: {:#?}",
        per_check(&t.hook, "incident.declared")
    );
    // Each location ran each check once per interval: fra's two replicas
    // shared them, ams ran them all.
    let counts = runs_between(&t.db, from, to);
    assert_eq!(counts.len(), 2 * CHECKS, "{counts:?}");
    for ((check, location), n) in &counts {
        assert!(
            (3..=5).contains(n),
            "{check} ran {n} times in {location} in 4 intervals: {counts:?}"
        );
    }
    for n in 0..CHECKS {
        assert_eq!(
            page_state(&t.replicas[FRA[1]], n, "ams").await.as_deref(),
            Some("passing")
        );
        let api = api_check(&t.replicas[AMS], n).await;
        assert_eq!(
            states(&api["locations"], false),
            expect(&[("ams", "passing"), ("fra", "failing")]),
            "{api:#}"
        );
    }

    t.ams.switch("break", "site", "").await;
    let broke = Instant::now();
    eventually("the first declaration", 60, async || {
        (!per_check(&t.hook, "incident.declared").is_empty()).then_some(())
    })
    .await;
    took(
        "quorum 2: breaking the second location's site to the first declaration",
        broke.elapsed(),
    );
    let declared = once_each(&t.hook, "incident.declared").await;
    for (check, body) in &declared {
        let evidence = &body["data"]["evidence"];
        assert_eq!(
            states(&evidence["locations"], true),
            expect(&[("ams", "failing"), ("fra", "failing")]),
            "{check}: {evidence:#}"
        );
        runs_are_the_locations(&t.db, check, &evidence["locations"]);
    }
    eprintln!(
        "data.evidence of a two-location declaration:\n{:#}",
        declared["feature-0"]["data"]["evidence"]
    );
    for n in 0..CHECKS {
        let api = api_check(&t.replicas[FRA[1]], n).await;
        assert_eq!(
            states(&api["locations"], false),
            expect(&[("ams", "failing"), ("fra", "failing")]),
            "{api:#}"
        );
    }

    t.fra.switch("fix", "site", "").await;
    t.ams.switch("fix", "site", "").await;
    once_each(&t.hook, "incident.resolved").await;
    assert_eq!(
        per_check(&t.hook, "incident.declared").len(),
        CHECKS,
        "declared once"
    );
    for r in &mut t.replicas {
        assert_eq!(r.stop().await, Some(0));
    }
}
