//! The status page as a browser shows it: headless Chromium loads the page
//! of a running daemon, and the DOM it builds must show each feature and its
//! state. A phone-sized screenshot goes to `target/status-page.png`.
//!
//! Needs Debian's `chromium`: without it the test says SKIPPED, and fails
//! under `CI=true` (`.ci/run` installs it).

mod common;
mod running;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Site;
use running::{Daemon, eventually};

const CHROMIUM: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// Runs headless Chromium with a throw-away profile, then `extra`.
async fn browse(bin: &Path, profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let run = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium finishes within a minute")
        .expect("run chromium")
}

async fn dump_dom(bin: &Path, profile: &Path, url: &str) -> String {
    let out = browse(bin, profile, &["--dump-dom"], url).await;
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element that starts at `marker`, up to `end`.
fn element<'a>(dom: &'a str, marker: &str, end: &str) -> &'a str {
    let start = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not on the page:\n{dom}"));
    let rest = &dom[start..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_shows_features_their_state_and_open_incidents() {
    let Some(bin) = common::tools::require("chromium", &CHROMIUM, "chromium") else {
        return;
    };
    let site = Site::start().await;
    let d = Daemon::start("status-page", &site.url, "1s").await;
    let profile = d.dir.path().join("chromium-profile");
    let page = format!("{}/", d.url);

    // All well: both features up, critical first, no incidents.
    eventually("both checks up", 30, async || {
        let (_, body) = d.get("/checks").await;
        let all_up = body["checks"]
            .as_array()?
            .iter()
            .all(|c| c["status"] == "up");
        all_up.then_some(())
    })
    .await;
    let dom = dump_dom(&bin, &profile, &page).await;
    assert!(dom.contains("All features are working"), "{dom}");
    assert!(
        !dom.contains(r#"id="incidents""#),
        "no open incidents: {dom}"
    );
    let diesel = dom
        .find(r#"data-check="diesel-order""#)
        .expect("diesel-order shown");
    let weather = dom.find(r#"data-check="weather""#).expect("weather shown");
    assert!(diesel < weather, "critical features first");
    let weather = element(&dom, r#"data-check="weather""#, "</li>");
    assert!(weather.contains(r#"data-state="up""#), "{weather}");
    assert!(weather.contains("Up since"), "{weather}");

    // The order form breaks: down with its failing step, an incident on top.
    site.switch("break", "diesel", "").await;
    eventually("an open incident", 30, async || {
        let (_, body) = d.get("/incidents?open=true").await;
        body["incidents"].as_array()?.first().map(|_| ())
    })
    .await;
    // Some more runs, so the sparkline shows the change.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dom = dump_dom(&bin, &profile, &page).await;
    assert!(dom.contains("1 critical feature is down"), "{dom}");
    let incidents = dom.find(r#"id="incidents""#).expect("open incidents shown");
    let critical = dom.find(r#"id="critical""#).expect("critical section");
    assert!(incidents < critical, "open incidents on top");
    let open = element(&dom, r#"class="card incident down""#, "</li>");
    assert!(open.contains(r#"data-check="diesel-order""#), "{open}");
    // Who was called in (the owner's operations, the global others) and
    // the runbook, a link.
    assert!(
        open.contains("<b>Coordinator:</b> @incident-coordinator")
            && open.contains("<b>Operations:</b> #shop-ops")
            && open.contains("<b>Communications:</b> @comms-duty"),
        "the roles called in: {open}"
    );
    assert!(
        open.contains(r#"<a href="https://wiki.example.org/runbooks/diesel-order""#),
        "the runbook: {open}"
    );
    let card = element(&dom, r#"id="check-diesel-order""#, "</li>");
    assert!(card.contains(r#"data-state="down""#), "{card}");
    assert!(card.contains(">Down<"), "{card}");
    assert!(card.contains("Down since"), "{card}");
    assert!(
        card.contains("open the order form"),
        "the failing step: {card}"
    );
    assert!(card.contains("assertion"), "the reason: {card}");
    assert!(card.contains("<svg"), "a sparkline: {card}");
    assert!(
        card.contains(r#"class="bad""#),
        "failed runs marked: {card}"
    );
    let weather = element(&dom, r#"id="check-weather""#, "</li>");
    assert!(weather.contains(r#"data-state="up""#), "{weather}");
    assert!(dom.contains(r#"id="history""#));

    // On a phone.
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    let _ = std::fs::remove_file(&shot);
    std::fs::create_dir_all(shot.parent().expect("a directory")).expect("mkdir target");
    let out = browse(
        &bin,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=390,844",
            "--force-device-scale-factor=2",
        ],
        &page,
    )
    .await;
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("status page screenshot: {}", shot.display());
}
