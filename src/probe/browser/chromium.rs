//! The daemon's one Chromium: started at the first browser step, in a
//! process group of its own with an empty environment (the daemon's holds
//! secrets), restarted when it died or stopped answering, and killed with
//! every process it started when the daemon drops it.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{Mutex, Semaphore};

use super::cdp::Cdp;
use crate::check::BrowserOptions;

/// How long a started browser has to answer its first command.
const START: Duration = Duration::from_secs(20);
/// How long a browser suspected of hanging has to answer.
const PING: Duration = Duration::from_secs(3);
/// The end of Chromium's standard error kept to say why it did not start.
const STDERR_TAIL: usize = 4096;

/// Every flag: headless, and nothing that reaches out to the network on
/// its own (a closed network refuses it, many connections at a time).
const FLAGS: &[&str] = &[
    "--headless",
    "--remote-debugging-pipe",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--disable-quic",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--no-proxy-server",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--password-store=basic",
    "--use-mock-keychain",
    "--window-size=1280,800",
    "about:blank",
];

/// The browser and the bound on browser steps running at once.
#[derive(Debug)]
pub(crate) struct Chromium {
    options: BrowserOptions,
    running: Arc<Mutex<Option<Arc<Running>>>>,
    pub(super) slots: Semaphore,
}

/// A started browser: its connection and its process group.
#[derive(Debug)]
pub(crate) struct Running {
    pub cdp: Cdp,
    child: std::sync::Mutex<Option<tokio::process::Child>>,
    group: Option<rustix::process::Pid>,
    dir: PathBuf,
}

impl Chromium {
    pub(crate) fn new(options: BrowserOptions) -> Chromium {
        Chromium {
            slots: Semaphore::new(options.concurrency.max(1)),
            options,
            running: Arc::default(),
        }
    }

    /// Closes the browser, if it runs: asked first, so it ends its own
    /// processes and the daemon reaps the one it started; killed with its
    /// group when it does not within [`PING`].
    pub(crate) async fn close(&self) {
        let Some(running) = self.running.lock().await.take() else {
            return;
        };
        let _ =
            tokio::time::timeout(PING, running.cdp.call(None, "Browser.close", json!({}))).await;
        let child = running
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut child) = child
            && tokio::time::timeout(PING, child.wait()).await.is_err()
        {
            let _ = child.start_kill();
        }
    }

    pub(crate) fn options(&self) -> &BrowserOptions {
        &self.options
    }

    /// The running browser, started (again) if it is not; the error is a
    /// `setup` failure's message.
    pub(crate) async fn get(&self) -> Result<Arc<Running>, String> {
        let mut slot = Arc::clone(&self.running).lock_owned().await;
        if let Some(r) = slot.as_ref().filter(|r| !r.cdp.is_closed()) {
            return Ok(Arc::clone(r));
        }
        if slot.take().is_some() {
            tracing::warn!("the browser exited; starting it again");
        }
        // Started by a task of its own, which holds the slot: a step that
        // stops waiting does not kill a browser half started, and the
        // next step takes it.
        let options = self.options.clone();
        let starting = tokio::spawn(async move {
            let started = start(&options).await.map(Arc::new);
            if let Ok(r) = &started {
                *slot = Some(Arc::clone(r));
            }
            started
        });
        starting
            .await
            .unwrap_or_else(|e| Err(format!("starting the browser failed: {e}")))
    }

    /// A step gave up waiting on `suspect`: if it does not answer within
    /// [`PING`], it is killed, and the next step starts another.
    pub(crate) async fn check(&self, suspect: &Arc<Running>) {
        let answered = tokio::time::timeout(
            PING,
            suspect.cdp.call(None, "Browser.getVersion", json!({})),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if answered {
            return;
        }
        let mut running = self.running.lock().await;
        if running.as_ref().is_some_and(|r| Arc::ptr_eq(r, suspect)) {
            running.take();
        }
        tracing::warn!("the browser stopped answering; killing it");
        // Now, not when the last page lets go of it: a page waiting on a
        // hung browser would hold it forever.
        suspect.kill();
    }
}

