//! Many checks declaring at once: every declaration and every resolution
//! reaches a healthy receiver, each incident's in order.

use std::collections::HashMap;

use super::harness::{Daemon, Target, eventually, webhook};
use crate::common::Receiver;

const CHECKS: usize = 200;

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_declarations_and_resolutions_arrive_in_order() {
    let hook = Receiver::start().await;
    let target = Target::down();
    let mut d = Daemon::setup("burst", &webhook(&hook.url), CHECKS, &target.url);
    d.start();
    eventually("every declaration", 180, async || {
        (hook.delivered("incident.declared").len() >= CHECKS).then_some(())
    })
    .await;
    target.up().await;
    eventually("every resolution", 180, async || {
        (hook.delivered("incident.resolved").len() >= CHECKS).then_some(())
    })
    .await;

    // In the order they arrived: each incident declared, then resolved.
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for r in hook.all() {
        let incident = r.body["data"]["incident"].as_str().unwrap_or("").to_owned();
        let kind = r.body["type"].as_str().unwrap_or("").to_owned();
        seen.entry(incident).or_default().push(kind);
    }
    assert_eq!(seen.len(), CHECKS, "one incident per check");
    for (incident, kinds) in &seen {
        assert_eq!(
            kinds,
            &["incident.declared", "incident.resolved"],
            "{incident}"
        );
    }
    assert_eq!(d.stop().await, Some(0));
}
