//! `scarecrow notify --test SINK`: a clearly marked test declaration and
//! its resolution, sent through one configured sink directly (not through
//! the outbox, and whatever its routing), with what the receiver answered.

use std::time::Duration;

use chrono::Utc;

use super::Exit;
use crate::cli::NotifyArgs;
use crate::config::{self, LogFormat};
use crate::incident::{Event, EventKind};
use crate::sink::{Attempt, Sink, test_events};

/// A wait the sink or receiver asks for that is still worth waiting out here.
const MAX_WAIT: Duration = Duration::from_secs(10);
const MAX_ATTEMPTS: u32 = 3;

pub async fn run(args: NotifyArgs) -> Exit {
    super::init_tracing("warn", LogFormat::Text);
    let config = match config::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Exit::Config;
        }
    };
    let Some(spec) = config.sinks.iter().find(|s| s.name == args.sink) else {
        eprintln!("error: no sink named `{}` in the config", args.sink);
        let names = config.sinks.iter().map(|s| s.name.as_str());
        match config::diagnostic::did_you_mean(&args.sink, names.clone()) {
            Some(name) => eprintln!("help: did you mean `{name}`?"),
            None if config.sinks.is_empty() => eprintln!("help: no sinks are configured"),
            None => eprintln!(
                "help: the configured sinks are {}",
                names.collect::<Vec<_>>().join(", ")
            ),
        }
        return Exit::Config;
    };
    let sink = match crate::sink::build(spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: sink `{}`: {e}", spec.name);
            return Exit::Config;
        }
    };
    let roles = config.roles.for_owner(None);
    let events = test_events(&config.instance_group, roles, Utc::now());
    println!(
        "sending a [TEST] incident ({}) through sink `{}`",
        events[0].incident.key, spec.name
    );
    let mut delivered = true;
    for event in &events {
        let attempt = send(&sink, event).await;
        delivered &= matches!(attempt, Attempt::Delivered { .. });
    }
    if delivered {
        println!("both were delivered");
        Exit::Ok
    } else {
        println!("not delivered; see above");
        Exit::CheckFailed
    }
}

/// Sends `event` in the slot of the sink's known rate limit (which spaces
/// the two messages on Slack), waiting out a short `Retry-After` a few times.
async fn send(sink: &Sink, event: &Event) -> Attempt {
    let what = match event.kind {
        EventKind::Resolved => "resolution",
        _ => "declaration",
    };
    let mut n = 1;
    loop {
        if let Some(limit) = sink.pace() {
            tokio::time::sleep(limit.reserve().min(MAX_WAIT)).await;
        }
        let attempt = sink.send(event, n).await;
        println!("  {what}: {attempt}");
        match &attempt {
            Attempt::Retry {
                retry_after: Some(wait),
                ..
            }
            | Attempt::Throttled {
                retry_after: Some(wait),
                ..
            } if n < MAX_ATTEMPTS && *wait <= MAX_WAIT => {
                tokio::time::sleep(*wait).await;
                n += 1;
            }
            _ => return attempt,
        }
    }
}
