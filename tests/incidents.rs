//! Incidents end to end: real daemons, a real SQLite store, a real webhook
//! receiver on loopback. Declare once, lose nothing, resolve on recovery.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::{Reaped, Receiver, Site, free_port, run_daemon};
use hmac::{KeyInit as _, Mac as _};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const KEY: &str = "scarecrow:default:diesel-order";

/// A daemon in its own directory: config, one fast critical check, a store.
/// Fields drop in order: the daemon before its directory.
struct Daemon {
    child: Option<Reaped>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Daemon {
    fn setup(name: &str, site: &str, hook: &str) -> Daemon {
        let port = free_port();
        let tmp = common::scratch(&format!("incidents-{name}"));
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("checks")).expect("mkdir");
        let config = format!(
            r#"listen = "127.0.0.1:{port}"
shutdown_grace = "5s"

[store]
path = "data/scarecrow.db"

[roles]
coordinator = "@duty-coordinator"

[[sinks]]
name = "hook"
type = "webhook"
url = "{hook}"
secrets = ["${{secret:SCARECROW_TEST_WEBHOOK_SECRET}}"]
"#
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let check = format!(
            r#"description = "The diesel order form takes an order"
critical = true
owner = "shop-team"
runbook = "https://wiki.example.org/runbooks/diesel-order"
every = "1s"

[[step]]
name = "open the order form"
url = "{site}/diesel/order"

[[step.expect.css]]
selector = "form#order input[name=liters]"
exists = true
"#
        );
        std::fs::write(dir.join("checks/diesel-order.toml"), check).expect("check");
        Daemon {
            child: None,
            dir: tmp,
            port,
        }
    }

    fn start(&mut self) {
        let child = run_daemon(&self.dir.path().join("config.toml"))
            .env("SCARECROW_TEST_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start daemon");
        self.child = Some(Reaped(child));
    }

    async fn signal(&mut self, sig: &str) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let _ = std::process::Command::new("kill")
            .args([sig, &pid])
            .status();
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data/scarecrow.db")
    }
}

