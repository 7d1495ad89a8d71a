//! `docs/once-report.schema.json` describes what `scarecrow once --format
//! json` really prints: a passing and a failing run of the shipped checks
//! against the demo site both validate against it.

mod common;

use common::{Site, scarecrow, stderr};

fn validator() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/once-report.schema.json");
    let text = std::fs::read_to_string(path).expect("the schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

async fn report(site: &Site, code: i32) -> serde_json::Value {
    let out = scarecrow(site, &["once", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn assert_valid(validator: &jsonschema::Validator, doc: &serde_json::Value) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_and_failing_reports_validate_against_the_documented_schema() {
    let validator = validator();
    let site = Site::start().await;
    let passing = report(&site, 0).await;
    assert_valid(&validator, &passing);

    site.switch("break", "diesel", "").await;
    site.switch("break", "weather", "?mode=error").await;
    let failing = report(&site, 1).await;
    assert_valid(&validator, &failing);
    let details = failing["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["failure_details"].as_array())
        .flatten()
        .count();
    assert!(
        details >= 2,
        "both broken checks show their details: {failing:#}"
    );

    // The schema is strict: a field it does not document fails it.
    let mut extra = failing.clone();
    extra["results"][0]["steps"][0]["surprise"] = true.into();
    assert!(!validator.is_valid(&extra));
}
