//! `[incidents] store_down = "alone"`: a replica that cannot reach the
//! PostgreSQL store for a lease's length declares from its own runs, with
//! no lease and no quorum — the one exception to "only the fenced leader
//! declares". Every replica that sees a check fail may declare it, so a
//! declaration goes out at least once, and receivers fold the copies on
//! the incident key (`scarecrow:{group}:{check}`), which the leader's
//! incidents carry too. Once the store is back these engines declare
//! nothing new: an incident declared alone ends when this replica's runs
//! recover (resolved, sent) or when the store has an incident with the
//! same key open (handed over, nothing sent: the receivers' alert goes on
//! under the leader's incident).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::check::RunRecord;
use crate::config::Config;
use crate::incident::engine::{Command, Engine, EngineObserver, Policy};
use crate::incident::memory::Memory;
use crate::incident::outbox::{DeliveryObserver, Worker};
use crate::incident::store::Claimer;
use crate::incident::{Event, EventKind, Incident};
use crate::sink::Sink;
use crate::store::Store;

/// How long the store is out of reach before a replica declares alone:
/// by then a leader cut off from it has stopped sending too.
const AFTER: Duration = crate::store::postgres::LEASE;

pub struct Alone {
    commands: mpsc::UnboundedSender<Command>,
    store: Arc<Store>,
    /// The checks whose incident this replica declared alone and holds
    /// open.
    open: Arc<Mutex<HashSet<String>>>,
    gate: Mutex<Gate>,
}

/// Whether this replica judges alone, as its runs found the store.
#[derive(Default)]
struct Gate {
    /// Since when the store has been out of reach.
    down_since: Option<Instant>,
    /// Whether the last run was judged alone.
    alone: bool,
}

impl Alone {
    /// Starts the engine and its delivery worker, sending to `sinks` (its
    /// own: their pacing is apart from the leader's) and telling
    /// `telemetry`; they stop once the `Alone` is dropped (at shutdown,
    /// after the last run).
    pub fn start<T: EngineObserver + DeliveryObserver>(
        config: &Config,
        store: Arc<Store>,
        sinks: Vec<Arc<Sink>>,
        telemetry: Arc<T>,
        claimer: Claimer,
    ) -> Arc<Alone> {
        let open = Arc::new(Mutex::new(HashSet::new()));
        let observer = Arc::new(Watch {
            inner: telemetry.clone(),
            open: open.clone(),
        });
        let memory = Arc::new(Memory);
        let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
        let engine = Engine::new(
            memory.clone(),
            Default::default(),
            sinks.clone(),
            outbox_tx,
            claimer.clone(),
            observer,
            config.instance_group.clone(),
        )
        .alone()
        .linked(config.external_url.clone());
        let worker = Worker::new(memory, sinks, telemetry, config.notify_retry_for, claimer);
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let stop = CancellationToken::new();
            let worker = tokio::spawn(worker.run(outbox_rx, stop.clone()));
            engine.run(rx).await;
            stop.cancel();
            let _ = worker.await;
        });
        Arc::new(Alone {
            commands,
            store,
            open,
            gate: Mutex::default(),
        })
    }

    /// One of this replica's runs: judged here while the store has been
    /// out of reach for [`AFTER`], or while this replica holds the check's
    /// incident declared alone.
    pub fn run(&self, run: &Arc<RunRecord>, policy: &Arc<Policy>) {
        let (alone, began) = {
            let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            match self.store.is_healthy() {
                true => gate.down_since = None,
                false => _ = gate.down_since.get_or_insert_with(Instant::now),
            }
            let alone = gate.down_since.is_some_and(|t| t.elapsed() >= AFTER);
            let began = alone && !gate.alone;
            gate.alone = alone;
            (alone, began)
        };
        if began {
            // Runs counted in an earlier outage are no part of this one.
            let _ = self.commands.send(Command::FreshStart);
        }
        let holding = !alone
            && self
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&run.result.check);
        if alone || holding {
            let _ = self.commands.send(Command::Run {
                run: Arc::clone(run),
                policy: Arc::clone(policy),
                streak: None,
            });
        }
    }

    /// The incidents the store has open (read each second): one this
    /// replica declared alone whose key is among them is handed over.
    pub fn store_open(&self, open: &[Incident]) {
        let mut held = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if held.is_empty() {
            return;
        }
        for i in open {
            if held.remove(&i.feature.check) {
                let _ = self.commands.send(Command::HandOver {
                    check: i.feature.check.clone(),
                });
            }
        }
    }
}

/// The engine's telemetry, and which checks have an incident open here.
struct Watch<T> {
    inner: Arc<T>,
    open: Arc<Mutex<HashSet<String>>>,
}

impl<T: EngineObserver> EngineObserver for Watch<T> {
    fn event(&self, event: &Event) {
        let check = &event.incident.feature.check;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match event.kind {
            EventKind::Declared => {
                tracing::warn!(%check, incident = %event.incident.id, key = %event.incident.key, "declared alone: the store is out of reach, and this replica's own runs fail");
                open.insert(check.clone());
            }
            EventKind::Resolved => {
                open.remove(check);
            }
            EventKind::Updated | EventKind::Reminder => {}
        }
        drop(open);
        self.inner.event(event);
    }

    fn store_up(&self, _: bool) {
        // The memory never fails; the real store's health is reported by
        // its own writes.
    }

    fn incident_counts(&self, _: &std::collections::BTreeMap<String, u64>) {
        // The leader counts them, from the store.
    }

    fn folded(&self, reason: &'static str) {
        self.inner.folded(reason);
    }
}