async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks the Standard Webhooks signature of a request.
fn verify(r: &common::Received) {
    let id = &r.headers["webhook-id"];
    let ts = &r.headers["webhook-timestamp"];
    let key = base64::engine::general_purpose::STANDARD
        .decode(&SECRET["whsec_".len()..])
        .expect("key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(format!("{id}.{ts}.{}", r.raw).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let given = &r.headers["webhook-signature"];
    assert!(
        given.split(' ').any(|s| s == expected),
        "bad signature {given}, expected {expected}"
    );
    assert_eq!(
        r.body["id"].as_str(),
        Some(id.as_str()),
        "body id is the webhook-id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn declares_once_signed_with_evidence_and_resolves_on_recovery() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut d = Daemon::setup("declare", &site.url, &hook.url);
    d.start();
    eventually("first run", 20, async || {
        d.metric(r#"scarecrow_check_up{check="diesel-order"}"#)
            .await
            .filter(|v| *v == 1.0)
    })
    .await;

    site.switch("break", "diesel", "").await;
    let declared = eventually("declaration", 20, async || {
        hook.delivered("incident.declared").pop()
    })
    .await;
    verify(&declared);
    let data = &declared.body["data"];
    assert_eq!(data["key"], KEY);
    assert_eq!(data["check"], "diesel-order");
    assert_eq!(data["owner"], "shop-team");
    assert_eq!(data["roles"]["coordinator"], "@duty-coordinator");
    assert_eq!(data["evidence"]["step"], "open the order form");
    assert_eq!(data["evidence"]["reason"], "assertion");
    assert_eq!(data["evidence"]["consecutive_failures"], 2);
    // Each failure also comes structured: where it looked and its message.
    let failures = data["evidence"]["failures"].as_array().expect("failures");
    let details = data["evidence"]["failure_details"]
        .as_array()
        .expect("failure_details");
    assert!(!details.is_empty());
    assert_eq!(details.len(), failures.len());
    for (d, f) in details.iter().zip(failures) {
        assert_eq!(&d["message"], f);
        assert!(d["query"].as_str().is_some_and(|q| !q.is_empty()), "{d}");
    }
    assert!(
        data["title"]
            .as_str()
            .is_some_and(|t| t.len() <= 130 && t.contains("diesel-order"))
    );

    // Further failures update nothing and declare nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.delivered("incident.declared").len(), 1);
    assert_eq!(
        d.metric(r#"scarecrow_incident_open{check="diesel-order"}"#)
            .await,
        Some(1.0)
    );

    site.switch("fix", "diesel", "").await;
    let resolved = eventually("resolution", 20, async || {
        hook.delivered("incident.resolved").pop()
    })
    .await;
    verify(&resolved);
    assert_eq!(resolved.body["data"]["key"], KEY);
    assert_eq!(resolved.body["data"]["incident"], data["incident"]);
    assert_eq!(resolved.body["data"]["resolution"], "recovered");
    assert_eq!(
        d.metric(r#"scarecrow_incident_open{check="diesel-order"}"#)
            .await,
        Some(0.0)
    );
    assert_eq!(
        d.metric(r#"scarecrow_incidents_declared_total{check="diesel-order"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(d.signal("-TERM").await, Some(0));
}

/// A receiver answering 503 with Retry-After for a while still gets the
/// declaration exactly once (by event id) when it recovers.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_gets_the_declaration_once_it_recovers() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    hook.answer(503);
    let mut d = Daemon::setup("retry", &site.url, &hook.url);
    d.start();
    site.switch("break", "diesel", "").await;
    eventually("two refused attempts", 40, async || {
        (hook.all().len() >= 2).then_some(())
    })
    .await;
    hook.answer(200);
    let declared = eventually("declaration", 60, async || {
        hook.delivered("incident.declared").pop()
    })
    .await;
    let attempts = hook.all();
    assert!(
        attempts
            .iter()
            .all(|r| r.headers["webhook-id"] == declared.headers["webhook-id"]),
        "one event, one id"
    );
    assert_eq!(hook.delivered("incident.declared").len(), 1);
    assert!(
        d.metric(
            r#"scarecrow_notifications_total{event="incident.declared",result="retry",sink="hook"}"#
        )
        .await
            >= Some(2.0)
    );
    assert_eq!(d.signal("-TERM").await, Some(0));
}

/// SIGKILL after the declaration was committed but before it was delivered:
/// after a restart it is delivered under the same event id, nothing new is
/// declared, and the recovery resolves the incident from before the crash.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_delivers_after_restart_and_resolves_the_same_incident() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    hook.answer(503);
    let mut d = Daemon::setup("kill", &site.url, &hook.url);
    d.start();
    site.switch("break", "diesel", "").await;
    let first = eventually("a refused attempt", 30, async || hook.all().pop()).await;
    d.signal("-KILL").await;
    hook.answer(200);
    d.start();
    let declared = eventually("declaration after restart", 40, async || {
        hook.delivered("incident.declared").pop()
    })
    .await;
    assert_eq!(
        declared.headers["webhook-id"], first.headers["webhook-id"],
        "the same event, not a new one"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ids: std::collections::HashSet<_> = hook
        .all()
        .iter()
        .map(|r| r.body["data"]["incident"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "no second incident after the restart");

    site.switch("fix", "diesel", "").await;
    let resolved = eventually("resolution", 20, async || {
        hook.delivered("incident.resolved").pop()
    })
    .await;
    assert_eq!(
        resolved.body["data"]["incident"],
        declared.body["data"]["incident"]
    );
    assert_eq!(d.signal("-TERM").await, Some(0));
}

/// SIGTERM while a declaration is being delivered: the delivery in flight
/// finishes, the store flushes, the daemon exits 0; after a restart nothing
/// is sent again under a new id and the recovery resolves the same incident.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_declaration_loses_nothing_and_sends_nothing_twice() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    hook.delay(2000);
    let mut d = Daemon::setup("drain", &site.url, &hook.url);
    d.start();
    site.switch("break", "diesel", "").await;
    eventually("a delivery in flight", 30, async || {
        (hook.arrived.load(std::sync::atomic::Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    assert_eq!(d.signal("-TERM").await, Some(0), "exits 0 after draining");
    let declared = hook.delivered("incident.declared");
    assert_eq!(
        declared.len(),
        1,
        "the delivery in flight finished before exit"
    );
    hook.delay(0);
    d.start();
    site.switch("fix", "diesel", "").await;
    let resolved = eventually("resolution", 30, async || {
        hook.delivered("incident.resolved").pop()
    })
    .await;
    assert_eq!(
        resolved.body["data"]["incident"],
        declared[0].body["data"]["incident"]
    );
    let ids: std::collections::HashSet<String> = hook
        .all()
        .iter()
        .filter(|r| r.body["type"] == "incident.declared")
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "never sent again under a new id");
    assert_eq!(
        hook.delivered("incident.declared").len(),
        1,
        "not sent twice"
    );
    assert_eq!(d.signal("-TERM").await, Some(0));
}

/// The store locked by another process: declarations still go out from
/// memory, `scarecrow_store_up` shows 0, and the store catches up after.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_store_still_declares_and_catches_up() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut d = Daemon::setup("locked", &site.url, &hook.url);
    d.start();
    eventually("store up", 20, async || {
        d.metric("scarecrow_store_up").await.filter(|v| *v == 1.0)
    })
    .await;
    let lock = rusqlite::Connection::open(d.db()).expect("open db");
    lock.execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the store");
    site.switch("break", "diesel", "").await;
    eventually("declaration while locked", 60, async || {
        hook.delivered("incident.declared").pop()
    })
    .await;
    assert_eq!(d.metric("scarecrow_store_up").await, Some(0.0));
    lock.execute_batch("COMMIT").expect("unlock");
    drop(lock);
    eventually("store back up", 60, async || {
        d.metric("scarecrow_store_up").await.filter(|v| *v == 1.0)
    })
    .await;
    assert_eq!(d.signal("-TERM").await, Some(0));
    let listed = incidents_json(d.dir.path());
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["key"], KEY);
}

/// Two replicas watching the same check: the receiver, keyed on the
/// incident key, sees one open incident.
#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_one_receiver_one_open_incident_by_key() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut a = Daemon::setup("replica-a", &site.url, &hook.url);
    let mut b = Daemon::setup("replica-b", &site.url, &hook.url);
    a.start();
    b.start();
    site.switch("break", "diesel", "").await;
    eventually("both declare", 30, async || {
        (hook.delivered("incident.declared").len() >= 2).then_some(())
    })
    .await;
    let open: std::collections::HashSet<String> = hook
        .delivered("incident.declared")
        .iter()
        .map(|r| r.body["data"]["key"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(open.len(), 1, "one open incident by key: {open:?}");
    assert!(open.contains(KEY));
    assert_eq!(a.signal("-TERM").await, Some(0));
    assert_eq!(b.signal("-TERM").await, Some(0));
}

/// `incidents resolve` with no daemon running, while the incident's
/// declaration is still pending (the receiver refused it and the daemon
/// stopped before the retry): the receiver gets the declaration first,
/// then the resolution, never the resolution alone or before it.
#[tokio::test(flavor = "multi_thread")]
async fn an_offline_resolution_never_reaches_a_sink_before_its_pending_declaration() {
    let site = Site::start().await;
    let hook = Receiver::start().await;
    hook.answer(503);
    let mut d = Daemon::setup("offline-resolve", &site.url, &hook.url);
    d.start();
    site.switch("break", "diesel", "").await;
    eventually("a refused declaration", 30, async || hook.all().pop()).await;
    assert_eq!(d.signal("-TERM").await, Some(0));
    hook.answer(200);

    let listed = incidents_json(d.dir.path());
    let id = listed[0]["id"]
        .as_str()
        .expect("the incident's id")
        .to_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["incidents", "resolve", &id, "--config"])
        .arg(d.dir.path().join("config.toml"))
        .env("SCARECROW_TEST_WEBHOOK_SECRET", SECRET)
        .output()
        .expect("incidents resolve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let delivered: Vec<String> = hook
        .all()
        .iter()
        .filter(|r| (200..300).contains(&r.status) && r.body["data"]["incident"] == id.as_str())
        .map(|r| r.body["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        delivered,
        ["incident.declared", "incident.resolved"],
        "in order, each once"
    );
}

fn incidents_json(dir: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scarecrow"))
        .args(["incidents", "--format", "json", "--config"])
        .arg(dir.join("config.toml"))
        .output()
        .expect("incidents");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}
