//! Filters and orderings that would pass if ignored with the shipped checks
//! (all critical, critical first coinciding with alphabetical order): `once
//! --label` and `--critical`, the API's `?runs=` and `?open=`, and the
//! order of the status page and of `GET /checks`, on checks of their own.

mod common;
mod running;

use std::path::Path;

use common::{Reaped, Site, free_port, run_daemon, scarecrow_in, scratch, stdout};
use running::eventually;

/// Three checks against the demo site, every second: `apples` (ordinary,
/// team fruit), `yams` (critical, team roots) and `zucchini-order`
/// (critical, team fruit). Alphabetically the ordinary one comes first.
fn setup(name: &str, site: &str, port: u16) -> tempfile::TempDir {
    let tmp = scratch(name);
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
shutdown_grace = "2s"

[incidents]
failure_threshold = 1
success_threshold = 1

[store]
path = "data/scarecrow.db"

[[sinks]]
name = "log"
type = "log"
"#
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let weather = |critical: bool, team: &str| {
        format!(
            "critical = {critical}\nlabels = {{ team = \"{team}\" }}\nevery = \"1s\"\n[[step]]\nurl = \"{site}/weather\"\n"
        )
    };
    std::fs::write(dir.join("checks/apples.toml"), weather(false, "fruit")).expect("check");
    std::fs::write(dir.join("checks/yams.toml"), weather(true, "roots")).expect("check");
    let zucchini = format!(
        r#"critical = true
labels = {{ team = "fruit" }}
every = "1s"

[[step]]
url = "{site}/diesel/order"

[[step.expect.css]]
selector = "form#order input[name=liters]"
exists = true
"#
    );
    std::fs::write(dir.join("checks/zucchini-order.toml"), zucchini).expect("check");
    tmp
}

/// The checks `once` ran, by the names on its result lines.
async fn once_ran(dir: &Path, site: &str, flags: &[&str]) -> Vec<String> {
    let mut args = vec!["once", "--config", "config.toml"];
    args.extend_from_slice(flags);
    let out = scarecrow_in(dir, site, &args).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{flags:?}: {text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("PASS  "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn once_runs_only_the_labelled_and_the_critical_checks() {
    let site = Site::start().await;
    let tmp = setup("filters-once", &site.url, free_port());
    let dir = tmp.path();
    assert_eq!(
        once_ran(dir, &site.url, &[]).await,
        ["apples", "yams", "zucchini-order"]
    );
    assert_eq!(
        once_ran(dir, &site.url, &["--label", "team=fruit"]).await,
        ["apples", "zucchini-order"]
    );
    assert_eq!(
        once_ran(dir, &site.url, &["--critical"]).await,
        ["yams", "zucchini-order"]
    );
    assert_eq!(
        once_ran(dir, &site.url, &["--critical", "--label", "team=fruit"]).await,
        ["zucchini-order"]
    );
}

async fn get(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url).await.expect("GET");
    assert_eq!(resp.status(), 200, "{url}");
    serde_json::from_str(&resp.text().await.expect("body")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_and_the_status_page_order_and_filter() {
    let site = Site::start().await;
    let port = free_port();
    let tmp = setup("filters-api", &site.url, port);
    let _daemon = Reaped(
        run_daemon(&tmp.path().join("config.toml"))
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start daemon"),
    );
    let api = format!("http://127.0.0.1:{port}/api/v1");

    // `GET /checks` is by name, as documented, not critical first.
    let names = eventually("every check has run", 30, async || {
        let body = reqwest::get(format!("{api}/checks")).await.ok()?;
        let body: serde_json::Value = serde_json::from_str(&body.text().await.ok()?).ok()?;
        let checks = body["checks"].as_array()?;
        checks.iter().all(|c| c["status"] == "up").then(|| {
            checks
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        })
    })
    .await;
    assert_eq!(names, ["apples", "yams", "zucchini-order"]);

    // The status page puts the critical features first.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("GET /")
        .text()
        .await
        .expect("page");
    let at = |name: &str| {
        page.find(&format!(r#"data-check="{name}""#))
            .unwrap_or_else(|| panic!("{name} is not on the page: {page}"))
    };
    assert!(at("yams") < at("zucchini-order"), "{page}");
    assert!(at("zucchini-order") < at("apples"), "{page}");

    // `?runs=` limits the recent runs once there are more than it asks for.
    let runs = |body: &serde_json::Value| body["recent_runs"].as_array().map_or(0, Vec::len);
    eventually("three stored runs of yams", 30, async || {
        (runs(&get(&format!("{api}/checks/yams")).await) >= 3).then_some(())
    })
    .await;
    assert_eq!(runs(&get(&format!("{api}/checks/yams?runs=2")).await), 2);
    assert_eq!(runs(&get(&format!("{api}/checks/yams?runs=1")).await), 1);

    // One incident resolved, then one open: `?open=true` lists the open one.
    let incidents = async |query: &str| {
        get(&format!("{api}/incidents{query}")).await["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    site.switch("break", "diesel", "").await;
    eventually("an incident", 30, async || {
        (incidents("").await.len() == 1).then_some(())
    })
    .await;
    site.switch("fix", "diesel", "").await;
    eventually("its resolution", 30, async || {
        incidents("?open=true").await.is_empty().then_some(())
    })
    .await;
    site.switch("break", "diesel", "").await;
    let all = eventually("a second incident", 30, async || {
        let all = incidents("").await;
        (all.len() == 2).then_some(all)
    })
    .await;
    let open = incidents("?open=true").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["open"], true, "{open:?}");
    assert_eq!(open[0]["id"], all[0]["id"], "the newest is the open one");
    assert_eq!(all[1]["open"], false, "{all:?}");
    assert_eq!(incidents("?open=false").await.len(), 2);
}
