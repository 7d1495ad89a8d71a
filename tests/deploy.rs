//! The Kubernetes examples must agree with the Dockerfile and the daemon:
//! ports, paths, probes, and the metrics their alerts use; and keep their
//! promises: Pod Security "restricted", a read-only root, a NetworkPolicy,
//! config that receives updates, a pinned image, a memory limit that holds
//! the responses the settings allow at once. Each Deployment of each
//! example is held to them: deploy/kubernetes.yaml (one daemon, SQLite on a
//! volume) and deploy/kubernetes-locations.yaml (two locations of two
//! replicas on PostgreSQL, each location named by its Deployment's
//! environment).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

/// Every Kubernetes example deploy/ ships.
const MANIFESTS: [&str; 2] = ["deploy/kubernetes.yaml", "deploy/kubernetes-locations.yaml"];

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load(manifest: &str) -> Vec<Yaml> {
    let text =
        std::fs::read_to_string(repo(manifest)).unwrap_or_else(|e| panic!("{manifest}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{manifest}: not YAML: {e}"))
}

/// Each example, by path.
fn manifests() -> Vec<(&'static str, Vec<Yaml>)> {
    MANIFESTS.iter().map(|m| (*m, load(m))).collect()
}

fn find<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn all<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

/// Every Deployment of every example: `(manifest, name, deployment)`.
fn deployments<'a>(manifests: &'a [(&'static str, Vec<Yaml>)]) -> Vec<(String, &'a Yaml)> {
    let mut found = Vec::new();
    for (manifest, docs) in manifests {
        let of_this = all(docs, "Deployment");
        assert!(!of_this.is_empty(), "{manifest} has no Deployment");
        for d in of_this {
            let name = d["metadata"]["name"].as_str().expect("a name");
            found.push((format!("{manifest}: Deployment {name}"), d));
        }
    }
    found
}

fn strs(y: &Yaml) -> Vec<&str> {
    y.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

fn pod_of(deployment: &Yaml) -> &Yaml {
    &deployment["spec"]["template"]["spec"]
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

/// The volume mounted at `path` in container `c`.
fn mounted_at<'a>(pod: &'a Yaml, c: &Yaml, path: &str) -> &'a Yaml {
    let mount = c["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
    volume(pod, mount["name"].as_str().expect("a volume name"))
}

/// The environment the container gets: each `value`, and each
/// `valueFrom.secretKeyRef` read from the example's Secret.
fn container_env(docs: &[Yaml], c: &Yaml) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in c["env"].as_vec().map(Vec::as_slice).unwrap_or_default() {
        let name = e["name"].as_str().expect("a variable's name");
        let secret_ref = &e["valueFrom"]["secretKeyRef"];
        let value = match e["value"].as_str() {
            Some(v) => v.to_owned(),
            None if !secret_ref.is_badvalue() => {
                let secret = find(
                    docs,
                    "Secret",
                    secret_ref["name"].as_str().expect("a Secret"),
                );
                let key = secret_ref["key"].as_str().expect("a key");
                secret["stringData"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: the Secret has no {key}"))
                    .to_owned()
            }
            None => panic!("{name}: a value or a secretKeyRef"),
        };
        env.insert(name.to_owned(), value);
    }
    env
}

/// The path `--config` names.
fn config_arg(c: &Yaml) -> String {
    strs(&c["args"])
        .last()
        .copied()
        .expect("--config PATH")
        .to_owned()
}

/// The config.toml a Deployment's pods read: from the ConfigMap mounted
/// where `--config` points, with the environment the container gets.
fn config_of(docs: &[Yaml], what: &str, deployment: &Yaml) -> scarecrow::config::Config {
    let pod = pod_of(deployment);
    let c = &containers(pod)[0];
    let path = config_arg(c);
    let dir = Path::new(&path).parent().expect("a directory");
    let file = Path::new(&path)
        .file_name()
        .expect("a file")
        .to_str()
        .expect("UTF-8");
    let map = mounted_at(pod, c, dir.to_str().expect("UTF-8"))["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the config directory is not a ConfigMap"));
    let text = find(docs, "ConfigMap", map)["data"][file]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: ConfigMap {map} has no {file}"));
    let env = container_env(docs, c);
    let lookup = |name: &str| env.get(name).cloned();
    scarecrow::config::read_config(
        &scarecrow::config::Source::new(&path, text.to_owned()),
        &lookup,
    )
    .unwrap_or_else(|d| panic!("{what}: {path} does not load: {d:?}"))
}

#[test]
fn deployment_matches_the_image_and_the_daemon() {
    let manifests = manifests();
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("EXPOSE 9787"));
    assert!(dockerfile.contains(r#"CMD ["run", "--config", "#));
    assert!(dockerfile.contains("--uid 10001"));
    for (manifest, docs) in &manifests {
        for d in all(docs, "Deployment") {
            let what = format!("{manifest}: {:?}", d["metadata"]["name"]);
            let pod = pod_of(d);
            let c = &containers(pod)[0];
            assert_eq!(
                c["ports"][0]["containerPort"].as_i64(),
                Some(9787),
                "{what}"
            );
            // The image's CMD, with the config in its mounted directory.
            assert_eq!(
                strs(&c["args"]),
                ["run", "--config", "/etc/scarecrow/config/config.toml"],
                "{what}"
            );
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/healthz"),
                "{what}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/readyz"),
                "{what}"
            );
            assert_eq!(
                pod["securityContext"]["runAsUser"].as_i64(),
                Some(10001),
                "{what}"
            );
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
                assert!(mounts.contains(&path), "{what}: {path} is mounted");
            }
            // A SQLite store outlives the pod on a claim the example makes;
            // with PostgreSQL the pods share no volume.
            let data = volume(pod, "data");
            match config_of(docs, &what, d).postgres {
                None => {
                    let claim = data["persistentVolumeClaim"]["claimName"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{what}: SQLite on a PVC"));
                    find(docs, "PersistentVolumeClaim", claim);
                }
                Some(_) => assert!(
                    !data["emptyDir"].is_badvalue(),
                    "{what}: with PostgreSQL, data is an emptyDir"
                ),
            }
            let monitor = find(docs, "PodMonitor", "scarecrow");
            assert_eq!(
                monitor["spec"]["podMetricsEndpoints"][0]["port"].as_str(),
                c["ports"][0]["name"].as_str(),
                "{what}"
            );
        }
    }
}

