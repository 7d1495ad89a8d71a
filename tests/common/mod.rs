//! Shared by the end-to-end tests: the demo site on loopback and the CLI.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

/// The demo site served on a free loopback port for the life of the test.
pub struct Site {
    pub url: String,
    client: reqwest::Client,
}

impl Site {
    pub async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(scarecrow::demo::DemoSite::new().serve(listener, std::future::pending()));
        Site {
            url,
            client: reqwest::Client::new(),
        }
    }

    /// Flips a break/fix switch, e.g. `("break", "diesel", "")`.
    pub async fn switch(&self, action: &str, feature: &str, query: &str) {
        let resp = self
            .client
            .post(format!("{}/_demo/{action}/{feature}{query}", self.url))
            .send()
            .await
            .expect("switch");
        assert!(
            resp.status().is_success(),
            "{action} {feature}: {}",
            resp.status()
        );
    }
}

/// Runs the scarecrow binary from the repository root, against `site`.
pub async fn scarecrow(site: &Site, args: &[&str]) -> Output {
    scarecrow_in(Path::new(env!("CARGO_MANIFEST_DIR")), &site.url, args).await
}

pub async fn scarecrow_in(dir: &Path, site_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(args)
        .current_dir(dir)
        .env("SCARECROW_SITE", site_url)
        .env("SCARECROW_DEMO_PASSWORD", scarecrow::demo::DEMO_PASSWORD)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run scarecrow")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
