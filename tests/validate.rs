//! `scarecrow validate`: every problem of every file, pinned by golden files.

mod common;

use std::process::Output;

use common::golden;

/// `validate` with the shipped config.toml, whose grant reaches only
/// checks_dir, and `args`.
fn validate(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .arg("validate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SCARECROW_UNSET_FOR_GOLDEN")
        .env_remove("SCARECROW_GOLDEN_SECRET")
        .env_remove("SCARECROW_TEST_UNSET")
        .env("SCARECROW_DEMO_PASSWORD", "x")
        .output()
        .expect("run scarecrow")
}

/// `validate` of files outside checks_dir, read with a config.toml without
/// any [[grant]], where they load as they would without grants.
fn validate_files(paths: &[&str]) -> Output {
    validate(&[&["--config", "tests/golden/config.toml"], paths].concat())
}

#[test]
fn shipped_config_and_checks_are_valid() {
    let out = validate(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without Chromium, a warning that the widget's browser step cannot run.
    let warnings =
        match scarecrow::probe::browser_missing(&scarecrow::check::BrowserOptions::default()) {
            None => "0 warnings",
            Some(_) => "1 warning",
        };
    assert_eq!(stdout, format!("5 checks valid, 0 errors, {warnings}\n"));
}

#[test]
fn every_problem_of_every_file_is_reported_with_position() {
    let out = validate_files(&["tests/golden/invalid"]);
    assert_eq!(out.status.code(), Some(2));
    golden("invalid.stderr", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 check valid, 24 errors, 1 warning\n"
    );
}

/// `locations` and `quorum` are checked where they are written: location
/// names as a region is written, a quorum of at least one location or a
/// share from 1 to 100 %.
#[test]
fn locations_and_quorums_are_checked_with_position() {
    let out = validate_files(&["tests/golden/locations"]);
    assert_eq!(out.status.code(), Some(2));
    golden("locations.stderr", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 check valid, 7 errors, 0 warnings\n"
    );
}

/// A daemon's location comes from `location`, or `SCARECROW_LOCATION`,
/// which wins; either is checked.
#[test]
fn a_location_that_is_not_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("checks")).expect("mkdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "location = \"Frankfurt am Main\"\n").expect("config");
    let run = |env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"));
        cmd.args(["validate", "--config"]).arg(&config);
        match env {
            Some(l) => cmd.env("SCARECROW_LOCATION", l),
            None => cmd.env_remove("SCARECROW_LOCATION"),
        };
        cmd.output().expect("run scarecrow")
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("location \"Frankfurt am Main\" may only use a-z, 0-9 and `-`"),
        "{stderr}"
    );
    assert!(stderr.contains("config.toml:1:12"), "{stderr}");
    let out = run(Some("fra"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "the environment wins: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(Some("FRA"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("SCARECROW_LOCATION \"FRA\" is not a location")
    );
}

/// `kind` selects a step's kind, `http` by default; an unknown kind is an
/// error at its value, with a suggestion for a typo, and the step's other
/// keys are not judged against a kind it does not have.
#[test]
fn an_unknown_step_kind_is_an_error_with_a_suggestion() {
    let out = validate_files(&["tests/golden/kinds"]);
    assert_eq!(out.status.code(), Some(2));
    golden("kinds.stderr", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 checks valid, 3 errors, 0 warnings\n"
    );
}

/// Date formats, time zones and number ranges of value assertions are
/// parsed at load; a bad strftime field is pointed at inside its string.
#[test]
fn date_formats_and_number_ranges_are_checked_at_load() {
    let out = validate_files(&["tests/golden/dates"]);
    assert_eq!(out.status.code(), Some(2));
    golden("dates.stderr", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 checks valid, 10 errors, 0 warnings\n"
    );
}