#[test]
fn shipped_config_and_checks_load() {
    for (manifest, docs) in manifests() {
        let secret = find(&docs, "Secret", "scarecrow-secrets");
        assert!(secret["stringData"]["webhook-secret"].as_str().is_some());
        assert!(secret["stringData"]["api-token"].as_str().is_some());
        for d in all(&docs, "Deployment") {
            let what = format!("{manifest}: {:?}", d["metadata"]["name"]);
            let loaded = config_of(&docs, &what, d);
            // Listening beyond loopback, the API needs a token, from the Secret.
            assert_eq!(
                loaded
                    .api_token
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref(),
                Some("${file:/run/secrets/scarecrow/api-token}"),
                "{what}"
            );
            assert_eq!(loaded.listen.to_string(), "0.0.0.0:9787", "{what}");
            assert_eq!(
                loaded.checks_dir,
                Path::new("/etc/scarecrow/checks"),
                "{what}"
            );
            if loaded.postgres.is_none() {
                assert!(
                    loaded.store_path.starts_with("/var/lib/scarecrow"),
                    "{what}"
                );
            }
            let pod = pod_of(d);
            let c = &containers(pod)[0];
            let map = mounted_at(pod, c, "/etc/scarecrow/checks")["configMap"]["name"]
                .as_str()
                .expect("checks from a ConfigMap");
            let checks = find(&docs, "ConfigMap", map)["data"]
                .as_hash()
                .expect("checks")
                .clone();
            let tmp = common::scratch("deploy");
            let checks_dir = tmp.path().join("checks");
            std::fs::create_dir_all(&checks_dir).expect("checks dir");
            for (name, text) in &checks {
                let name = name.as_str().expect("file name");
                std::fs::write(checks_dir.join(name), text.as_str().expect("check text"))
                    .expect("write check");
            }
            let env = container_env(&docs, c);
            let lookup = |name: &str| env.get(name).cloned();
            let loaded = scarecrow::config::load_checks(&[checks_dir], &loaded.defaults, &lookup);
            assert!(!loaded.has_errors(), "{what}: {:?}", loaded.diagnostics);
            assert_eq!(loaded.checks.len(), checks.len(), "{what}");
        }
    }
}

/// Pod Security Standard "restricted", each control it checks that applies.
#[test]
fn the_pod_meets_pod_security_restricted() {
    let manifests = manifests();
    for (what, d) in deployments(&manifests) {
        let pod = pod_of(d);
        let ctx = &pod["securityContext"];
        assert_eq!(ctx["runAsNonRoot"].as_bool(), Some(true), "{what}");
        assert_ne!(ctx["runAsUser"].as_i64(), Some(0), "{what}");
        assert_eq!(
            ctx["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{what}"
        );
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[key].is_badvalue(), "{what}: {key} is not set");
        }
        for v in pod["volumes"].as_vec().expect("volumes") {
            assert!(v["hostPath"].is_badvalue(), "{what}: no hostPath volumes");
        }
        for c in containers(pod) {
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{what}"
            );
            assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{what}");
            assert!(
                sc["capabilities"]["add"].is_badvalue(),
                "{what}: adds no capability"
            );
            assert_ne!(sc["privileged"].as_bool(), Some(true), "{what}");
            assert_ne!(sc["runAsNonRoot"].as_bool(), Some(false), "{what}");
        }
    }
}

