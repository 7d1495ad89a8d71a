//! `scarecrow incidents`: list incidents from the store (while the daemon
//! runs, too) and resolve one by hand.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Exit;
use crate::cli::{IncidentsArgs, IncidentsCommand, ListFormat};
use crate::config::{self, Config};
use crate::incident::engine::{Command, Engine, EngineObserver};
use crate::incident::outbox::{DeliveryObserver, Worker};
use crate::incident::store::{Claimer, OutboxItem, Store as _};
use crate::incident::{Event, Incident, postmortem};
use crate::secret::Secrets;
use crate::store::{Reader, Store};

/// How long `incidents resolve` with no daemon running delivers before it
/// leaves what is still pending to the daemon.
const DELIVER_FOR: Duration = Duration::from_secs(30);

pub async fn run(args: IncidentsArgs) -> Exit {
    let config = match config::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    let result = match args.command {
        None => list(&config, args.open, args.format),
        Some(IncidentsCommand::Resolve { id, note }) => resolve(&config, &id, note).await,
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::CheckFailed
        }
    }
}

fn list(config: &Config, open_only: bool, format: ListFormat) -> anyhow::Result<Exit> {
    let reader = Reader::open(&super::incidents::backend(config, &Secrets::default())?)?;
    let incidents = reader.incidents(open_only, 500)?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&incidents)?),
        ListFormat::Human => print!("{}", table(&incidents)),
    }
    Ok(Exit::Ok)
}

fn table(incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return "no incidents\n".to_owned();
    }
    let mut out = String::new();
    for i in incidents {
        let state = match (i.resolved_at, i.duration()) {
            (Some(at), Some(d)) => format!(
                "resolved {} after {}",
                at.format("%Y-%m-%d %H:%M"),
                crate::check::words::human(d.to_std().unwrap_or_default())
            ),
            _ => "OPEN".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}  {}  declared {}  {state}",
            i.id,
            i.feature.check,
            i.declared_at.format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(out, "    {}", i.title);
    }
    out
}

/// Resolves through the running daemon, so its state machine knows; with no
/// daemon running, through an engine and a delivery worker of its own.
async fn resolve(config: &Config, id: &str, note: Option<String>) -> anyhow::Result<Exit> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/api/v1/incidents/{id}/resolve");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let body = serde_json::json!({ "note": note }).to_string();
    let request = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status.is_success() {
                println!("resolved {id} through the running daemon; it delivers the resolution");
                return Ok(Exit::Ok);
            }
            eprintln!("error: the daemon answered {status}: {body}");
            Ok(Exit::CheckFailed)
        }
        Err(e) if e.is_connect() => resolve_offline(config, id, note).await,
        Err(e) => Err(e.into()),
    }
}

/// With no daemon running, the incident is resolved the way the daemon
/// would: by the engine, and delivered by a delivery worker of this
/// process through the outbox, with its ordering rules (a declaration
/// still pending goes out before the resolution). It delivers for up to
/// [`DELIVER_FOR`]; what is still pending then is the daemon's to send.
async fn resolve_offline(config: &Config, id: &str, note: Option<String>) -> anyhow::Result<Exit> {
    let backend = super::incidents::backend(config, &Secrets::default())?;
    let store = Store::open_alone(&backend, super::incidents::retention(config))
        .with_context(|| format!("cannot open the store at {backend}"))?;
    let store = Arc::new(store);
    let snapshot = store.load().await?;
    let sinks = super::incidents::build_sinks(config)?;
    let claimer = Claimer::new(super::incidents::CLAIM_LEASE);
    let (outbox, delivery) = mpsc::unbounded_channel();
    let engine = Engine::new(
        store.clone(),
        snapshot.states,
        sinks.clone(),
        outbox,
        claimer.clone(),
        Arc::new(Printed),
        config.instance_group.clone(),
    );
    let (commands, rx) = mpsc::unbounded_channel();
    let engine = tokio::spawn(engine.run(rx));
    let (reply, answer) = oneshot::channel();
    let sent = commands.send(Command::Resolve {
        incident: id.to_owned(),
        note,
        reply,
    });
    drop(commands);
    let resolved = match (sent, answer.await) {
        (Ok(()), Ok(resolved)) => resolved,
        _ => Err("the incident engine stopped".to_owned()),
    };
    // Gone with its commands, the engine lets go of its outbox sender: the
    // worker then stops once it has nothing pending.
    let _ = engine.await;
    if let Err(e) = resolved {
        eprintln!("error: {e}");
        store.close().await;
        return Ok(Exit::CheckFailed);
    }
    println!("resolved {id} (no daemon was running)");
    let stop = CancellationToken::new();
    let worker = Worker::new(
        store.clone(),
        sinks,
        Arc::new(Printed),
        config.notify_retry_for,
        claimer,
    );
    let worker = tokio::spawn(worker.run(delivery, stop.clone()));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::time::sleep(DELIVER_FOR).await;
            stop.cancel();
        }
    });
    let _ = worker.await;
    store.close().await;
    Ok(Exit::Ok)
}

