//! The `Metrics` API through what `render` shows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::TimeZone as _;

use super::*;
use crate::check::{HttpStep, Schedule, StepDetail, StepResult};

fn check(name: &str) -> Check {
    Check {
        name: name.to_owned(),
        description: None,
        critical: true,
        owner: Some("web".to_owned()),
        runbook: None,
        labels: BTreeMap::from([("site".to_owned(), "members".to_owned())]),
        schedule: Schedule::Every(Duration::from_secs(60)),
        timeout: Duration::from_secs(10),
        steps: Vec::new(),
        incidents: Default::default(),
        connection: Default::default(),
        public_cookies: Vec::new(),
        depends_on: Vec::new(),
        locations: Vec::new(),
        source: PathBuf::from(format!("checks/{name}.toml")),
    }
}

fn step(phases: Phases) -> StepResult {
    StepResult {
        name: "home".to_owned(),
        url: "http://127.0.0.1/".to_owned(),
        detail: StepDetail::Http(HttpStep {
            method: "GET".to_owned(),
            status: Some(200),
            phases,
            ..HttpStep::default()
        }),
        duration: Duration::from_millis(100),
        attempts: 1,
        failures: Vec::new(),
        failure_details: Vec::new(),
        captures: Default::default(),
        excerpt: None,
    }
}

fn run(check: &str, outcome: Outcome, steps: Vec<StepResult>) -> Redacted<RunResult> {
    Redacted::vouched(RunResult {
        check: check.to_owned(),
        started_at: chrono::Utc
            .timestamp_opt(1_700_000_000, 250_000_000)
            .unwrap(),
        duration: Duration::from_millis(300),
        outcome,
        steps,
    })
}

fn timeout() -> Outcome {
    Outcome::Failure {
        reason: Reason::Timeout,
        step: Some("home".to_owned()),
        message: "deadline of 10s passed".to_owned(),
    }
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in:\n{text}"
        );
    }
}

/// Every opt-in of `[metrics]`: the histogram with the bounds it used to
/// have by default, phases and steps.
fn everything() -> Metrics {
    Metrics::with_settings(&MetricsSettings {
        duration_buckets: Some(
            [10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]
                .map(Duration::from_millis)
                .to_vec(),
        ),
        phases: true,
        per_step: true,
        browser: true,
    })
}

fn series_of<'a>(text: &'a str, check: &str) -> Vec<&'a str> {
    let needle = format!("check=\"{check}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .collect()
}

#[test]
fn a_new_registry_has_build_info_and_no_checks() {
    let text = Metrics::new().render();
    assert_lines(
        &text,
        &[
            &format!(
                "scarecrow_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "scarecrow_checks_loaded 0",
            "scarecrow_scheduler_lateness_seconds_count 0",
        ],
    );
    assert!(!text.contains("check=\""), "{text}");
}

#[test]
fn a_loaded_check_has_its_default_series_at_zero() {
    let m = Metrics::new();
    m.add_check(&check("weather"));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_up{check=\"weather\"} 0",
            "scarecrow_check_runs_total{check=\"weather\",result=\"success\"} 0",
            "scarecrow_check_runs_total{check=\"weather\",result=\"failure\"} 0",
            "scarecrow_check_last_duration_seconds{check=\"weather\"} 0",
            "scarecrow_check_last_run_timestamp_seconds{check=\"weather\"} 0",
            "scarecrow_check_last_success_timestamp_seconds{check=\"weather\"} 0",
            "scarecrow_check_skipped_runs_total{check=\"weather\"} 0",
            "scarecrow_incident_open{check=\"weather\"} 0",
            "scarecrow_incidents_declared_total{check=\"weather\"} 0",
            "scarecrow_maintenance_active{check=\"weather\"} 0",
            "scarecrow_incidents_90d{check=\"weather\"} 0",
            "scarecrow_check_info{check=\"weather\",critical=\"true\",owner=\"web\",label_site=\"members\"} 1",
            "scarecrow_checks_loaded 1",
        ],
    );
    // up 1, runs 2, timestamps 2, skipped 1, info 1, incident open 1,
    // declared 1, maintenance 1, incidents in 90 days 1, last duration 1.
    assert_eq!(series_of(&text, "weather").len(), 12, "{text}");
    for family in [
        "scarecrow_check_failures_total",
        "scarecrow_check_duration_seconds",
        "scarecrow_check_phase_seconds",
    ] {
        assert!(!text.contains(family), "{family} is opt-in:\n{text}");
    }
}

