//! The incident gauges as a scrape sees them: current at the moment of the
//! scrape, not as of the last recount of the store.

use super::harness::{Daemon, Target, check, eventually, value, webhook};
use crate::common::Receiver;

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
