//! `scarecrow store copy`: moving a SQLite store's history to PostgreSQL.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::Exit;
use crate::cli::StoreCommand;
use crate::store::copy::copy;
use crate::store::postgres::{Connect, SslMode};

pub async fn run(command: StoreCommand) -> Exit {
    let StoreCommand::Copy {
        from,
        to,
        sslmode,
        ca,
    } = command;
    // Off the async workers: the PostgreSQL client blocks on a runtime of
    // its own, and the copy is one long blocking job.
    let outcome = tokio::task::spawn_blocking(move || copy_store(from, &to, &sslmode, ca))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|copied| copied);
    match outcome {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Config
        }
    }
}

fn copy_store(from: PathBuf, to: &str, sslmode: &str, ca: Option<PathBuf>) -> anyhow::Result<()> {
    let ssl = SslMode::parse(sslmode).with_context(|| {
        format!("--sslmode {sslmode:?}: one of disable, prefer, require, verify-ca, verify-full")
    })?;
    let ca = ca
        .map(|path| {
            crate::fsread::read(&path, 1 << 20).with_context(|| format!("--ca {}", path.display()))
        })
        .transpose()?;
    let password = std::env::var("PGPASSWORD").ok();
    let target = Connect::new(to, password, ssl, ca)
        .map_err(anyhow::Error::msg)
        .context("--to")?;
    let started = Instant::now();
    let mut shown = Instant::now();
    let copied = copy(&from, &target, |table, read| {
        // A line every few seconds on long copies, none on short ones.
        if shown.elapsed().as_secs() >= 5 {
            eprintln!("{table}: {read} rows read");
            shown = Instant::now();
        }
    })?;
    for (table, read, inserted) in &copied.tables {
        println!("{table}: {read} read, {inserted} new");
    }
    println!(
        "copied {} into {target} in {:.1} s",
        from.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