#[test]
fn every_opt_in_brings_its_series() {
    let m = everything();
    m.add_check(&check("weather"));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"0.01\"} 0",
            "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"+Inf\"} 0",
            "scarecrow_check_phase_seconds{check=\"weather\",phase=\"ttfb\"} 0",
        ],
    );
    // The 12 by default less the last duration, and the histogram's 10
    // buckets + `+Inf` + sum + count, and 4 phases (the check has no step).
    assert_eq!(series_of(&text, "weather").len(), 11 + 13 + 4, "{text}");
    assert!(
        !text.contains("scarecrow_check_last_duration_seconds"),
        "{text}"
    );
}

#[test]
fn a_failing_run_is_counted_by_reason() {
    let m = everything();
    m.add_check(&check("weather"));
    let phases = Phases {
        dns: ms(2),
        connect: ms(5),
        ttfb: None,
        transfer: None,
    };
    m.observe_run(&run("weather", timeout(), vec![step(phases)]));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_failures_total{check=\"weather\",reason=\"timeout\"} 1",
            "scarecrow_check_runs_total{check=\"weather\",result=\"failure\"} 1",
            "scarecrow_check_runs_total{check=\"weather\",result=\"success\"} 0",
            "scarecrow_check_up{check=\"weather\"} 0",
            "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"0.25\"} 0",
            "scarecrow_check_duration_seconds_bucket{check=\"weather\",le=\"0.5\"} 1",
            "scarecrow_check_duration_seconds_sum{check=\"weather\"} 0.3",
            "scarecrow_check_duration_seconds_count{check=\"weather\"} 1",
            "scarecrow_check_phase_seconds{check=\"weather\",phase=\"dns\"} 0.002",
            "scarecrow_check_phase_seconds{check=\"weather\",phase=\"connect\"} 0.005",
            "scarecrow_check_phase_seconds{check=\"weather\",phase=\"ttfb\"} 0",
            "scarecrow_check_last_run_timestamp_seconds{check=\"weather\"} 1700000000.25",
            "scarecrow_check_last_success_timestamp_seconds{check=\"weather\"} 0",
        ],
    );
    // A reason shows from its first failure on.
    assert!(!text.contains("reason=\"dns\""), "{text}");
}

#[test]
fn by_default_the_last_duration_is_a_gauge() {
    let m = Metrics::new();
    m.add_check(&check("weather"));
    m.observe_run(&run(
        "weather",
        Outcome::Success,
        vec![step(Phases::default())],
    ));
    assert_lines(
        &m.render(),
        &["scarecrow_check_last_duration_seconds{check=\"weather\"} 0.3"],
    );
}

#[test]
fn a_success_sets_up_and_its_phases_are_summed_over_steps() {
    let m = everything();
    m.add_check(&check("login"));
    let first = Phases {
        dns: ms(3),
        connect: ms(7),
        ttfb: ms(40),
        transfer: ms(1),
    };
    m.observe_run(&run("login", Outcome::Success, vec![step(first)]));
    // The second run reuses the connection: no DNS, no connect.
    let reused = Phases {
        dns: None,
        connect: None,
        ttfb: ms(20),
        transfer: ms(2),
    };
    m.observe_run(&run(
        "login",
        Outcome::Success,
        vec![step(reused), step(reused)],
    ));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_up{check=\"login\"} 1",
            "scarecrow_check_runs_total{check=\"login\",result=\"success\"} 2",
            "scarecrow_check_last_success_timestamp_seconds{check=\"login\"} 1700000000.25",
            "scarecrow_check_phase_seconds{check=\"login\",phase=\"dns\"} 0",
            "scarecrow_check_phase_seconds{check=\"login\",phase=\"connect\"} 0",
            "scarecrow_check_phase_seconds{check=\"login\",phase=\"ttfb\"} 0.04",
            "scarecrow_check_phase_seconds{check=\"login\",phase=\"transfer\"} 0.004",
        ],
    );
    m.observe_run(&run("login", timeout(), Vec::new()));
    assert_lines(&m.render(), &["scarecrow_check_up{check=\"login\"} 0"]);
}

