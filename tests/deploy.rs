//! deploy/kubernetes.yaml must agree with the Dockerfile and the daemon:
//! ports, paths, probes, and the metrics its alerts use.

mod common;

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn docs() -> Vec<Yaml> {
    let text =
        std::fs::read_to_string(repo("deploy/kubernetes.yaml")).expect("deploy/kubernetes.yaml");
    YamlLoader::load_from_str(&text).expect("valid YAML")
}

fn find<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strs(y: &Yaml) -> Vec<&str> {
    y.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn deployment_matches_the_image_and_the_daemon() {
    let docs = docs();
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    let pod = &find(&docs, "Deployment", "scarecrow")["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"].as_i64(), Some(9787));
    assert!(dockerfile.contains("EXPOSE 9787"));
    assert_eq!(
        strs(&c["args"]),
        ["run", "--config", "/etc/scarecrow/config.toml"]
    );
    assert!(dockerfile.contains(r#"CMD ["run", "--config", "/etc/scarecrow/config.toml"]"#));
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(10001));
    assert!(dockerfile.contains("--uid 10001"));
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for path in [
        "/etc/scarecrow/config.toml",
        "/etc/scarecrow/checks",
        "/var/lib/scarecrow",
        "/run/secrets/scarecrow",
    ] {
        assert!(mounts.contains(&path), "{path} is mounted");
    }
    let claim = pod["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some("data"))
        .expect("data volume");
    let claim = claim["persistentVolumeClaim"]["claimName"]
        .as_str()
        .expect("a PVC");
    find(&docs, "PersistentVolumeClaim", claim);
    let monitor = find(&docs, "PodMonitor", "scarecrow");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["port"].as_str(),
        c["ports"][0]["name"].as_str()
    );
}

#[test]
fn shipped_config_and_checks_load() {
    let docs = docs();
    let config = find(&docs, "ConfigMap", "scarecrow-config")["data"]["config.toml"]
        .as_str()
        .expect("config.toml");
    let tmp = common::scratch("deploy");
    let dir = tmp.path();
    std::fs::write(dir.join("config.toml"), config).expect("write");
    let secret = find(&docs, "Secret", "scarecrow-secrets");
    assert!(secret["stringData"]["webhook-secret"].as_str().is_some());
    let loaded =
        scarecrow::config::load_config(Some(&dir.join("config.toml"))).expect("config.toml loads");
    assert_eq!(loaded.listen.to_string(), "0.0.0.0:9787");
    assert_eq!(loaded.checks_dir, Path::new("/etc/scarecrow/checks"));
    assert!(loaded.store_path.starts_with("/var/lib/scarecrow"));
    let checks = find(&docs, "ConfigMap", "scarecrow-checks")["data"]
        .as_hash()
        .expect("checks")
        .clone();
    let checks_dir = dir.join("checks");
    std::fs::create_dir_all(&checks_dir).expect("checks dir");
    for (name, text) in checks {
        let name = name.as_str().expect("file name");
        std::fs::write(checks_dir.join(name), text.as_str().expect("check text"))
            .expect("write check");
    }
    let loaded = scarecrow::config::load_checks(&[checks_dir], &loaded.defaults, &|_| None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.checks.len(), 1);
}

/// Every metric an alert uses is one the daemon exports.
#[test]
fn alerts_use_metrics_the_daemon_exports() {
    let docs = docs();
    let metrics = scarecrow::metrics::Metrics::new();
    let text = std::fs::read_to_string(repo("checks/weather.toml")).expect("check");
    let src = scarecrow::config::Source::new("weather.toml", text);
    let (check, _) = scarecrow::config::read_check(&src, &Default::default(), &|_| None);
    metrics.add_check(&check.expect("check"));
    let exported = metrics.render();
    let rules = &find(&docs, "PrometheusRule", "scarecrow")["spec"]["groups"];
    let mut seen = 0;
    for group in rules.as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr");
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("scarecrow_"))
            {
                assert!(
                    exported.contains(&format!("# TYPE {name} ")),
                    "alert uses {name}, which the daemon does not export"
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 5);
}
