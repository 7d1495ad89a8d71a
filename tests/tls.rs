//! HTTPS checks against real TLS servers on loopback, with a test CA and
//! certificates made here: certificate expiry on the step and in metrics,
//! the sub-reasons of a failed handshake, `min_cert_days`, and the `[tls]`
//! (CA, client certificate, pinned certificate), `resolve` and `proxy`
//! options, each read from check-file text.

mod common;
mod tls_support;

use std::path::Path;

use common::scratch;
use scarecrow::check::{Check, Outcome, Reason, Redacted, RunResult};
use scarecrow::config::{Defaults, Diagnostic, Source, read_check};
use scarecrow::metrics::Metrics;
use scarecrow::probe::{Probe, ProbeSettings};
use tls_support::{
    Ca, connect_proxy, day, fingerprint, https_server, https_server_h2,
    https_server_with_wrong_key, midnight, self_signed,
};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Reads check-file text as `<dir>/<name>.toml`, with its diagnostics.
fn load(dir: &Path, name: &str, text: &str) -> (Option<Check>, Vec<Diagnostic>) {
    let src = Source::new(dir.join(format!("{name}.toml")), text.to_owned());
    read_check(&src, &Defaults::default(), &|_| None)
}

/// Reads check-file text that must load without errors.
fn check(dir: &Path, name: &str, text: &str) -> Check {
    let (check, diags) = load(dir, name, text);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    check.unwrap()
}

async fn run(check: &Check) -> Redacted<RunResult> {
    let probe = Probe::new(ProbeSettings::default()).unwrap();
    let errors = probe.prepare([check]);
    assert!(errors.is_empty(), "{errors:?}");
    probe.run(check).await
}

fn failure(r: &Redacted<RunResult>) -> (Reason, &str) {
    match &r.outcome {
        Outcome::Failure {
            reason, message, ..
        } => (*reason, message.as_str()),
        Outcome::Success => panic!("expected a failure: {r:#?}"),
    }
}

fn passed(r: &Redacted<RunResult>) {
    assert!(r.outcome.is_success(), "{r:#?}");
}

const CA_ONLY: &str = "[tls]\nca = \"ca.pem\"\n";

/// A check of one GET of `url`, after `extra` top-level keys, with `expect`
/// lines in its `[step.expect]`.
fn flow(extra: &str, url: &str, expect: &str) -> String {
    format!(
        "timeout = \"10s\"\n{extra}\n[[step]]\nname = \"home\"\nurl = \"{url}\"\n\n[step.expect]\nstatus = 200\n{expect}"
    )
}

#[tokio::test]
async fn a_trusted_certificate_passes_and_its_expiry_is_on_the_step_and_in_metrics() {
    let dir = scratch("valid");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["localhost"], -1, 90), None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let c = check(
        dir.path(),
        "valid",
        &flow(
            CA_ONLY,
            &url,
            "min_cert_days = 14\nbody_contains = \"hello\"",
        ),
    );
    let result = run(&c).await;
    passed(&result);
    let step = &result.steps[0];
    assert_eq!(step.http().unwrap().host.as_deref(), Some("localhost"));
    assert_eq!(step.http().unwrap().cert_expires_at, Some(midnight(90)));
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json["steps"][0]["cert_expires_at"],
        midnight(90).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    let metrics = Metrics::new();
    metrics.add_check(&c);
    metrics.observe_run(&result);
    let line = format!(
        "scarecrow_tls_certificate_expiry_timestamp_seconds{{check=\"valid\",host=\"localhost\"}} {}",
        midnight(90).timestamp()
    );
    let text = metrics.render();
    assert!(
        text.lines().any(|l| l == line),
        "missing {line:?} in:\n{text}"
    );
}

