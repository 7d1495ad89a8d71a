//! The PostgreSQL backend of [`crate::store::Store`] and
//! [`crate::store::Reader`]: the same tables and semantics as SQLite's (the
//! conformance suite runs on both), for teams that already operate
//! PostgreSQL and for what comes next (replicas sharing one store).
//!
//! The writer's connection is owned by the store's writer thread, which
//! reconnects when it breaks: runs nobody waits for are held meanwhile
//! (see [`crate::store::writer`]), transitions fail and the engine keeps
//! them in memory as for any store failure. The synchronous `postgres`
//! client is used everywhere; it runs a runtime of its own, so it is only
//! ever called from a plain thread, never from an async worker.
//!
//! Prepared statements are per connection: behind PgBouncer, session
//! pooling works and transaction pooling does not.

mod connect;
mod error;
mod import;
mod lease;
mod partitions;
mod read;
mod schema;
mod sql;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use postgres::Client;

pub use connect::{Connect, SslMode};
pub use lease::LEASE;
pub use read::Reader;

use error::{DbError, unreachable};

use super::Retention;
use super::rows::{ClaimRow, OutboxRow, RunRow};
use super::writer::{Database, Failure, Op};
use crate::incident::store::{OutboxItem, Snapshot, StoreError};

/// How often old days are dropped and the next ones made.
const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);
/// The longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Opens the store for writing: connects, migrates, takes the lease.
/// Called on the writer thread.
pub(super) fn open(connect: &Connect, retention: Retention) -> Result<Postgres, StoreError> {
    // The caller names the store (`cannot open the store at …`).
    let failed = StoreError;
    let mut client = connect.connect().map_err(failed)?;
    schema::migrate(&mut client).map_err(failed)?;
    let me = lease::Holder::new();
    lease::acquire(&mut client, &me).map_err(failed)?;
    let mut db = Postgres {
        connect: connect.clone(),
        client: Some(client),
        me,
        renewed: Instant::now(),
        lost: None,
        retention,
        days: Default::default(),
        maintained_at: None,
        retry_at: Instant::now(),
        backoff: Duration::ZERO,
    };
    db.maintain_days();
    Ok(db)
}

/// The writer's connection and what it keeps between batches.
pub(super) struct Postgres {
    connect: Connect,
    /// `None` after the connection broke, until it is made again.
    client: Option<Client>,
    me: lease::Holder,
    renewed: Instant,
    /// Who took the lease while this daemon could not renew it (cut off
    /// or paused past it): from then on it writes nothing.
    lost: Option<String>,
    retention: Retention,
    days: partitions::Days,
    maintained_at: Option<Instant>,
    /// No reconnecting before then: a writer that tried on every request
    /// would hold every caller for the connect timeout.
    retry_at: Instant,
    backoff: Duration,
}

