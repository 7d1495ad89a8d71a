//! After a restart with an incident open: the gauge says so, and the
//! Alertmanager hears about the alert at once.

use std::time::Duration;

use super::harness::{Alertmanager, Daemon, Target, check, eventually, webhook};
use crate::common::Receiver;

/// Declared, stopped, started again with the check still failing: nothing
/// is declared anew, and `scarecrow_incident_open` reads 1 from the first
/// scrape on.
#[tokio::test(flavor = "multi_thread")]
async fn an_incident_open_across_a_restart_shows_in_the_gauge() {
    let hook = Receiver::start().await;
    let target = Target::down();
    let mut d = Daemon::setup("open-gauge", &webhook(&hook.url), 1, &target.url);
    d.start();
    eventually("the declaration", 60, async || {
        hook.delivered("incident.declared").pop()
    })
    .await;
    assert_eq!(d.stop().await, Some(0));

    d.start();
    let series = format!(r#"scarecrow_incident_open{{check="{}"}}"#, check(0));
    let open = eventually("the check's series", 60, async || d.metric(&series).await).await;
    assert_eq!(open, 1.0, "the incident is still open");
    assert_eq!(hook.delivered("incident.declared").len(), 1);
    assert_eq!(d.stop().await, Some(0));
}

/// Alertmanager forgets an alert that is not re-sent: after a restart the
/// open incident's alert is posted again at once, not a minute later.
#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_hears_of_the_open_alert_right_after_a_restart() {
    let am = Alertmanager::start().await;
    let target = Target::down();
    let sink = format!(
        "[[sinks]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"{}\"\n",
        am.url
    );
    let mut d = Daemon::setup("am-restart", &sink, 1, &target.url);
    d.start();
    eventually("the first post", 60, async || am.posts().pop()).await;
    assert_eq!(d.stop().await, Some(0));
    let before = am.posts().len();

    let started = tokio::time::Instant::now();
    d.start();
    // Within a few seconds of the start, well before the minute between
    // re-sends; the margin is for a loaded machine.
    let post = eventually("a post after the restart", 20, async || {
        am.posts().into_iter().nth(before)
    })
    .await;
    assert!(post.at - started < Duration::from_secs(20));
    let alert = &post.alerts[0];
    assert_eq!(alert["labels"]["check"], check(0).as_str());
    let ends: chrono::DateTime<chrono::Utc> = alert["endsAt"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("endsAt");
    assert!(ends > chrono::Utc::now(), "still firing: {alert}");
    assert_eq!(d.stop().await, Some(0));
}
