//! `[incidents] store_down = "alone"`: with PostgreSQL stopped, a replica
//! declares from its own runs and resolves when they recover; when the
//! store comes back while the site still fails, the leader's incident of
//! the same key takes over, and only the leader resolves it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{self, Receiver, Site};

use super::daemon::{Daemon, eventually};

/// Per incident key, how many webhooks of `kind` the receiver got, any
/// answer.
fn per_key(hook: &Receiver, kind: &str) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for r in hook.all().iter().filter(|r| r.body["type"] == kind) {
        let key = r.body["data"]["key"].as_str().unwrap_or("").to_owned();
        *keys.entry(key).or_default() += 1;
    }
    keys
}

fn each(n: usize) -> BTreeMap<String, usize> {
    (0..3)
        .map(|i| (format!("scarecrow:default:feature-{i}"), n))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_store_down_a_replica_declares_alone_and_hands_over_by_key() {
    // It stops PostgreSQL: no other test may use it meanwhile.
    let _alone = super::SHARED.write().await;
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database("alone");
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut d = Daemon::on("alone", &db, &site.url, &hook.url);
    let config = d.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{text}\n[incidents]\nstore_down = \"alone\"\n"),
    )
    .expect("config");
    d.start();
    eventually("the leader", 60, async || {
        (d.metric("scarecrow_leader").await? == 1.0).then_some(())
    })
    .await;

    cluster.stop();
    eventually("scarecrow_store_up 0", 20, async || {
        (d.metric("scarecrow_store_up").await? == 0.0).then_some(())
    })
    .await;
    site.switch("break", "site", "").await;
    let broke = std::time::Instant::now();
    eventually("declared alone", 60, async || {
        (per_key(&hook, "incident.declared") == each(1)).then_some(())
    })
    .await;
    eprintln!(
        "declared alone {:.1} s after the site broke (the store down longer)",
        broke.elapsed().as_secs_f64()
    );
    site.switch("fix", "site", "").await;
    eventually("resolved alone", 30, async || {
        (per_key(&hook, "incident.resolved") == each(1)).then_some(())
    })
    .await;

    // Failing still when the store comes back.
    site.switch("break", "site", "").await;
    eventually("declared alone again", 60, async || {
        (per_key(&hook, "incident.declared") == each(2)).then_some(())
    })
    .await;
    cluster.start();
    eventually("the leader's incidents", 60, async || {
        (per_key(&hook, "incident.declared") == each(3)).then_some(())
    })
    .await;
    // The feed is read each second: the incidents declared alone are
    // handed over by then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    site.switch("fix", "site", "").await;
    eventually("resolved by the leader", 30, async || {
        (per_key(&hook, "incident.resolved") == each(2)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        per_key(&hook, "incident.resolved"),
        each(2),
        "the incidents handed over are resolved once, by the leader"
    );
    let open = db.psql("SELECT count(*) FROM incidents WHERE resolved_at IS NULL");
    assert_eq!(open, "0");
    assert_eq!(d.stop().await, Some(0));
}