/// What the engine and the worker report, for this command's output.
struct Printed;

impl EngineObserver for Printed {
    fn event(&self, _event: &Event) {}
    fn store_up(&self, _up: bool) {}
    fn incident_counts(&self, _counts: &std::collections::BTreeMap<String, u64>) {}
    fn folded(&self, _reason: &'static str) {}
}

impl DeliveryObserver for Printed {
    fn attempted(&self, item: &OutboxItem, result: &'static str) {
        println!("  {}: {} {result}", item.sink, item.event.kind.as_str());
    }

    fn throttled(&self, _item: &OutboxItem) {}

    fn backlog(&self, _pending: usize, _oldest: Option<chrono::DateTime<Utc>>) {}
}

/// `scarecrow postmortem ID`: a draft from the facts in the store.
pub fn postmortem(
    id: &str,
    config: Option<&std::path::Path>,
    format: crate::cli::DraftFormat,
) -> Exit {
    let config = match config::load_config(config) {
        Ok(c) => c,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    match draft(&config, id) {
        Ok(Some(d)) => {
            match format {
                crate::cli::DraftFormat::Markdown => {
                    print!("{}", postmortem::markdown(&d))
                }
                crate::cli::DraftFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default())
                }
            }
            Exit::Ok
        }
        Ok(None) => {
            eprintln!("error: no incident {id}");
            Exit::CheckFailed
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::CheckFailed
        }
    }
}

fn draft(config: &Config, id: &str) -> anyhow::Result<Option<postmortem::Draft>> {
    let reader = Reader::open(&super::incidents::backend(config, &Secrets::default())?)?;
    let Some((incident, events, notifications)) = reader.incident(id)? else {
        return Ok(None);
    };
    let mut events: Vec<_> = events.into_iter().map(happened).collect();
    let mut notifications = notifications;
    // The earlier incidents of the same outage, each linked from the next.
    let mut earlier = Vec::new();
    let mut previous = incident.previous_incident.clone();
    while let Some(id) = previous.take() {
        if earlier.len() >= MAX_LINKED {
            break;
        }
        let Some((before, mut their_events, mut their_notifications)) = reader.incident(&id)?
        else {
            break;
        };
        previous = before.previous_incident.clone();
        events.extend(their_events.drain(..).map(happened));
        notifications.append(&mut their_notifications);
        earlier.insert(0, before);
    }
    let start = earlier.first().unwrap_or(&incident).first_failure_at;
    let until = incident.resolved_at.unwrap_or_else(Utc::now);
    let runs = reader.runs_between(&incident.feature.check, start, until, 10_000)?;
    let since = Utc::now() - chrono::TimeDelta::days(90);
    let counts = reader.incident_counts(since)?;
    let checks = config::load_checks(
        std::slice::from_ref(&config.checks_dir),
        &config.defaults,
        &config::process_env,
    );
    let coverage = checks
        .checks
        .iter()
        .find(|c| c.name == incident.feature.check)
        .map(postmortem::Coverage::of);
    let facts = postmortem::Facts {
        check_90d: counts.get(&incident.feature.check).copied().unwrap_or(0),
        group_90d: counts.values().sum(),
        budget_90d: config.budget_90d,
        events,
        runs,
        notifications,
        coverage,
        earlier,
        incident,
    };
    Ok(Some(postmortem::draft(facts)))
}

/// Incidents followed back through `previous_incident`, at most.
const MAX_LINKED: usize = 50;

fn happened(e: crate::store::EventRow) -> postmortem::Happened {
    postmortem::Happened {
        id: e.id,
        incident: e.incident_id,
        kind: e.kind,
        at: e.at,
    }
}
