//! The alert rules README.md and docs/high-availability.md show, as users
//! copy them, run by `promtool test rules` against scenarios of what each
//! must do (tests/alert_rules/*.yml): a rule edited in the docs so it no
//! longer does what its scenario says fails here. Where promtool is not
//! installed the promtool part says SKIPPED, and fails under `CI=true`
//! (`.ci/run` installs it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// The documents whose ```yaml blocks with `- alert:` are rules to copy.
const DOCS: [&str; 2] = ["README.md", "docs/high-availability.md"];

/// promtool unit tests in tests/alert_rules/, each reading `rules.yml`.
const SCENARIOS: [&str; 2] = ["critical_feature_down.yml", "replicas.yml"];

/// One rule as a document shows it.
struct Rule {
    name: String,
    rule: Yaml,
    /// `file:line` of its `- alert:` line.
    at: String,
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of each ```yaml (or ```yml) block of `markdown`, with the line
/// number of its first line.
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    // Open fence: whether it is YAML, its first line, its body so far.
    let mut open: Option<(bool, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (line.trim_start().strip_prefix("```"), &mut open) {
            (Some(info), None) => {
                let yaml = matches!(info.trim(), "yaml" | "yml");
                open = Some((yaml, n + 2, String::new()));
            }
            (Some(_), Some(_)) => {
                if let Some((true, first, body)) = open.take() {
                    blocks.push((first, body));
                }
            }
            (None, Some((_, _, body))) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Every rule of every YAML block with `- alert:` in [`DOCS`]. A rule shown
/// twice (the README's CriticalFeatureDown, which
/// docs/high-availability.md explains) must read the same both times, and
/// is kept once.
fn doc_rules() -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for doc in DOCS {
        let mut shown = 0;
        for (line, body) in yaml_blocks(&read(&repo(doc))) {
            if !body.contains("- alert:") {
                continue;
            }
            let block = format!("{doc}:{line}");
            let parsed = YamlLoader::load_from_str(&body)
                .unwrap_or_else(|e| panic!("{block}: the block is not YAML: {e}"));
            let items = parsed
                .first()
                .and_then(Yaml::as_vec)
                .unwrap_or_else(|| panic!("{block}: expected a list of rules (`- alert: …`)"));
            for rule in items {
                let name = rule["alert"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{block}: a rule without `alert:`"))
                    .to_owned();
                let at = body
                    .lines()
                    .position(|l| l.trim() == format!("- alert: {name}"))
                    .map_or(block.clone(), |n| format!("{doc}:{}", line + n));
                shown += 1;
                match rules.iter().find(|r| r.name == name) {
                    Some(seen) => assert!(
                        seen.rule == *rule,
                        "{name} reads differently at {} and at {at}: users copy one of them; make them the same",
                        seen.at
                    ),
                    None => rules.push(Rule {
                        name,
                        rule: rule.clone(),
                        at,
                    }),
                }
            }
        }
        assert!(
            shown > 0,
            "{doc} shows no `- alert:` in a ```yaml block any more: update DOCS in tests/alert_rules.rs"
        );
    }
    rules
}

/// The Prometheus rule file a user would write: the rules in one group.
fn rule_file(rules: &[Rule]) -> String {
    let key = |k: &str| Yaml::String(k.to_owned());
    let mut group = Hash::new();
    group.insert(key("name"), key("docs"));
    group.insert(
        key("rules"),
        Yaml::Array(rules.iter().map(|r| r.rule.clone()).collect()),
    );
    let mut file = Hash::new();
    file.insert(key("groups"), Yaml::Array(vec![Yaml::Hash(group)]));
    let mut text = String::new();
    let mut emitter = YamlEmitter::new(&mut text);
    emitter.multiline_strings(true);
    emitter.dump(&Yaml::Hash(file)).expect("emit the rule file");
    text.push('\n');
    text
}

/// The alert names a scenario file tests.
fn tested_alerts(scenario: &str) -> BTreeSet<String> {
    let path = repo("tests/alert_rules").join(scenario);
    let docs = YamlLoader::load_from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tests = docs[0]["tests"].as_vec().expect("a list of tests");
    tests
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_vec().cloned().unwrap_or_default())
        .map(|a| a["alertname"].as_str().expect("alertname").to_owned())
        .collect()
}

/// promtool, and a scratch directory holding `rules.yml` (the docs' rules)
/// and a copy of every scenario file; `None` (after SKIPPED, or failing
/// under CI) without promtool.
fn workspace(rules: &[Rule]) -> Option<(PathBuf, tempfile::TempDir)> {
    let promtool = common::tools::require("promtool", &["promtool"], "prometheus")?;
    let dir = common::scratch("alert-rules");
    std::fs::write(dir.path().join("rules.yml"), rule_file(rules)).expect("write rules.yml");
    for scenario in SCENARIOS {
        std::fs::copy(
            repo("tests/alert_rules").join(scenario),
            dir.path().join(scenario),
        )
        .expect("copy a scenario");
    }
    Some((promtool, dir))
}

/// Runs promtool in `dir`; fails the test with its output, the rule file and
/// where each rule came from unless it succeeds.
fn promtool(tool: &Path, dir: &Path, args: &[&str], rules: &[Rule]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let origins: Vec<String> = rules
        .iter()
        .map(|r| format!("{} ({})", r.name, r.at))
        .collect();
    assert!(
        out.status.success(),
        "promtool {} failed ({}) for the rules {}:\n{}{}\n--- rules.yml:\n{}",
        args.join(" "),
        out.status,
        origins.join(", "),
        common::stdout(&out),
        common::stderr(&out),
        read(&dir.join("rules.yml")),
    );
}

/// The scenarios of `scenario`, run against the docs' rules.
fn run_scenarios(scenario: &str) {
    let rules = doc_rules();
    let Some((tool, dir)) = workspace(&rules) else {
        return;
    };
    promtool(&tool, dir.path(), &["test", "rules", scenario], &rules);
}

/// Every alert the docs show is valid, and is tested by a scenario; every
/// scenario tests an alert the docs show (one renamed in the docs would
/// otherwise pass every "does not fire" case).
#[test]
fn every_alert_in_the_docs_is_valid_and_has_a_scenario() {
    let rules = doc_rules();
    let shown: BTreeSet<String> = rules.iter().map(|r| r.name.clone()).collect();
    let mut tested = BTreeSet::new();
    let mut problems = Vec::new();
    for scenario in SCENARIOS {
        let alerts = tested_alerts(scenario);
        for alert in alerts.difference(&shown) {
            problems.push(format!(
                "tests/alert_rules/{scenario} tests {alert}, which no document in {DOCS:?} shows"
            ));
        }
        tested.extend(alerts);
    }
    for rule in rules.iter().filter(|r| !tested.contains(&r.name)) {
        problems.push(format!(
            "{} shows {}, which no scenario in tests/alert_rules/ tests",
            rule.at, rule.name
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let Some((tool, dir)) = workspace(&rules) else {
        return;
    };
    promtool(&tool, dir.path(), &["check", "rules", "rules.yml"], &rules);
}

/// CriticalFeatureDown: one alert per critical check that is down, on one
/// daemon and across a move between replicas; none for a check that merely
/// moved, has not run yet, or is not critical.
#[test]
fn critical_feature_down_does_what_its_scenarios_say() {
    run_scenarios("critical_feature_down.yml");
}

/// The replica alerts: no leader, members missing, store down, a replica
/// cut off.
#[test]
fn replica_alerts_do_what_their_scenarios_say() {
    run_scenarios("replicas.yml");
}