#[tokio::test]
async fn an_expired_certificate_fails_as_tls_expired() {
    let dir = scratch("expired");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["localhost"], -30, -2), None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let result = run(&check(dir.path(), "expired", &flow(CA_ONLY, &url, ""))).await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    let on = day(-2).format("%Y-%m-%d").to_string();
    assert!(
        message.contains(&format!("tls (expired): certificate expired on {on}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_as_hostname_mismatch() {
    let dir = scratch("mismatch");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["other.test"], -1, 90), None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let result = run(&check(dir.path(), "mismatch", &flow(CA_ONLY, &url, ""))).await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    assert!(
        message.contains("tls (hostname_mismatch): certificate is for other.test, not localhost"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_issuer_fails_and_insecure_accepts_it() {
    let dir = scratch("unknown");
    let ca = Ca::new();
    let addr = https_server(&ca.issue(&["localhost"], -1, 90), None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let result = run(&check(dir.path(), "unknown", &flow("", &url, ""))).await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    assert!(message.contains("tls (unknown_issuer): "), "{message}");

    let text = flow("[tls]\ninsecure = true\n", &url, "");
    let (insecure, diags) = load(dir.path(), "insecure", &text);
    assert!(
        diags
            .iter()
            .any(|d| !d.is_error() && d.message.contains("verification OFF")),
        "{diags:?}"
    );
    let result = run(&insecure.unwrap()).await;
    passed(&result);
    assert_eq!(
        result.steps[0].http().unwrap().cert_expires_at,
        Some(midnight(90))
    );
}

#[tokio::test]
async fn a_self_signed_certificate_fails_as_self_signed_and_names_its_fingerprint() {
    let dir = scratch("self-signed");
    // Both kinds: a plain server certificate, and a CA certificate as
    // `openssl req -x509` makes it (which webpki refuses as a server's).
    for ca in [false, true] {
        let cert = self_signed(&["localhost"], ca, -1, 90);
        let addr = https_server(&cert, None).await;
        let url = format!("https://localhost:{}/", addr.port());
        let result = run(&check(dir.path(), "self-signed", &flow("", &url, ""))).await;
        let (reason, message) = failure(&result);
        assert_eq!(reason, Reason::Tls, "{message}");
        let expected = format!(
            "tls (self_signed): self-signed certificate (not issued by a trusted CA); \
             to trust this one certificate, pin it in `[tls]`: pin_sha256 = \"{}\"",
            fingerprint(&cert.der)
        );
        assert!(message.contains(&expected), "CA {ca}: {message}");
    }
}

#[tokio::test]
async fn a_pinned_certificate_passes_over_http2_for_any_name_until_it_expires() {
    let dir = scratch("pinned");
    let cert = self_signed(&["localhost"], true, -1, 90);
    let (addr, protocols) = https_server_h2(&cert).await;
    let url = format!("https://localhost:{}/", addr.port());
    let pin = fingerprint(&cert.der);
    // As openssl prints it, and in lower case without colons.
    for written in [pin.clone(), pin.replace(':', "").to_lowercase()] {
        let extra = format!("[tls]\npin_sha256 = \"{written}\"\n");
        let result = run(&check(
            dir.path(),
            "pinned",
            &flow(&extra, &url, "body_contains = \"hello\""),
        ))
        .await;
        passed(&result);
        assert_eq!(
            result.steps[0].http().unwrap().cert_expires_at,
            Some(midnight(90))
        );
    }
    assert_eq!(*protocols.lock().unwrap(), ["h2", "h2"]);

    // Several pins: any of them (a certificate and its successor).
    let other = self_signed(&["localhost"], false, -1, 90);
    let extra = format!(
        "[tls]\npin_sha256 = [\"{}\", \"{pin}\"]\n",
        fingerprint(&other.der)
    );
    passed(&run(&check(dir.path(), "pins", &flow(&extra, &url, ""))).await);

    // A pin is for a certificate, for any name, within its dates.
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let extra = format!("[tls]\npin_sha256 = \"{pin}\"\n");
    passed(&run(&check(dir.path(), "by-address", &flow(&extra, &url, ""))).await);
    let expired = self_signed(&["localhost"], true, -30, -2);
    let (addr, _) = https_server_h2(&expired).await;
    let url = format!("https://localhost:{}/", addr.port());
    let extra = format!("[tls]\npin_sha256 = \"{}\"\n", fingerprint(&expired.der));
    let result = run(&check(
        dir.path(),
        "pinned-expired",
        &flow(&extra, &url, ""),
    ))
    .await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    let on = day(-2).format("%Y-%m-%d").to_string();
    assert!(
        message.contains(&format!("tls (expired): certificate expired on {on}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_pin_or_a_server_without_the_pinned_key_fails() {
    let dir = scratch("wrong-pin");
    let cert = self_signed(&["localhost"], false, -1, 90);
    let other = self_signed(&["localhost"], false, -1, 90);
    let addr = https_server(&cert, None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let extra = format!("[tls]\npin_sha256 = \"{}\"\n", fingerprint(&other.der));
    let result = run(&check(dir.path(), "wrong-pin", &flow(&extra, &url, ""))).await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    let expected = format!(
        "tls (pin_mismatch): the server's certificate has SHA-256 {}, which `pin_sha256` does not list",
        fingerprint(&cert.der)
    );
    assert!(message.contains(&expected), "{message}");

    // The pinned certificate, served by someone without its key: the
    // handshake signature does not verify.
    let impostor = https_server_with_wrong_key(&cert, &other).await;
    let url = format!("https://localhost:{}/", impostor.port());
    let extra = format!("[tls]\npin_sha256 = \"{}\"\n", fingerprint(&cert.der));
    let result = run(&check(dir.path(), "impostor", &flow(&extra, &url, ""))).await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    assert!(
        message.contains(
            "tls (other): the server's handshake signature does not match its certificate"
        ),
        "{message}"
    );
}

#[test]
fn bad_pins_are_load_errors_at_their_key() {
    let dir = scratch("bad-pin");
    write(dir.path(), "ca.pem", &Ca::new().pem);
    for (tls, expected) in [
        ("pin_sha256 = \"AB:CD\"", "expected a SHA-256 fingerprint"),
        ("pin_sha256 = []", "expected a SHA-256 fingerprint"),
        ("pin_sha256 = \"zz\"", "expected a SHA-256 fingerprint"),
        (
            "ca = \"ca.pem\"\npin_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            "`pin_sha256` and `ca` cannot be used together",
        ),
        (
            "insecure = true\npin_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            "`pin_sha256` and `insecure` cannot be used together",
        ),
    ] {
        let text = format!("[tls]\n{tls}\n\n[[step]]\nurl = \"https://localhost/\"\n");
        let (check, diags) = load(dir.path(), "bad-pin", &text);
        assert!(check.is_none(), "{tls}");
        assert!(
            diags
                .iter()
                .any(|d| d.is_error() && d.message.contains(expected)),
            "{tls}: {diags:?}"
        );
    }
}

#[tokio::test]
async fn min_cert_days_fails_as_tls_for_a_certificate_about_to_expire() {
    let dir = scratch("soon");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["localhost"], -1, 5), None).await;
    let url = format!("https://localhost:{}/", addr.port());
    let result = run(&check(
        dir.path(),
        "soon",
        &flow(CA_ONLY, &url, "min_cert_days = 14"),
    ))
    .await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    let date = day(5).format("%Y-%m-%d").to_string();
    assert!(
        message.contains("certificate of localhost expires in 4 days")
            && message.contains(&format!("({date}), expected more than 14")),
        "{message}"
    );
}

#[tokio::test]
async fn resolve_reaches_a_loopback_server_and_still_verifies_the_name() {
    let dir = scratch("resolve");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["shop.test"], -1, 90), None).await;
    let url = format!("https://shop.test:{}/", addr.port());
    let extra = format!("resolve = {{ \"shop.test\" = \"127.0.0.1\" }}\n{CA_ONLY}");
    let result = run(&check(dir.path(), "resolve", &flow(&extra, &url, ""))).await;
    passed(&result);
    assert_eq!(
        result.steps[0].http().unwrap().host.as_deref(),
        Some("shop.test")
    );

    // The same server reached as another name: the name is still verified.
    let extra = format!("resolve = {{ \"pay.test\" = \"127.0.0.1\" }}\n{CA_ONLY}");
    let url = format!("https://pay.test:{}/", addr.port());
    let result = run(&check(dir.path(), "resolve-other", &flow(&extra, &url, ""))).await;
    assert!(
        failure(&result).1.contains("tls (hostname_mismatch)"),
        "{result:#?}"
    );
}

#[tokio::test]
async fn a_proxy_tunnels_to_a_name_only_it_can_reach() {
    let dir = scratch("proxy");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let addr = https_server(&ca.issue(&["shop.test"], -1, 90), None).await;
    let proxy = connect_proxy().await;
    let url = format!("https://shop.test:{}/", addr.port());
    let extra = format!("proxy = \"http://{proxy}\"\n{CA_ONLY}");
    let result = run(&check(dir.path(), "proxy", &flow(&extra, &url, ""))).await;
    passed(&result);
}

#[tokio::test]
async fn mutual_tls_passes_with_the_client_certificate_and_fails_without() {
    let dir = scratch("mtls");
    let ca = Ca::new();
    write(dir.path(), "ca.pem", &ca.pem);
    let client = ca.issue(&["scarecrow-probe"], -1, 90);
    std::fs::create_dir_all(dir.path().join("client")).unwrap();
    write(dir.path(), "client/probe.pem", &client.cert);
    write(dir.path(), "client/probe.key", &client.key);
    let addr = https_server(&ca.issue(&["localhost"], -1, 90), Some(&ca)).await;
    let url = format!("https://localhost:{}/", addr.port());
    let with =
        format!("{CA_ONLY}client_cert = \"client/probe.pem\"\nclient_key = \"client/probe.key\"\n");
    passed(&run(&check(dir.path(), "mtls", &flow(&with, &url, ""))).await);

    let result = run(&check(
        dir.path(),
        "no-client-cert",
        &flow(CA_ONLY, &url, ""),
    ))
    .await;
    let (reason, message) = failure(&result);
    assert_eq!(reason, Reason::Tls, "{message}");
    assert!(
        message.contains("requires a client certificate"),
        "{message}"
    );
}

#[test]
fn bad_tls_files_are_load_errors_at_their_key() {
    let dir = scratch("load");
    write(dir.path(), "not-a-cert.pem", "hello\n");
    let text = "\n[tls]\nca = \"missing.pem\"\nclient_cert = \"not-a-cert.pem\"\n\n[[step]]\nurl = \"https://localhost/\"\n";
    let (check, diags) = load(dir.path(), "load", text);
    assert!(check.is_none());
    let at = |line: usize| {
        diags
            .iter()
            .find(|d| d.line == line)
            .map(|d| (d.col, d.message.clone()))
    };
    let (col, message) = at(3).expect("an error on line 3");
    assert_eq!(col, 6, "{message}");
    assert!(
        message.contains("cannot read") && message.contains("missing.pem"),
        "{message}"
    );
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.line == 4)
        .map(|d| d.message.as_str())
        .collect();
    assert!(
        errors.iter().any(|m| m.contains("no certificate")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|m| m.contains("`client_cert` needs `client_key`")),
        "{errors:?}"
    );
}

#[test]
fn resolve_and_proxy_values_are_checked_at_load() {
    let dir = scratch("values");
    let text = "resolve = { \"shop.test\" = \"not-an-ip\" }\nproxy = \"socks5://p:1080\"\n\n[[step]]\nurl = \"https://shop.test/\"\n";
    let (check, diags) = load(dir.path(), "values", text);
    assert!(check.is_none());
    let messages: Vec<_> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert!(
        messages
            .iter()
            .any(|(l, m)| *l == 1 && m.contains("expected an IP address")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(l, m)| *l == 2 && m.contains("http:// or https:// proxy")),
        "{messages:?}"
    );
}
