//! The outbox and 90-day gauges as a scrape sees them: current at the
//! moment of the scrape, not as of the delivery worker's last wake-up or
//! the last recount of the store.

use std::time::Duration;

use super::harness::{Daemon, Target, check, eventually, value, webhook};
use crate::common::Receiver;

/// A receiver that keeps failing: between two retries, the age of the
/// oldest pending notification grows from one scrape to the next.
#[tokio::test(flavor = "multi_thread")]
async fn the_outbox_age_grows_between_retries() {
    let hook = Receiver::start().await;
    hook.answer(503);
    let target = Target::down();
    let mut d = Daemon::setup("outbox-age", &webhook(&hook.url), 1, &target.url);
    d.start();
    // The second attempt comes about 5 s after the first, the third about
    // 10 s after that: the two scrapes fall between them.
    eventually("two failed attempts", 60, async || {
        (hook.all().len() >= 2).then_some(())
    })
    .await;
    let attempts = hook.all().len();
    let first = eventually("a scrape", 10, async || {
        d.metric("scarecrow_outbox_oldest_age_seconds").await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = eventually("a scrape", 10, async || {
        d.metric("scarecrow_outbox_oldest_age_seconds").await
    })
    .await;
    assert_eq!(hook.all().len(), attempts, "no attempt between the scrapes");
    assert!(
        second >= first + 2.0,
        "the age went from {first} to {second} in 2.5 s"
    );
    assert_eq!(d.stop().await, Some(0));
}

/// `scarecrow_incidents_90d` counts a declaration from the next scrape on,
/// not from the next recount of the store minutes later.
#[tokio::test(flavor = "multi_thread")]
async fn the_90_day_count_includes_a_declaration_at_the_next_scrape() {
    let hook = Receiver::start().await;
    let target = Target::down();
    let mut d = Daemon::setup("count-90d", &webhook(&hook.url), 1, &target.url);
    let open = format!(r#"scarecrow_incident_open{{check="{}"}}"#, check(0));
    let counted = format!(r#"scarecrow_incidents_90d{{check="{}"}}"#, check(0));
    d.start();
    eventually("the declaration", 60, async || {
        d.metric(&open).await.filter(|v| *v == 1.0)
    })
    .await;
    let text = d.metrics().await.expect("a scrape");
    assert_eq!(value(&text, &counted), Some(1.0), "{text}");
    assert_eq!(d.stop().await, Some(0));
}
