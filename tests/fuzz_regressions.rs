//! Replays every input under fuzz/regressions/<target>/ (crashes the fuzzers
//! found, minimized, and hand-made ones of known crash classes) through the
//! fuzz targets' own entry points, on a thread with the daemon's stack size:
//! none may panic. A stack overflow aborts the test binary with a message
//! naming the input (the thread is named after it).

#[path = "../fuzz/src/entry.rs"]
mod entry;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every input of `target`; the names of those that panicked, with why.
fn replay(target: &str) {
    let (_, run) = entry::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = inputs(target);
    assert!(!files.is_empty(), "no regression inputs for {target}");
    let mut panicked = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable input");
        let name = format!("{target}/{}", file.file_name().unwrap().to_string_lossy());
        let outcome = std::panic::catch_unwind(|| entry::on_daemon_stack(&name, || run(&data)));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panicked.push(format!("{name}: {why}"));
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {} inputs panicked:\n{}",
        panicked.len(),
        files.len(),
        panicked.join("\n")
    );
}

#[test]
fn check_file_inputs_load_without_panic() {
    replay("check_file");
}

#[test]
fn config_inputs_load_without_panic() {
    replay("config");
}

#[test]
fn devtools_inputs_are_read_without_panic() {
    replay("devtools");
}

#[test]
fn placeholder_inputs_parse_without_panic() {
    replay("placeholder");
}

#[test]
fn response_inputs_are_judged_without_panic() {
    replay("response");
}

/// Every target has a directory of regressions, so a new target cannot be
/// added without a place for its crashes (and this file replaying them).
#[test]
fn every_target_is_replayed() {
    let mut dirs: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions"))
            .expect("fuzz/regressions")
            .map(|e| {
                e.expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
    dirs.sort();
    let targets: Vec<&str> = entry::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(dirs, targets);
}