#[test]
fn a_missing_secret_is_a_warning_not_an_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["validate", "checks/member-login.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SCARECROW_DEMO_PASSWORD")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: secret `SCARECROW_DEMO_PASSWORD` is not set in the environment"),
        "{stderr}"
    );
    assert!(stderr.contains("--> checks/member-login.toml:"), "{stderr}");
    // One file of several: its parent may be in another.
    assert!(
        stderr.contains("warning: `depends_on`: no check named `gateway` among the files read"),
        "{stderr}"
    );
}

/// Text that is not ASCII, in every string a check file has: templated
/// text with a placeholder right before `°C`, expectations, names, labels.
/// A multi-byte character at the start of a literal piece used to panic.
#[test]
fn german_text_degrees_and_euros_load_in_every_string() {
    let out = validate_files(&["tests/golden/umlauts"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 check valid, 0 errors, 0 warnings\n",
        "{stderr}"
    );
}

/// Problems on lines with umlauts put their carets under the culprit,
/// counted in characters; inside a string written with escapes they
/// underline the whole string rather than guess.
#[test]
fn diagnostics_on_lines_with_umlauts_point_at_the_culprit() {
    let out = validate_files(&["tests/golden/umlauts-invalid"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    golden("umlauts-invalid.stderr", &stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 checks valid, 8 errors, 1 warning\n"
    );
}

/// A JSONPath nesting thousands of brackets overflowed the stack of the
/// recursive parser and aborted the process; its depth is now refused
/// before parsing, pointing at the first bracket too many.
#[test]
fn a_jsonpath_nested_thousands_deep_is_refused_with_its_position() {
    let dir = common::scratch("deep-jsonpath");
    let deep = format!("$[?(@{}", "[?(@".repeat(20_000));
    let check = format!(
        "[[step]]\nurl = \"http://127.0.0.1:1/\"\n\n[[step.expect.json]]\npath = \"{deep}\"\nexists = true\n"
    );
    std::fs::write(dir.path().join("deep.toml"), check).unwrap();
    let out = validate_files(&[dir.path().join("deep.toml").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "error: invalid JSONPath: `[` and `(` nest deeper than 32 levels"
    );
    assert!(stderr.contains("deep.toml:5:74\n"), "{stderr}");
}

/// Durations and sizes out of their bounds (a timeout near `u64::MAX`
/// seconds, a sub-millisecond interval, a 400-day window, a 2 GiB body cap)
/// are load errors at their position in `config.toml`, not a panic or a
/// busy loop later; a wrong unit says which units there are.
#[test]
fn config_durations_and_sizes_out_of_bounds_are_load_errors() {
    let out = validate(&["--config", "tests/golden/bounds/config.toml"]);
    assert_eq!(out.status.code(), Some(2));
    golden(
        "bounds-config.stderr",
        &String::from_utf8_lossy(&out.stderr),
    );
}

#[test]
fn check_durations_and_sizes_out_of_bounds_are_load_errors() {
    let out = validate_files(&["tests/golden/bounds/checks"]);
    assert_eq!(out.status.code(), Some(2));
    golden(
        "bounds-checks.stderr",
        &String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 check valid, 7 errors, 0 warnings\n"
    );
}

/// One secret used nine times in two files is one warning, naming both
/// checks, not nine.
#[test]
fn an_unset_secret_is_one_warning_naming_every_check_that_uses_it() {
    let dir = tempfile::Builder::new()
        .prefix("scarecrow-test-validate-secrets-")
        .tempdir()
        .expect("scratch dir");
    let secret = "${secret:SCARECROW_TEST_NEVER_SET}";
    let headers = |n: usize| {
        (0..n)
            .map(|i| format!("x-{i} = \"{secret}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, uses) in [("first", 5), ("second", 4)] {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "[[step]]\nname = \"open\"\nurl = \"https://example.org/\"\nheaders = {{ {} }}\n",
                headers(uses)
            ),
        )
        .expect("write check");
    }
    let out = validate_files(&[dir.path().to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("warning: secret").count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "warning: secret `SCARECROW_TEST_NEVER_SET` is not set in the environment"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("`first`") && stderr.contains("`second`"),
        "{stderr}"
    );
    assert!(stdout.contains(", 1 warning"), "{stdout}");
}
