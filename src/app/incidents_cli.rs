//! `scarecrow incidents`: list incidents from the store (while the daemon
//! runs, too) and resolve one by hand.

use std::fmt::Write as _;

use chrono::Utc;

use super::Exit;
use crate::cli::{IncidentsArgs, IncidentsCommand, ListFormat};
use crate::config::{self, Config};
use crate::incident::store::{Claimer, OutboxItem, Store as _, Transition};
use crate::incident::{Event, Incident};
use crate::store::Reader;

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
    let reader = Reader::open(&super::incidents::backend(config))?;
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
/// daemon running, writes the resolution to the store and sends it here.
async fn resolve(config: &Config, id: &str, note: Option<String>) -> anyhow::Result<Exit> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/api/v1/incidents/{id}/resolve");
    let client = reqwest::Client::builder()
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

async fn resolve_offline(config: &Config, id: &str, note: Option<String>) -> anyhow::Result<Exit> {
    let store = super::incidents::open_store(config)?;
    let claimer = Claimer::new(super::incidents::CLAIM_LEASE);
    let snapshot = store.load().await?;
    let Some((check, mut state)) = snapshot
        .states
        .into_iter()
        .find(|(_, s)| s.open.as_ref().is_some_and(|i| i.id == id))
    else {
        eprintln!("error: no open incident {id}");
        return Ok(Exit::CheckFailed);
    };
    let Some(event) = state.resolve_manually(note, Utc::now()) else {
        return Ok(Exit::CheckFailed);
    };
    let now = Utc::now();
    let sinks: Vec<_> = super::incidents::build_sinks(config)?
        .into_iter()
        .filter(|s| s.accepts(&event.incident.feature, true))
        .collect();
    let outbox: Vec<OutboxItem> = sinks
        .iter()
        .map(|s| OutboxItem::new(&event, s.name(), now))
        .collect();
    store
        .commit(
            Transition {
                check,
                state,
                event: event.clone(),
                outbox: outbox.clone(),
            },
            &claimer,
        )
        .await?;
    println!("resolved {id} (no daemon was running)");
    for (item, sink) in outbox.into_iter().zip(&sinks) {
        deliver(&store, &claimer, item, sink.as_ref(), &event).await;
    }
    store.close().await;
    Ok(Exit::Ok)
}

/// One attempt; a failed one stays pending for the daemon to retry.
async fn deliver(
    store: &crate::store::Store,
    claimer: &Claimer,
    mut item: OutboxItem,
    sink: &dyn crate::incident::sink::Sink,
    event: &Event,
) {
    use crate::incident::sink::Attempt;
    use crate::incident::store::DeliveryState;
    let attempt = sink.send(event, 1).await;
    item.attempts = 1;
    match &attempt {
        Attempt::Delivered { .. } => {
            item.state = DeliveryState::Delivered;
            item.delivered_at = Some(Utc::now());
        }
        other => item.last_error = Some(other.to_string()),
    }
    println!("  {}: {attempt}", item.sink);
    if let Err(e) = store.update_delivery(claimer, item).await {
        eprintln!("warning: {e}");
    }
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
                    print!("{}", crate::incident::postmortem::markdown(&d))
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

fn draft(config: &Config, id: &str) -> anyhow::Result<Option<crate::incident::postmortem::Draft>> {
    let reader = Reader::open(&super::incidents::backend(config))?;
    let Some((incident, events, notifications)) = reader.incident(id)? else {
        return Ok(None);
    };
    let until = incident.resolved_at.unwrap_or_else(Utc::now);
    let runs = reader.runs_between(
        &incident.feature.check,
        incident.first_failure_at,
        until,
        10_000,
    )?;
    let since = Utc::now() - chrono::TimeDelta::days(90);
    let counts = reader.incident_counts(since)?;
    let facts = crate::incident::postmortem::Facts {
        check_90d: counts.get(&incident.feature.check).copied().unwrap_or(0),
        group_90d: counts.values().sum(),
        budget_90d: config.budget_90d,
        events: events.into_iter().map(|e| (e.at, e.kind)).collect(),
        runs,
        notifications,
        incident,
    };
    Ok(Some(crate::incident::postmortem::draft(facts)))
}
