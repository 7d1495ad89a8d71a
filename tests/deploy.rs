//! deploy/kubernetes.yaml must agree with the Dockerfile and the daemon:
//! ports, paths, probes, and the metrics its alerts use; and keep its
//! promises: Pod Security "restricted", a read-only root, a NetworkPolicy,
//! config that receives updates, a pinned image, a memory limit that holds
//! the responses the settings allow at once.

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
    // The image's CMD, with the config in its mounted directory.
    assert_eq!(
        strs(&c["args"]),
        ["run", "--config", "/etc/scarecrow/config/config.toml"]
    );
    assert!(dockerfile.contains(r#"CMD ["run", "--config", "#));
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
        "/etc/scarecrow/config",
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
    // Listening beyond loopback, the API needs a token, from the Secret.
    assert_eq!(
        loaded
            .api_token
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("${file:/run/secrets/scarecrow/api-token}")
    );
    assert!(secret["stringData"]["api-token"].as_str().is_some());
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

fn pod(docs: &[Yaml]) -> &Yaml {
    &find(docs, "Deployment", "scarecrow")["spec"]["template"]["spec"]
}

fn containers(pod: &Yaml) -> &[Yaml] {
    pod["containers"].as_vec().expect("containers")
}

fn volume<'a>(pod: &'a Yaml, name: &str) -> &'a Yaml {
    pod["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no volume {name}"))
}

/// Pod Security Standard "restricted", each control it checks that applies.
#[test]
fn the_pod_meets_pod_security_restricted() {
    let docs = docs();
    let pod = pod(&docs);
    let ctx = &pod["securityContext"];
    assert_eq!(ctx["runAsNonRoot"].as_bool(), Some(true));
    assert_ne!(ctx["runAsUser"].as_i64(), Some(0));
    assert_eq!(
        ctx["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod[key].is_badvalue(), "{key} is not set");
    }
    for v in pod["volumes"].as_vec().expect("volumes") {
        assert!(v["hostPath"].is_badvalue(), "no hostPath volumes");
    }
    for c in containers(pod) {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
        assert!(
            sc["capabilities"]["add"].is_badvalue(),
            "adds no capability"
        );
        assert_ne!(sc["privileged"].as_bool(), Some(true));
        assert_ne!(sc["runAsNonRoot"].as_bool(), Some(false));
    }
}

#[test]
fn the_root_filesystem_is_read_only_and_no_token_is_mounted() {
    let docs = docs();
    let pod = pod(&docs);
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    for c in containers(pod) {
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true)
        );
        let tmp = c["volumeMounts"]
            .as_vec()
            .expect("mounts")
            .iter()
            .find(|m| m["mountPath"].as_str() == Some("/tmp"))
            .expect("/tmp is mounted");
        let name = tmp["name"].as_str().expect("name");
        assert!(
            !volume(pod, name)["emptyDir"].is_badvalue(),
            "/tmp is an emptyDir"
        );
    }
}

/// A subPath mount never sees a ConfigMap's updates; a directory does.
#[test]
fn config_and_checks_are_mounted_as_directories() {
    let docs = docs();
    let pod = pod(&docs);
    let c = &containers(pod)[0];
    let mounts = c["volumeMounts"].as_vec().expect("mounts");
    for m in mounts {
        assert!(
            m["subPath"].is_badvalue(),
            "{:?} uses subPath",
            m["mountPath"]
        );
    }
    let config_arg = strs(&c["args"])
        .last()
        .copied()
        .expect("--config PATH")
        .to_owned();
    let config_mount = mounts
        .iter()
        .find(|m| m["name"].as_str() == Some("config"))
        .expect("config mount");
    let dir = config_mount["mountPath"].as_str().expect("path");
    assert_eq!(
        Path::new(&config_arg).parent(),
        Some(Path::new(dir)),
        "--config names a file in the mounted directory"
    );
    assert_eq!(
        volume(pod, "config")["configMap"]["name"].as_str(),
        Some("scarecrow-config")
    );
}

#[test]
fn the_image_is_pinned_to_the_crate_version() {
    let docs = docs();
    let image = containers(pod(&docs))[0]["image"].as_str().expect("image");
    let (_, tag) = image.rsplit_once(':').expect("a tag");
    assert_eq!(tag, env!("CARGO_PKG_VERSION"), "{image}");
}