#[test]
fn a_removed_check_leaves_no_series_and_later_runs_are_not_recorded() {
    let m = Metrics::new();
    m.add_check(&check("weather"));
    m.add_check(&check("diesel"));
    m.observe_run(&run("weather", timeout(), Vec::new()));
    m.remove_check("weather");
    // A run that was in flight during the reload ends afterwards.
    m.observe_run(&run("weather", timeout(), Vec::new()));
    m.skipped_run("weather");
    let text = m.render();
    assert_eq!(series_of(&text, "weather"), Vec::<&str>::new());
    assert_eq!(series_of(&text, "diesel").len(), 12);
    assert_lines(&text, &["scarecrow_checks_loaded 1"]);

    // Loaded again, it starts from zero.
    m.add_check(&check("weather"));
    let text = m.render();
    assert_lines(
        &text,
        &["scarecrow_check_runs_total{check=\"weather\",result=\"failure\"} 0"],
    );
    assert!(!text.contains("reason=\"timeout\""), "{text}");
}

#[test]
fn a_changed_check_keeps_its_counters_and_gets_new_info() {
    let m = Metrics::new();
    m.add_check(&check("weather"));
    m.observe_run(&run("weather", timeout(), Vec::new()));
    let mut changed = check("weather");
    changed.critical = false;
    changed.owner = None;
    changed.labels = BTreeMap::from([("team-name".to_owned(), "a \"b\"".to_owned())]);
    m.add_check(&changed);
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_failures_total{check=\"weather\",reason=\"timeout\"} 1",
            r#"scarecrow_check_info{check="weather",critical="false",label_team_name="a \"b\""} 1"#,
            "scarecrow_checks_loaded 1",
        ],
    );
    assert_eq!(text.matches("scarecrow_check_info{").count(), 1);
}

#[test]
fn skipped_runs_and_lateness_are_counted() {
    let m = Metrics::new();
    m.add_check(&check("weather"));
    m.skipped_run("weather");
    m.skipped_run("unknown");
    m.observe_lateness(Duration::from_micros(300));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_check_skipped_runs_total{check=\"weather\"} 1",
            "scarecrow_scheduler_lateness_seconds_bucket{le=\"0.0001\"} 0",
            "scarecrow_scheduler_lateness_seconds_bucket{le=\"0.0005\"} 1",
            "scarecrow_scheduler_lateness_seconds_count 1",
        ],
    );
    assert!(!text.contains("unknown"), "{text}");
}

#[test]
fn certificate_expiry_is_a_series_per_host_and_goes_with_the_check() {
    let m = Metrics::new();
    m.add_check(&check("shop"));
    assert!(!m.render().contains("scarecrow_tls_certificate"));
    let with = |host: &str, cert_expires_at| StepResult {
        detail: StepDetail::Http(HttpStep {
            host: Some(host.to_owned()),
            cert_expires_at,
            ..HttpStep::default()
        }),
        ..step(Phases::default())
    };
    let https = |host: &str, at: i64| with(host, chrono::Utc.timestamp_opt(at, 0).single());
    let plain = with("plain.example.org", None);
    let steps = vec![
        https("shop.example.org", 1_800_000_000),
        plain,
        https("pay.example.org", 1_790_000_000),
    ];
    m.observe_run(&run("shop", Outcome::Success, steps));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "# TYPE scarecrow_tls_certificate_expiry_timestamp_seconds gauge",
            "scarecrow_tls_certificate_expiry_timestamp_seconds{check=\"shop\",host=\"pay.example.org\"} 1790000000",
            "scarecrow_tls_certificate_expiry_timestamp_seconds{check=\"shop\",host=\"shop.example.org\"} 1800000000",
        ],
    );
    assert!(!text.contains("plain.example.org"), "{text}");
    m.remove_check("shop");
    assert!(!m.render().contains("scarecrow_tls_certificate"));
}

#[test]
fn each_step_has_a_duration_gauge_from_load_to_removal_when_asked() {
    let load = |steps: &[&str]| {
        let text: String = steps
            .iter()
            .map(|s| format!("[[step]]\nname = '{s}'\nurl = \"http://h/\"\n"))
            .collect();
        let src = crate::config::Source::new("checks/shop.toml", text);
        let (c, diags) = crate::config::read_check(&src, &Default::default(), &|_| None);
        c.unwrap_or_else(|| panic!("{diags:?}"))
    };
    let lean = Metrics::new();
    lean.add_check(&load(&["open"]));
    assert!(!lean.render().contains("scarecrow_step_duration_seconds"));
    let m = everything();
    m.add_check(&load(&["open", "pay \"now\""]));
    assert_lines(
        &m.render(),
        &[
            "# TYPE scarecrow_step_duration_seconds gauge",
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"open\"} 0",
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"pay \\\"now\\\"\"} 0",
        ],
    );
    let mut open = step(Phases::default());
    open.name = "open".to_owned();
    open.duration = Duration::from_millis(250);
    m.observe_run(&run("shop", Outcome::Success, vec![open]));
    assert_lines(
        &m.render(),
        &[
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"open\"} 0.25",
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"pay \\\"now\\\"\"} 0",
        ],
    );
    // A reload keeps the steps that stay and replaces the rest.
    m.add_check(&load(&["open", "confirm"]));
    let text = m.render();
    assert_lines(
        &text,
        &[
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"open\"} 0.25",
            "scarecrow_step_duration_seconds{check=\"shop\",step=\"confirm\"} 0",
        ],
    );
    assert!(!text.contains("step=\"pay"), "{text}");
    m.remove_check("shop");
    assert!(!m.render().contains("scarecrow_step_duration_seconds"));
}

