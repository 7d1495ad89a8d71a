//! Reload requests: a debounced watch of the checks directory and SIGHUP.
//! Only events that can change what a rescan reads ask for one: creating,
//! writing, removing and renaming. Reads are events too (inotify reports
//! opens and closes), and the rescan itself reads every file, so a watch
//! that took every event reloaded forever after one `cat`. The rescan diffs
//! by content, so events need not name a `.toml` file (a Kubernetes
//! ConfigMap update only swaps the `..data` symlink).

use std::path::Path;
use std::time::Duration;

use notify::event::{EventKind, MetadataKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Something changed under the checks directory.
    Files,
    /// SIGHUP: re-read `config.toml` too.
    Signal,
}

/// Keeps the watch alive; dropping it stops watching (and ends the
/// debouncing task, whose channel closes with the watcher).
pub struct Watch {
    _watcher: RecommendedWatcher,
}

/// Sends [`Trigger::Files`] on `tx` at most once per `debounce` while files
/// under `dir` change. Must be called within a tokio runtime.
pub fn watch(
    dir: &Path,
    debounce: Duration,
    tx: mpsc::UnboundedSender<Trigger>,
) -> notify::Result<Watch> {
    // One slot: a burst of events while a trigger is pending is one trigger.
    let (changed_tx, changed) = mpsc::channel(1);
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if event.need_rescan() || changes_content(event.kind) => {
                let _ = changed_tx.try_send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("watching the checks directory: {e}"),
        })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    tokio::spawn(coalesce(changed, debounce, tx));
    Ok(Watch { _watcher: watcher })
}

/// Whether an event of `kind` can change what a rescan reads. Opening,
/// reading and closing a file cannot; nor can its access time.
fn changes_content(kind: EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        // Data, a rename (`Name`) and permissions, which decide whether a
        // file can be read at all.
        EventKind::Modify(_) => true,
        // A backend's event it cannot name may be a change: rescan.
        EventKind::Any => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

/// Waits out `quiet` after the first change of a burst (an editor's save, a
/// ConfigMap swap: several events), then asks for one rescan.
async fn coalesce(
    mut changed: mpsc::Receiver<()>,
    quiet: Duration,
    tx: mpsc::UnboundedSender<Trigger>,
) {
    while changed.recv().await.is_some() {
        tokio::time::sleep(quiet).await;
        while changed.try_recv().is_ok() {}
        if tx.send(Trigger::Files).is_err() {
            return;
        }
    }
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