/// Starts a browser as `options` say; the error is a `setup` failure's
/// message.
async fn start(options: &BrowserOptions) -> Result<Running, String> {
    let exe = executable(options)?;
    let dir =
        profile_dir().map_err(|e| format!("cannot make the browser's profile folder: {e}"))?;
    let (browser_reads, to_browser) = std::io::pipe().map_err(|e| e.to_string())?;
    let (from_browser, browser_writes) = std::io::pipe().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.env_clear()
        .env("HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .env("XDG_CACHE_HOME", &dir)
        .arg(format!("--user-data-dir={}", dir.display()))
        .args(FLAGS)
        .args((!options.sandbox).then_some("--no-sandbox"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd.fd_mappings(vec![
        FdMapping {
            parent_fd: browser_reads.into(),
            child_fd: 3,
        },
        FdMapping {
            parent_fd: browser_writes.into(),
            child_fd: 4,
        },
    ])
    .map_err(|e| e.to_string())?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the browser {}: {e}", exe.display()))?;
    // The child's ends are closed here, so its exit reads as end of file.
    drop(cmd);
    let stderr = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                let over = tail.len().saturating_sub(STDERR_TAIL);
                tail.drain(..over);
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    });
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let cdp = Cdp::new(
        pipe::Sender::from_owned_fd(to_browser.into()).map_err(|e| e.to_string())?,
        pipe::Receiver::from_owned_fd(from_browser.into()).map_err(|e| e.to_string())?,
    );
    let running = Running {
        cdp,
        child: std::sync::Mutex::new(Some(child)),
        group,
        dir,
    };
    let answer = tokio::time::timeout(
        START,
        running.cdp.call(None, "Browser.getVersion", json!({})),
    )
    .await;
    match answer {
        Ok(Ok(version)) => {
            tracing::info!(
                version = version["product"].as_str().unwrap_or("?"),
                sandbox = options.sandbox,
                "browser started"
            );
            Ok(running)
        }
        _ => {
            drop(running);
            let said = match stderr {
                Some(task) => tokio::time::timeout(PING, task)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                None => String::new(),
            };
            Err(why_not_started(&exe, &said, options.sandbox))
        }
    }
}

/// What a user reads when the browser did not start: the setting to look
/// at when it was the sandbox, and the end of what it said.
fn why_not_started(exe: &Path, said: &str, sandbox: bool) -> String {
    let last = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(nothing)")
        .trim();
    let last: String = last.chars().take(300).collect();
    if sandbox && said.to_ascii_lowercase().contains("sandbox") {
        return format!(
            "the browser {} cannot start with its sandbox (`[browser] sandbox = true`): {last}; run as a user without root and with user namespaces, or set `[browser] sandbox = false`",
            exe.display()
        );
    }
    format!("the browser {} did not start: {last}", exe.display())
}

/// The executable browser steps would start; the error says why there is
/// none.
pub(crate) fn executable(options: &BrowserOptions) -> Result<PathBuf, String> {
    match &options.path {
        Some(p) if p.components().count() == 1 => {
            let name = p.to_string_lossy();
            find(&[&name]).ok_or_else(|| {
                format!("Chromium is not installed: no `{name}` on PATH (`[browser] path`)")
            })
        }
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => Err(format!(
            "Chromium is not installed at {} (`[browser] path`)",
            p.display()
        )),
        None => find(&["chromium", "chromium-browser", "google-chrome"]).ok_or_else(|| {
            "Chromium is not installed: no `chromium`, `chromium-browser` or `google-chrome` on PATH (install it, or set `[browser] path`)".to_owned()
        }),
    }
}

/// The first of `names` on `PATH`.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// The profile folders' prefix; the daemon's process id follows it.
const PROFILE: &str = "scarecrow-browser-";

/// A fresh, empty profile for each start. Profiles a killed daemon left
/// behind (its process id is gone) are removed first.
fn profile_dir() -> std::io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp)?.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(PROFILE))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = tmp.join(format!(
        "{PROFILE}{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

impl Running {
    /// Kills the whole group (renderers, zygote, GPU process), not only
    /// the one the daemon started, and fails every command waiting.
    fn kill(&self) {
        if let Some(group) = self.group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        if let Some(child) = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            let _ = child.start_kill();
        }
        self.cdp.close();
    }
}

impl Drop for Running {
    /// Tokio reaps the child it owns once killed.
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
