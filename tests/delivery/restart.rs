//! After a restart with an incident open: the gauge says so.

use super::harness::{Daemon, Target, check, eventually, webhook};
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
