//! `scarecrow validate`: every problem of every file, pinned by golden files.

use std::path::Path;
use std::process::Output;

fn validate(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .arg("validate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SCARECROW_UNSET_FOR_GOLDEN")
        .env_remove("SCARECROW_GOLDEN_SECRET")
        .env("SCARECROW_DEMO_PASSWORD", "x")
        .output()
        .expect("run scarecrow")
}

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it instead.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (run with UPDATE_GOLDEN=1)");
    assert!(
        expected == actual,
        "golden {name} differs:\n--- expected\n{expected}\n--- actual\n{actual}"
    );
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
    assert_eq!(stdout, "3 checks valid, 0 errors, 0 warnings\n");
}

#[test]
fn every_problem_of_every_file_is_reported_with_position() {
    let out = validate(&["tests/golden/invalid"]);
    assert_eq!(out.status.code(), Some(2));
    golden("invalid.stderr", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 check valid, 24 errors, 1 warning\n"
    );
}

/// Date formats, time zones and number ranges of value assertions are
/// parsed at load; a bad strftime field is pointed at inside its string.
#[test]
fn date_formats_and_number_ranges_are_checked_at_load() {
    let out = validate(&["tests/golden/dates"]);
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
        stderr
            .starts_with("warning: secret `SCARECROW_DEMO_PASSWORD` is not set in the environment"),
        "{stderr}"
    );
    assert!(stderr.contains("--> checks/member-login.toml:"), "{stderr}");
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
    let out = validate(&["tests/golden/bounds/checks"]);
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
