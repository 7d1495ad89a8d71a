//! `/metrics` output passes `promtool check metrics` (parse and lint). Where
//! promtool is not installed it says SKIPPED, and fails under `CI=true`
//! (`.ci/run` installs it).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use scarecrow::check::{
    Check, HttpStep, Outcome, Phases, Reason, Redacted, RunResult, Schedule, StepDetail, StepResult,
};
use scarecrow::config::MetricsSettings;
use scarecrow::metrics::Metrics;
use tokio::io::AsyncWriteExt as _;

fn check(name: &str, labels: &[(&str, &str)]) -> Check {
    Check {
        name: name.to_owned(),
        description: Some(format!("the {name} feature")),
        critical: name == "diesel",
        owner: Some("team-web".to_owned()),
        runbook: None,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
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

fn run(check: &str, outcome: Outcome, phases: Phases) -> Redacted<RunResult> {
    Redacted::vouched(RunResult {
        check: check.to_owned(),
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(420),
        outcome,
        steps: vec![StepResult {
            name: "home".to_owned(),
            url: "http://127.0.0.1/".to_owned(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".to_owned(),
                status: Some(200),
                phases,
                ..HttpStep::default()
            }),
            duration: Duration::from_millis(400),
            attempts: 1,
            failures: Vec::new(),
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: None,
        }],
    })
}

/// The default series, and those of every `[metrics]` opt-in.
#[tokio::test]
async fn metrics_pass_promtool_check_metrics() {
    let everything = MetricsSettings {
        duration_buckets: Some([50, 250, 1000, 5000].map(Duration::from_millis).to_vec()),
        phases: true,
        per_step: true,
        browser: true,
    };
    for settings in [MetricsSettings::default(), everything] {
        lint(&render(&settings)).await;
    }
}

/// Two checks, a failed run and a passing one, a skipped run and lateness.
fn render(settings: &MetricsSettings) -> String {
    let metrics = Metrics::with_settings(settings);
    metrics.add_check(&check("weather", &[("site", "members"), ("tier", "1")]));
    metrics.add_check(&check("diesel", &[("site", "shop")]));
    let widget = scarecrow::config::Source::new(
        "checks/widget.toml",
        "[[step]]\nname = 'widget'\nkind = \"browser\"\nurl = \"http://h/\"\n".to_owned(),
    );
    let (widget, diags) = scarecrow::config::read_check(&widget, &Default::default(), &|_| None);
    metrics.add_check(&widget.unwrap_or_else(|| panic!("{diags:?}")));
    let ms = |n| Some(Duration::from_millis(n));
    metrics.observe_run(&run(
        "weather",
        Outcome::Failure {
            reason: Reason::Timeout,
            step: Some("home".to_owned()),
            message: "deadline of 10s passed".to_owned(),
        },
        Phases {
            dns: ms(2),
            connect: ms(8),
            ttfb: None,
            transfer: None,
        },
    ));
    metrics.observe_run(&run(
        "diesel",
        Outcome::Success,
        Phases {
            dns: ms(1),
            connect: ms(4),
            ttfb: ms(120),
            transfer: ms(3),
        },
    ));
    metrics.skipped_run("diesel");
    metrics.observe_lateness(Duration::from_micros(250));
    metrics.render()
}

async fn lint(text: &str) {
    let Some(promtool) = common::tools::require("promtool", &["promtool"], "prometheus") else {
        return;
    };
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("write to promtool");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool failed ({}):\n{report}\n--- input:\n{text}",
        out.status
    );
    assert_eq!(report.trim(), "", "promtool lint output; input:\n{text}");
}
