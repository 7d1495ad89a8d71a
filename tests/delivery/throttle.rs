//! A receiver's rate limit is not a failure: throttled events wait for
//! their slot, are counted apart, and do not grow the failure backoff.

use std::sync::atomic::Ordering;

use super::harness::{Daemon, Target, eventually, sum, webhook};
use crate::common::Receiver;

const CHECKS: usize = 4;

/// The receiver answers 429 with `Retry-After: 1` to the first requests:
/// every declaration arrives, and none counts as a failed attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_throttling_not_failure() {
    let hook = Receiver::start().await;
    hook.answer(429);
    let target = Target::down();
    let mut d = Daemon::setup("throttled", &webhook(&hook.url), CHECKS, &target.url);
    d.start();
    eventually("throttled attempts", 60, async || {
        (hook.arrived.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    hook.answer(200);
    eventually("every declaration", 60, async || {
        (hook.delivered("incident.declared").len() >= CHECKS).then_some(())
    })
    .await;
    let text = d.metrics().await.expect("a scrape");
    let sent = "scarecrow_notifications_total";
    assert_eq!(sum(&text, sent, r#"result="retry""#), 0.0, "{text}");
    assert_eq!(sum(&text, sent, r#"result="delivered""#), CHECKS as f64);
    let throttled = "scarecrow_incident_deliveries_throttled_total";
    assert!(sum(&text, throttled, r#"sink="hook""#) >= 1.0, "{text}");
    assert_eq!(d.stop().await, Some(0));
}

/// Slack takes about one message a second per webhook: several
/// declarations at once are paced to that, none sent early and refused,
/// none counted as a failure.
#[tokio::test(flavor = "multi_thread")]
async fn slack_declarations_at_once_are_paced_not_retried() {
    let slack = Receiver::start().await;
    let target = Target::down();
    let sink = "[[sinks]]\nname = \"slack\"\ntype = \"slack\"\nurl = \"${secret:SLACK_URL}\"\n";
    let mut d = Daemon::setup("slack-pace", sink, CHECKS, &target.url);
    d.env("SLACK_URL", &slack.url);
    d.start();
    eventually("every declaration", 60, async || {
        (slack.all().len() >= CHECKS).then_some(())
    })
    .await;
    let text = d.metrics().await.expect("a scrape");
    let sent = "scarecrow_notifications_total";
    assert_eq!(sum(&text, sent, r#"result="retry""#), 0.0, "{text}");
    assert_eq!(sum(&text, sent, r#"result="delivered""#), CHECKS as f64);
    let throttled = "scarecrow_incident_deliveries_throttled_total";
    assert!(sum(&text, throttled, r#"sink="slack""#) >= 1.0, "{text}");
    assert_eq!(slack.all().len(), CHECKS, "each message sent once");
    assert_eq!(d.stop().await, Some(0));
}