/// The keys and values of a `matchLabels`.
fn labels(selector: &Yaml) -> Vec<(&str, &str)> {
    selector["matchLabels"]
        .as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `(port, protocol)` of each entry of a rule's `ports`.
fn ports(rule: &Yaml) -> Vec<(i64, &str)> {
    rule["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["port"].as_i64().expect("numeric port"),
                p["protocol"].as_str().unwrap_or("TCP"),
            )
        })
        .collect()
}

#[test]
fn the_network_policy_lets_in_prometheus_and_api_users_and_out_dns_web_and_postgres() {
    let docs = docs();
    let policy = &find(&docs, "NetworkPolicy", "scarecrow")["spec"];
    let pod_labels = labels(&find(&docs, "Deployment", "scarecrow")["spec"]["selector"]);
    assert_eq!(labels(&policy["podSelector"]), pod_labels);
    assert_eq!(strs(&policy["policyTypes"]), ["Ingress", "Egress"]);

    let ingress = policy["ingress"].as_vec().expect("ingress");
    let mut peers = Vec::new();
    for rule in ingress {
        assert_eq!(ports(rule), [(9787, "TCP")], "only the daemon's port");
        for peer in rule["from"].as_vec().expect("from: never everyone") {
            // Both selectors in one peer: those pods in those namespaces.
            let (pods, namespaces) = (
                labels(&peer["podSelector"]),
                labels(&peer["namespaceSelector"]),
            );
            assert!(!pods.is_empty() && !namespaces.is_empty(), "{peer:?}");
            assert!(peer["ipBlock"].is_badvalue());
            peers.push((namespaces, pods));
        }
    }
    assert_eq!(
        peers,
        [
            (
                vec![("kubernetes.io/metadata.name", "monitoring")],
                vec![("app.kubernetes.io/name", "prometheus")]
            ),
            (
                vec![("scarecrow/api-clients", "allowed")],
                vec![("scarecrow/api-client", "true")]
            ),
        ]
    );

    let mut egress: Vec<(i64, &str)> = Vec::new();
    for rule in policy["egress"].as_vec().expect("egress") {
        assert!(rule["to"].is_badvalue() || rule["to"].as_vec().is_some());
        egress.extend(ports(rule));
    }
    egress.sort();
    assert_eq!(
        egress,
        [
            (53, "TCP"),
            (53, "UDP"),
            (80, "TCP"),
            (443, "TCP"),
            (5432, "TCP")
        ]
    );
    let postgres = policy["egress"]
        .as_vec()
        .expect("egress")
        .iter()
        .find(|rule| ports(rule) == [(5432, "TCP")])
        .expect("a rule for PostgreSQL");
    assert_eq!(
        labels(&postgres["to"][0]["podSelector"]),
        [("app.kubernetes.io/name", "postgresql")],
        "only to PostgreSQL's pods"
    );
}

/// Peak memory per byte of HTML while a response is held, decoded and
/// parsed: measured at about 8 for text-heavy pages (the comment in the
/// manifest has the figures).
const DOM_FACTOR: u64 = 8;
/// The daemon itself, with up to 10,000 idle checks (bench/README.md).
const BASELINE: u64 = 64 << 20;

/// `320Mi`, `1Gi` in bytes.
fn quantity(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = n.parse().expect("a number");
    n * match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "" => 1,
        other => panic!("unit {other}"),
    }
}

#[test]
fn the_memory_limit_holds_the_responses_the_settings_allow_at_once() {
    let docs = docs();
    let config = find(&docs, "ConfigMap", "scarecrow-config")["data"]["config.toml"]
        .as_str()
        .expect("config.toml");
    let tmp = common::scratch("deploy-memory");
    std::fs::write(tmp.path().join("config.toml"), config).expect("write");
    let loaded = scarecrow::config::load_config(Some(&tmp.path().join("config.toml")))
        .expect("config.toml loads");
    let need = loaded.concurrency as u64 * loaded.max_body_size.bytes() * DOM_FACTOR + BASELINE;
    let c = &containers(pod(&docs))[0];
    let limit = quantity(
        c["resources"]["limits"]["memory"]
            .as_str()
            .expect("a memory limit"),
    );
    assert_eq!(
        limit, need,
        "{} runs x {} bytes x {DOM_FACTOR} + {BASELINE}",
        loaded.concurrency, loaded.max_body_size
    );
    let request = quantity(
        c["resources"]["requests"]["memory"]
            .as_str()
            .expect("a request"),
    );
    assert!(request <= limit);
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
