//! What a check costs the Prometheus that scrapes it, as `/metrics` of
//! `scarecrow run` shows: a one-step check has at most 15 series by default,
//! and each `[metrics]` opt-in of `config.toml` brings its series back.

mod common;

use std::time::Duration;

use common::{Reaped, Site, free_port, run_daemon, scratch};

/// Starts a daemon with one one-step check of the demo site's weather page,
/// every second, and `section` as its `[metrics]`; answers the check's sample
/// lines once it has failed a run.
async fn series_after_a_failure(site: &Site, name: &str, section: &str) -> Vec<String> {
    let port = free_port();
    let tmp = scratch(name);
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nshutdown_grace = \"1s\"\n{section}"),
    )
    .expect("config");
    std::fs::write(
        dir.join("checks/weather.toml"),
        format!(
            "every = \"1s\"\n[[step]]\nname = \"open the weather page\"\nurl = \"{}/weather\"\n[step.expect]\nstatus = 200\n",
            site.url
        ),
    )
    .expect("check");
    let _daemon = Reaped(
        run_daemon(&dir.join("config.toml"))
            .spawn()
            .expect("start daemon"),
    );
    let client = reqwest::Client::new();
    let failed = r#"scarecrow_check_runs_total{check="weather",result="failure"} 1"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = match client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.lines().any(|l| l == failed) {
            return text
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains(r#"check="weather""#))
                .map(str::to_owned)
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed run of weather:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn family<'a>(series: &'a [String], name: &str) -> Vec<&'a str> {
    series
        .iter()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_step_check_is_lean_by_default_and_each_opt_in_brings_its_series() {
    let site = Site::start().await;
    // Every run fails with a 500, so a failure reason has a series too.
    site.switch("break", "weather", "?mode=error").await;

    let lean = series_after_a_failure(&site, "lean-metrics", "").await;
    assert!(
        lean.len() <= 15,
        "{} series:\n{}",
        lean.len(),
        lean.join("\n")
    );
    assert_eq!(
        family(&lean, "scarecrow_check_failures_total"),
        [r#"scarecrow_check_failures_total{check="weather",reason="assertion"} 1"#],
        "only the reason that happened"
    );
    assert_eq!(
        family(&lean, "scarecrow_check_last_duration_seconds").len(),
        1
    );
    for opt_in in [
        "scarecrow_check_duration_seconds_bucket",
        "scarecrow_check_phase_seconds",
        "scarecrow_step_duration_seconds",
    ] {
        assert_eq!(family(&lean, opt_in), Vec::<&str>::new(), "{opt_in}");
    }

    let full = series_after_a_failure(
        &site,
        "full-metrics",
        "[metrics]\nduration_buckets = [\"50ms\", \"250ms\", \"1s\"]\nphases = true\nper_step = true\n",
    )
    .await;
    assert_eq!(
        family(&full, "scarecrow_check_duration_seconds_bucket").len(),
        3 + 1,
        "three bounds and +Inf:\n{}",
        full.join("\n")
    );
    assert!(
        full.iter().any(|l| l
            .starts_with(r#"scarecrow_check_duration_seconds_bucket{check="weather",le="0.05"}"#)),
        "{}",
        full.join("\n")
    );
    assert_eq!(
        family(&full, "scarecrow_check_duration_seconds_count").len(),
        1
    );
    assert_eq!(family(&full, "scarecrow_check_phase_seconds").len(), 4);
    let steps = family(&full, "scarecrow_step_duration_seconds");
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(
        steps[0].starts_with(
            r#"scarecrow_step_duration_seconds{check="weather",step="open the weather page"} "#
        ),
        "{steps:?}"
    );
    assert_eq!(
        family(&full, "scarecrow_check_last_duration_seconds"),
        Vec::<&str>::new(),
        "the histogram replaces the gauge"
    );
}
