//! Reload requests: a debounced watch of the checks directory and SIGHUP.
//! Any event asks for a rescan; the rescan diffs by content, so events need
//! not name a `.toml` file (a Kubernetes ConfigMap update only swaps the
//! `..data` symlink).

use std::path::Path;
use std::time::Duration;

use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer, notify};
use tokio::sync::mpsc;

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Something changed under the checks directory.
    Files,
    /// SIGHUP: re-read `config.toml` too.
    Signal,
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
}

/// Sends [`Trigger::Files`] on `tx` at most once per `debounce` while files
/// under `dir` change.
pub fn watch(
    dir: &Path,
    debounce: Duration,
    tx: mpsc::UnboundedSender<Trigger>,
) -> notify::Result<Watch> {
    let mut debouncer = new_debouncer(debounce, move |events: DebounceEventResult| match events {
        Ok(events) if !events.is_empty() => {
            let _ = tx.send(Trigger::Files);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("watching the checks directory: {e}"),
    })?;
    debouncer
        .watcher()
        .watch(dir, notify::RecursiveMode::Recursive)?;
    Ok(Watch {
        _debouncer: debouncer,
    })
}

/// Forwards every SIGHUP as [`Trigger::Signal`].
pub fn on_sighup(tx: mpsc::UnboundedSender<Trigger>) -> std::io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if tx.send(Trigger::Signal).is_err() {
                return;
            }
        }
    });
    Ok(())
}
