//! Proxies are opt-in: proxy variables of the environment are ignored (and
//! said so), `[defaults] proxy` routes the checks through one, `no_proxy`
//! keeps hosts direct. Through `scarecrow once`, against loopback servers.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{scratch, stderr, stdout};

/// A loopback "proxy": answers every request itself, `proxied`, and counts.
async fn proxy() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || async move {
        counted.fetch_add(1, Ordering::SeqCst);
        "proxied"
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// The site the check asks for.
async fn site() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "direct" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `scarecrow once` in `dir` with `config.toml` holding `defaults`, one
/// check expecting `body`, and the proxy variables `env` set.
async fn once(dir: &Path, site: &str, defaults: &str, body: &str, env: &[(&str, &str)]) -> Output {
    std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
    let config = format!("listen = \"127.0.0.1:0\"\n\n[defaults]\n{defaults}\n");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let check =
        format!("[[step]]\nurl = \"{site}/ok\"\n\n[step.expect]\nbody_contains = \"{body}\"\n");
    std::fs::write(dir.join("checks/page.toml"), check).expect("check");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"));
    command
        .args(["once", "--config", "config.toml"])
        .current_dir(dir)
        .env_remove("RUST_LOG");
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        command.env_remove(name).env_remove(name.to_lowercase());
    }
    command.envs(env.iter().copied());
    command.output().await.expect("run scarecrow")
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_variables_are_ignored_with_a_warning() {
    let (proxy, hits) = proxy().await;
    let site = site().await;
    let tmp = scratch("proxy-env");
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("all_proxy", proxy.as_str()),
    ];
    let out = once(tmp.path(), &site, "", "direct", &env).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert!(
        err.contains("HTTP_PROXY, all_proxy set but ignored"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_proxy_routes_checks_through_it_but_not_to_no_proxy_hosts() {
    let (proxy, hits) = proxy().await;
    let site = site().await;
    let tmp = scratch("proxy-defaults");
    let defaults = format!("proxy = \"{proxy}\"");
    let out = once(tmp.path(), &site, &defaults, "proxied", &[]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(!err.contains("ignored"), "{err}");

    let defaults = format!("proxy = \"{proxy}\"\nno_proxy = [\"127.0.0.1\"]");
    let out = once(tmp.path(), &site, &defaults, "direct", &[]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_proxy_errors_are_load_errors_at_their_key() {
    let site = site().await;
    let tmp = scratch("proxy-errors");
    for (defaults, message) in [
        (
            "no_proxy = [\"example.org\"]",
            "`no_proxy` needs a `proxy` in `[defaults]`",
        ),
        (
            "proxy = \"socks5://127.0.0.1:1080\"",
            "expected an http:// or https:// proxy URL with a host, found scheme `socks5`",
        ),
        (
            "proxy = \"http://127.0.0.1:3128\"\nno_proxy = [\"a,b\"]",
            "expected a host, domain or IP network, one per entry",
        ),
    ] {
        let out = once(tmp.path(), &site, defaults, "direct", &[]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{defaults}: {err}");
        assert!(err.contains(message), "{defaults}: {err}");
    }
}
