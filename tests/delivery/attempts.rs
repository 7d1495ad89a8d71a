//! Each delivery attempt the daemon makes is kept with its outcome, and the
//! post-mortem draft shows them: not only a count.

use super::harness::{Daemon, Target, eventually, webhook};
use crate::common::Receiver;

/// A receiver that answers 503 twice, then 200: the draft's timeline has
/// the failed attempts (collapsed, with the receiver's answer) and the
/// delivery at the third, and a follow-up names the sink.
#[tokio::test(flavor = "multi_thread")]
async fn the_postmortem_shows_each_attempt_to_a_flaky_receiver() {
    let hook = Receiver::start().await;
    hook.answer(503);
    let target = Target::down();
    let mut d = Daemon::setup("attempts", &webhook(&hook.url), 1, &target.url);
    d.start();
    eventually("two failed attempts", 60, async || {
        (hook.all().len() >= 2).then_some(())
    })
    .await;
    hook.answer(204);
    eventually("the declaration delivered", 60, async || {
        (!hook.delivered("incident.declared").is_empty()).then_some(())
    })
    .await;
    let id = hook.delivered("incident.declared")[0].body["data"]["incident"]
        .as_str()
        .expect("incident id")
        .to_owned();
    assert_eq!(d.stop().await, Some(0));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["postmortem", &id, "--config"])
        .arg(d.dir.path().join("config.toml"))
        .output()
        .expect("postmortem");
    let draft = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{draft}");
    assert!(
        draft.contains("| incident.declared to hook: attempt failed: the receiver answered 503")
            && draft.contains(" (2 times) |"),
        "{draft}"
    );
    assert!(
        draft.contains("| incident.declared to hook: delivered at attempt 3 |"),
        "{draft}"
    );
    assert!(
        draft.contains("- [ ] hook needed retries for 1 of 1 notification (up to 3 attempts; the receiver answered 503"),
        "{draft}"
    );
}