#[test]
fn the_root_filesystem_is_read_only_and_no_token_is_mounted() {
    let manifests = manifests();
    for (what, d) in deployments(&manifests) {
        let pod = pod_of(d);
        assert_eq!(
            pod["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{what}"
        );
        for c in containers(pod) {
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{what}"
            );
            assert!(
                !mounted_at(pod, c, "/tmp")["emptyDir"].is_badvalue(),
                "{what}: /tmp is an emptyDir"
            );
        }
    }
}

/// A subPath mount never sees a ConfigMap's updates; a directory does.
#[test]
fn config_and_checks_are_mounted_as_directories() {
    let manifests = manifests();
    for (what, d) in deployments(&manifests) {
        let pod = pod_of(d);
        let c = &containers(pod)[0];
        let mounts = c["volumeMounts"].as_vec().expect("mounts");
        for m in mounts {
            assert!(
                m["subPath"].is_badvalue(),
                "{what}: {:?} uses subPath",
                m["mountPath"]
            );
        }
        let config_mount = mounts
            .iter()
            .find(|m| m["name"].as_str() == Some("config"))
            .expect("config mount");
        let dir = config_mount["mountPath"].as_str().expect("path");
        assert_eq!(
            Path::new(&config_arg(c)).parent(),
            Some(Path::new(dir)),
            "{what}: --config names a file in the mounted directory"
        );
        assert_eq!(
            volume(pod, "config")["configMap"]["name"].as_str(),
            Some("scarecrow-config"),
            "{what}"
        );
    }
}

#[test]
fn the_image_is_pinned_to_the_crate_version() {
    let manifests = manifests();
    for (what, d) in deployments(&manifests) {
        for c in containers(pod_of(d)) {
            let image = c["image"].as_str().expect("image");
            let (_, tag) = image.rsplit_once(':').expect("a tag");
            assert_eq!(tag, env!("CARGO_PKG_VERSION"), "{what}: {image}");
        }
    }
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

/// The labels of a Deployment's pods.
fn pod_labels(deployment: &Yaml) -> Vec<(&str, &str)> {
    deployment["spec"]["template"]["metadata"]["labels"]
        .as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `matchLabels` selector picks pods with `labels`.
fn selects(selector: &[(&str, &str)], labels: &[(&str, &str)]) -> bool {
    !selector.is_empty() && selector.iter().all(|l| labels.contains(l))
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
    for (manifest, docs) in manifests() {
        let policy = &find(&docs, "NetworkPolicy", "scarecrow")["spec"];
        // It covers every pod of the example: each Deployment's selects its
        // own pods, and the policy's selects those too.
        let selector = labels(&policy["podSelector"]);
        for d in all(&docs, "Deployment") {
            let name = d["metadata"]["name"].as_str().expect("name");
            let pods = pod_labels(d);
            assert!(
                selects(&labels(&d["spec"]["selector"]), &pods),
                "{manifest}: Deployment {name} selects its own pods"
            );
            assert!(
                selects(&selector, &pods),
                "{manifest}: the NetworkPolicy covers the pods of {name}"
            );
        }
        assert_eq!(
            strs(&policy["policyTypes"]),
            ["Ingress", "Egress"],
            "{manifest}"
        );

        let ingress = policy["ingress"].as_vec().expect("ingress");
        let mut peers = Vec::new();
        for rule in ingress {
            assert_eq!(
                ports(rule),
                [(9787, "TCP")],
                "{manifest}: only the daemon's port"
            );
            for peer in rule["from"].as_vec().expect("from: never everyone") {
                // Both selectors in one peer: those pods in those namespaces.
                let (pods, namespaces) = (
                    labels(&peer["podSelector"]),
                    labels(&peer["namespaceSelector"]),
                );
                assert!(
                    !pods.is_empty() && !namespaces.is_empty(),
                    "{manifest}: {peer:?}"
                );
                assert!(peer["ipBlock"].is_badvalue(), "{manifest}");
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
            ],
            "{manifest}"
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
            ],
            "{manifest}"
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
            "{manifest}: only to PostgreSQL's pods"
        );
    }
}

/// Peak memory per byte of HTML while a response is held, decoded and
/// parsed: measured at about 8 for text-heavy pages (the comment in
/// deploy/kubernetes.yaml has the figures).
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
    for (manifest, docs) in manifests() {
        for d in all(&docs, "Deployment") {
            let what = format!("{manifest}: {:?}", d["metadata"]["name"]);
            let loaded = config_of(&docs, &what, d);
            let need =
                loaded.concurrency as u64 * loaded.max_body_size.bytes() * DOM_FACTOR + BASELINE;
            let c = &containers(pod_of(d))[0];
            let limit = quantity(
                c["resources"]["limits"]["memory"]
                    .as_str()
                    .expect("a memory limit"),
            );
            assert_eq!(
                limit, need,
                "{what}: {} runs x {} bytes x {DOM_FACTOR} + {BASELINE}",
                loaded.concurrency, loaded.max_body_size
            );
            let request = quantity(
                c["resources"]["requests"]["memory"]
                    .as_str()
                    .expect("a request"),
            );
            assert!(request <= limit, "{what}");
        }
    }
}