impl Postgres {
    /// The connection, made again if it broke (no more often than the
    /// backoff allows) with the lease taken back.
    fn client(&mut self) -> Result<&mut Client, Failure> {
        if let Some(held) = &self.lost {
            return Err(Failure::refused(format!(
                "this daemon lost the store's lease and writes nothing more: {held}"
            )));
        }
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let down = |cause: String| Failure {
                cause,
                unreachable: true,
            };
            if Instant::now() < self.retry_at {
                return Err(down("PostgreSQL is unreachable; retrying".to_owned()));
            }
            let reconnected = self.connect.connect().and_then(|mut client| {
                let held = lease::take(&mut client, &self.me).map_err(|e| e.to_string())?;
                Ok((client, held))
            });
            match reconnected {
                Ok((_, Some(held))) => {
                    self.lose(held);
                    return self.client();
                }
                Ok((client, None)) => {
                    tracing::info!(store = %self.connect, "reconnected to the store");
                    self.backoff = Duration::ZERO;
                    self.renewed = Instant::now();
                    self.client = Some(client);
                }
                Err(e) => {
                    self.backoff = (self.backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                    self.retry_at = Instant::now() + self.backoff;
                    return Err(down(e));
                }
            }
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Runs `f` on the connection; a failure to reach the database drops
    /// it, to be made again.
    fn with<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, DbError>) -> Result<T, Failure> {
        let client = self.client()?;
        f(client).map_err(|e| {
            if let DbError::Lost = e {
                self.lose("another scarecrow took this store's lease over".to_owned());
            }
            let unreachable = matches!(&e, DbError::Sql(e) if unreachable(e));
            if unreachable {
                self.client = None;
            }
            Failure {
                cause: e.to_string(),
                unreachable,
            }
        })
    }

    /// From now on nothing is written: another daemon holds the store.
    fn lose(&mut self, held: String) {
        if self.lost.is_none() {
            tracing::error!("{held}: this daemon lost the store's lease and writes nothing more");
            self.lost = Some(held);
        }
    }

    /// Where age retention starts, as stored timestamps are written.
    fn cutoff(&self) -> String {
        super::rows::ts(&self.retention.cutoff(chrono::Utc::now()))
    }

    /// Hourly: drops the days older than the retention, and makes today's
    /// and tomorrow's partitions ahead of their first run.
    fn maintain_days(&mut self) {
        self.maintained_at = Some(Instant::now());
        let cutoff = self.cutoff();
        let now = chrono::Utc::now();
        let ahead = [
            super::rows::ts(&now),
            super::rows::ts(&(now + chrono::TimeDelta::days(1))),
        ];
        let mut days = std::mem::take(&mut self.days);
        match self.with(|c| days.drop_before(c, &cutoff)) {
            Ok(0) => {}
            Ok(n) => tracing::info!(days = n, "dropped run history older than the retention"),
            Err(f) => tracing::warn!(error = %f.cause, "dropping old run history"),
        }
        if let Err(f) = self.with(|c| days.ensure(c, ahead.iter().map(String::as_str), &cutoff)) {
            tracing::warn!(error = %f.cause, "making the next days' partitions");
        }
        self.days = days;
    }
}

impl Database for Postgres {
    fn location(&self) -> String {
        self.connect.to_string()
    }

    fn write_batch(
        &mut self,
        runs: &[&RunRow],
        ops: &[Op<'_>],
        keep: Retention,
        prune: &BTreeSet<&str>,
    ) -> Result<Vec<Vec<OutboxItem>>, Failure> {
        let cutoff = self.cutoff();
        let holder = self.me.id.clone();
        let mut days = std::mem::take(&mut self.days);
        let result = self.with(|c| {
            days.ensure(c, runs.iter().map(|r| r.started_at.as_str()), &cutoff)?;
            sql::write_batch(c, &holder, runs, ops, keep.runs_per_check, &cutoff, prune)
        });
        self.days = days;
        result
    }

    fn load(&mut self) -> Result<Snapshot, Failure> {
        self.with(sql::load)
    }

    fn claim(&mut self, k: &ClaimRow) -> Result<Vec<OutboxItem>, Failure> {
        let holder = self.me.id.clone();
        self.with(|c| sql::claim(c, &holder, k))
    }

    fn update_delivery(&mut self, o: &OutboxRow, k: &ClaimRow) -> Result<bool, Failure> {
        let holder = self.me.id.clone();
        self.with(|c| sql::update_delivery(c, &holder, o, k))
    }

    fn release(&mut self, claimer: &str) -> Result<(), Failure> {
        let holder = self.me.id.clone();
        self.with(|c| sql::release(c, &holder, claimer))
    }

    fn forget_check(&mut self, check: &str) -> Result<(), Failure> {
        let holder = self.me.id.clone();
        self.with(|c| sql::forget_check(c, &holder, check))
    }

    fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    fn tick(&mut self) {
        if self.lost.is_none() && self.renewed.elapsed() >= lease::RENEW_EVERY {
            let me = self.me.clone();
            match self.with(|c| lease::take(c, &me)) {
                Ok(None) => self.renewed = Instant::now(),
                Ok(Some(held)) => self.lose(held),
                Err(f) => tracing::warn!(error = %f.cause, "renewing the store's lease"),
            }
        }
        if self
            .maintained_at
            .is_none_or(|at| at.elapsed() >= MAINTAIN_EVERY)
        {
            self.maintain_days();
        }
    }

    fn close(mut self) {
        if self.lost.is_none()
            && let Some(mut client) = self.client.take()
        {
            lease::release(&mut client, &self.me);
        }
    }
}
