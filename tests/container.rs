//! The Dockerfile promises paths, a port and a health check; no container
//! engine runs here, so this reads it and holds it to those promises.

use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Dockerfile's instructions, continuation lines joined.
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    text.replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn last(instr: &[(String, String)], key: &str) -> String {
    instr
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn dockerfile_keeps_its_promises() {
    let instr = instructions();
    assert_eq!(
        instr.iter().filter(|(k, _)| k == "FROM").count(),
        2,
        "multi-stage"
    );
    assert_eq!(last(&instr, "EXPOSE"), "9787");
    assert_eq!(last(&instr, "STOPSIGNAL"), "SIGTERM");
    assert_eq!(last(&instr, "USER"), "scarecrow", "runs as non-root");
    assert_eq!(last(&instr, "VOLUME"), r#"["/var/lib/scarecrow"]"#);
    assert!(
        last(&instr, "HEALTHCHECK").contains(
            r#"CMD ["scarecrow", "healthcheck", "--url", "http://127.0.0.1:9787/healthz"]"#
        )
    );
    assert_eq!(
        last(&instr, "CMD"),
        r#"["run", "--config", "/etc/scarecrow/config.toml"]"#
    );
    assert!(
        instr
            .iter()
            .any(|(k, v)| k == "RUN" && v.contains("ca-certificates"))
    );
    // Everything copied from the build context exists.
    for (_, v) in instr
        .iter()
        .filter(|(k, v)| k == "COPY" && !v.starts_with("--from"))
    {
        let parts: Vec<&str> = v.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(repo(src).exists(), "COPY source {src} is missing");
        }
    }
}

#[test]
fn container_config_listens_everywhere_and_reads_the_mounted_checks() {
    let config = scarecrow::config::load_config(Some(&repo("deploy/container-config.toml")))
        .expect("valid config");
    assert_eq!(config.listen.to_string(), "0.0.0.0:9787");
    assert_eq!(config.checks_dir, Path::new("/etc/scarecrow/checks"));
    assert_eq!(config.log_format, scarecrow::config::LogFormat::Json);
}