/// Every metric an alert uses is one the daemon exports.
#[test]
fn alerts_use_metrics_the_daemon_exports() {
    let metrics = scarecrow::metrics::Metrics::new();
    let text = std::fs::read_to_string(repo("checks/weather.toml")).expect("check");
    let src = scarecrow::config::Source::new("weather.toml", text);
    let (check, _) = scarecrow::config::read_check(&src, &Default::default(), &|_| None);
    metrics.add_check(&check.expect("check"));
    // A replica on PostgreSQL: the series of the members it sees.
    metrics.cluster(true, &BTreeMap::from([("fra", 2), ("ams", 2)]));
    let exported = metrics.render();
    for (manifest, docs) in manifests() {
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
                        "{manifest}: an alert uses {name}, which the daemon does not export"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen >= 5, "{manifest}");
    }
}

/// deploy/kubernetes-locations.yaml: each Deployment is one location of
/// replicas on the PostgreSQL store. The config.toml they share, read with
/// each one's environment, names that location and the store; no two name
/// the same location, and each location's pods are its Deployment's alone.
#[test]
fn each_location_is_a_deployment_of_replicas_on_the_postgresql_store() {
    let docs = load(MANIFESTS[1]);
    let deployments = all(&docs, "Deployment");
    assert!(deployments.len() >= 2, "two locations or more");
    let secret = find(&docs, "Secret", "scarecrow-secrets");
    let mut locations: Vec<String> = Vec::new();
    for d in &deployments {
        let name = d["metadata"]["name"].as_str().expect("name");
        let c = &containers(pod_of(d))[0];
        let env = container_env(&docs, c);
        let location = env
            .get("SCARECROW_LOCATION")
            .unwrap_or_else(|| panic!("{name} sets SCARECROW_LOCATION"));
        let loaded = config_of(&docs, name, d);
        // The config loads, so the location is valid; and it is the one.
        assert_eq!(&loaded.location, location, "{name}");
        assert!(!locations.contains(location), "{name}: {location} twice");
        locations.push(location.clone());
        assert!(
            d["spec"]["replicas"].as_i64().is_some_and(|n| n >= 2),
            "{name}: replicas in the location"
        );
        assert!(
            pod_labels(d).contains(&("scarecrow/location", location.as_str())),
            "{name}: its pods' location label is SCARECROW_LOCATION"
        );

        let store = loaded
            .postgres
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: the store is PostgreSQL"));
        assert_eq!(
            Some(store.url.as_str()),
            secret["stringData"]["store-url"].as_str(),
            "{name}: the store's URL comes from the Secret"
        );
        assert_eq!(
            store.password.as_ref().map(ToString::to_string).as_deref(),
            Some("${file:/run/secrets/scarecrow/store-password}"),
            "{name}"
        );
        assert_eq!(
            mounted_at(pod_of(d), c, "/run/secrets/scarecrow")["secret"]["secretName"].as_str(),
            Some("scarecrow-secrets"),
            "{name}"
        );
        assert!(secret["stringData"]["store-password"].as_str().is_some());

        // Each location's pods belong to its Deployment and its budget only.
        for other in deployments.iter().filter(|o| !std::ptr::eq(**o, *d)) {
            assert!(
                !selects(&labels(&d["spec"]["selector"]), &pod_labels(other)),
                "{name}'s selector also picks {:?}'s pods",
                other["metadata"]["name"]
            );
        }
        let budgets: Vec<&Yaml> = all(&docs, "PodDisruptionBudget")
            .into_iter()
            .filter(|b| selects(&labels(&b["spec"]["selector"]), &pod_labels(d)))
            .collect();
        assert_eq!(budgets.len(), 1, "{name}: one PodDisruptionBudget");
        assert_eq!(
            budgets[0]["spec"]["maxUnavailable"].as_i64(),
            Some(1),
            "{name}"
        );
    }
}