#[test]
fn an_incident_open_before_its_check_is_loaded_shows_once_it_is() {
    let m = Metrics::new();
    // At start-up the store tells of open incidents before checks load.
    m.incident_open("weather", true);
    m.add_check(&check("weather"));
    assert_lines(
        &m.render(),
        &["scarecrow_incident_open{check=\"weather\"} 1"],
    );
    // Removed and added again while open: still open.
    m.remove_check("weather");
    m.add_check(&check("weather"));
    assert_lines(
        &m.render(),
        &["scarecrow_incident_open{check=\"weather\"} 1"],
    );
    m.incident_resolved("weather", 60.0);
    m.remove_check("weather");
    m.add_check(&check("weather"));
    assert_lines(
        &m.render(),
        &["scarecrow_incident_open{check=\"weather\"} 0"],
    );
}

#[test]
fn the_90_day_count_takes_each_declaration_until_the_next_count() {
    let m = Metrics::new();
    m.incidents_90d(&BTreeMap::from([("weather".to_owned(), 2)]));
    m.add_check(&check("weather"));
    m.add_check(&check("login"));
    m.incident_declared("weather");
    m.incident_declared("login");
    assert_lines(
        &m.render(),
        &[
            "scarecrow_incidents_90d{check=\"weather\"} 3",
            "scarecrow_incidents_90d{check=\"login\"} 1",
        ],
    );
    // A later count is the truth: login's incident aged out of the window.
    m.incidents_90d(&BTreeMap::from([("weather".to_owned(), 3)]));
    assert_lines(
        &m.render(),
        &[
            "scarecrow_incidents_90d{check=\"weather\"} 3",
            "scarecrow_incidents_90d{check=\"login\"} 0",
        ],
    );
}

#[test]
fn each_browser_step_has_its_timings_when_asked() {
    let text = "[[step]]\nname = 'open'\nurl = \"http://h/\"\n\
[[step]]\nname = 'widget'\nkind = \"browser\"\nurl = \"http://h/w\"\n";
    let src = crate::config::Source::new("checks/widget.toml", text.to_owned());
    let (c, diags) = crate::config::read_check(&src, &Default::default(), &|_| None);
    let c = c.unwrap_or_else(|| panic!("{diags:?}"));
    let lean = Metrics::new();
    lean.add_check(&c);
    assert!(!lean.render().contains("scarecrow_browser_timing_seconds"));
    let m = everything();
    m.add_check(&c);
    let shown = |m: &Metrics| {
        m.render()
            .lines()
            .filter(|l| l.starts_with("scarecrow_browser_timing_seconds"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Only the browser step, five events.
    assert_eq!(shown(&m).len(), 5, "{:?}", shown(&m));
    let widget = StepResult {
        name: "widget".to_owned(),
        detail: StepDetail::Browser(crate::check::BrowserDetail {
            browser: crate::check::BrowserReport {
                timings: BTreeMap::from([
                    ("load".to_owned(), 640),
                    ("first_match".to_owned(), 1250),
                ]),
                ..Default::default()
            },
        }),
        ..StepResult::default()
    };
    m.observe_run(&run("widget", Outcome::Success, vec![widget]));
    assert_lines(
        &m.render(),
        &[
            "# TYPE scarecrow_browser_timing_seconds gauge",
            "scarecrow_browser_timing_seconds{check=\"widget\",step=\"widget\",event=\"load\"} 0.64",
            "scarecrow_browser_timing_seconds{check=\"widget\",step=\"widget\",event=\"first_match\"} 1.25",
            "scarecrow_browser_timing_seconds{check=\"widget\",step=\"widget\",event=\"navigation\"} 0",
        ],
    );
    m.remove_check("widget");
    assert!(shown(&m).is_empty());
}
