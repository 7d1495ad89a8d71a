//! The PostgreSQL backend of [`crate::store::Store`] and
//! [`crate::store::Reader`]: the same tables and semantics as SQLite's (the
//! conformance suite runs on both), for teams that already operate
//! PostgreSQL, and the one replicas share (members, the leader's lease,
//! each check's counters: see `docs/high-availability.md`).
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
mod follow;
mod import;
mod lease;
mod members;
mod partitions;
mod read;
mod schema;
mod sql;

use std::collections::BTreeSet;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use postgres::Client;

pub use connect::{Connect, SslMode};
pub use lease::LEASE;
pub use members::MEMBER_TTL;
pub use read::Reader;

use error::{DbError, unreachable};

use super::Retention;
use super::cluster::{Cluster, Feed};
use super::rows::{ClaimRow, OutboxRow, RunRow};
use super::writer::{Database, Failure, Op};
use crate::incident::store::{OutboxItem, Snapshot, StoreError};

/// How often old days are dropped and the next ones made.
const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);
/// The longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Where a member tells the daemon what it learns each tick.
pub(super) struct Links {
    pub location: String,
    pub cluster: tokio::sync::watch::Sender<Cluster>,
    pub feed: tokio::sync::mpsc::UnboundedSender<Feed>,
    /// When this member last renewed the lease it holds (`None`: it holds
    /// none), for the delivery worker's check before each send.
    pub renewed: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

/// Opens the store for writing: connects and migrates. With `links`, as a
/// member (registered, leading if the lease is free); without, as the
/// store's one writer for `store copy` and a resolve without a daemon,
/// waiting for the lease.
/// Called on the writer thread.
pub(super) fn open(
    connect: &Connect,
    retention: Retention,
    links: Option<Links>,
) -> Result<Postgres, StoreError> {
    // The caller names the store (`cannot open the store at …`).
    let failed = StoreError;
    let mut client = connect.connect().map_err(failed)?;
    schema::migrate(&mut client).map_err(failed)?;
    let me = lease::Holder::new();
    let epoch = match links {
        Some(_) => None,
        None => Some(lease::acquire(&mut client, &me).map_err(failed)?),
    };
    let mut db = Postgres {
        connect: connect.clone(),
        client: Some(client),
        me,
        epoch,
        renewed: Instant::now(),
        lost: None,
        retention,
        days: Default::default(),
        maintained_at: None,
        retry_at: Instant::now(),
        backoff: Duration::ZERO,
        member: links.map(|links| Member {
            links,
            seen: Default::default(),
            renewed: None,
            members: Vec::new(),
            failing: false,
        }),
    };
    // A member leads at once if no one does, and is registered before
    // the daemon shares out its checks.
    db.lead();
    db.follow();
    db.maintain_days();
    Ok(db)
}

/// The writer's connection and what it keeps between batches.
pub(super) struct Postgres {
    connect: Connect,
    /// `None` after the connection broke, until it is made again.
    client: Option<Client>,
    me: lease::Holder,
    /// The lease's epoch while this process leads.
    epoch: Option<i64>,
    /// When the lease was last renewed.
    renewed: Instant,
    /// Who took the lease while this leader could not renew it (cut off
    /// or paused past it): from then on it writes nothing.
    lost: Option<String>,
    retention: Retention,
    days: partitions::Days,
    maintained_at: Option<Instant>,
    /// No reconnecting before then: a writer that tried on every request
    /// would hold every caller for the connect timeout.
    retry_at: Instant,
    backoff: Duration,
    /// `None` for `store copy`, which is no member.
    member: Option<Member>,
}

/// What a member keeps between ticks.
struct Member {
    links: Links,
    seen: follow::Seen,
    /// When its row was last renewed.
    renewed: Option<Instant>,
    members: Vec<super::cluster::Member>,
    /// Whether the last round failed (said once, not every second).
    failing: bool,
}

impl Postgres {
    /// The connection, made again if it broke (no more often than the
    /// backoff allows); a leader checks it still holds its lease.
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
            let epoch = self.epoch;
            let asked = Instant::now();
            let reconnected = self.connect.connect().and_then(|mut client| {
                let held = match epoch {
                    Some(epoch) => Some(
                        lease::renew(&mut client, &self.me, epoch).map_err(|e| e.to_string())?,
                    ),
                    None => None,
                };
                Ok((client, held))
            });
            match reconnected {
                Ok((_, Some(false))) => {
                    self.lose("another scarecrow took this store's lease over".to_owned());
                    return self.client();
                }
                Ok((client, held)) => {
                    tracing::info!(store = %self.connect, "reconnected to the store");
                    self.backoff = Duration::ZERO;
                    if held.is_some() {
                        self.set_renewed(asked);
                    }
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

    /// From now on nothing is written: another member leads.
    fn lose(&mut self, held: String) {
        if self.lost.is_none() {
            tracing::error!("{held}: this daemon lost the store's lease and writes nothing more");
            self.lost = Some(held);
            if let Some(m) = &self.member {
                *m.links
                    .renewed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }
            self.publish();
        }
    }

    /// The lease was taken or renewed by a statement sent at `at`.
    fn set_renewed(&mut self, at: Instant) {
        self.renewed = at;
        if let Some(m) = &self.member {
            *m.links
                .renewed
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(self.renewed);
        }
    }

    /// Renews the lease this process holds, every [`lease::RENEW_EVERY`];
    /// a member that does not lead takes it once it has expired.
    fn lead(&mut self) {
        if self.lost.is_some() {
            return;
        }
        let me = self.me.clone();
        // Before the statement: a renewal that waited for the row counts
        // from when it was asked for, never later.
        let asked = Instant::now();
        match self.epoch {
            Some(epoch) if self.renewed.elapsed() >= lease::RENEW_EVERY => {
                match self.with(|c| lease::renew(c, &me, epoch)) {
                    Ok(true) => self.set_renewed(asked),
                    Ok(false) => {
                        self.lose("another scarecrow took this store's lease over".to_owned())
                    }
                    Err(f) => tracing::warn!(error = %f.cause, "renewing the store's lease"),
                }
            }
            None if self.member.is_some() => match self.with(|c| lease::take(c, &me)) {
                Ok(Ok(epoch)) => {
                    tracing::info!(epoch, "leading: this replica runs the incident engine");
                    self.epoch = Some(epoch);
                    self.set_renewed(asked);
                    // The engine starts from every check's latest run.
                    if let Some(m) = &mut self.member {
                        m.seen.clear();
                    }
                    self.publish();
                }
                Ok(Err(_)) => {}
                Err(f) => tracing::debug!(error = %f.cause, "trying the store's lease"),
            },
            _ => {}
        }
    }

    /// A member's round: renews its row, reads who is alive and what the
    /// members wrote, and tells the daemon. Returns whether it could, if
    /// this is a member.
    fn follow(&mut self) -> Option<bool> {
        let me = self.me.clone();
        let m = self.member.as_mut()?;
        let renew = m
            .renewed
            .is_none_or(|at| at.elapsed() >= lease::RENEW_EVERY);
        let location = m.links.location.clone();
        let seen = std::mem::take(&mut m.seen);
        let leading = self.epoch.is_some() && self.lost.is_none();
        let read = self.with(|c| {
            if renew {
                members::renew(c, &me, &location)?;
            }
            Ok((members::live(c)?, follow::read(c, &seen, leading)?))
        });
        let m = self.member.as_mut()?;
        m.seen = seen;
        match read {
            Ok((members, (feed, seen))) => {
                if renew {
                    m.renewed = Some(Instant::now());
                }
                m.members = members;
                m.seen = seen;
                m.failing = false;
                // Told who leads before the feed that goes with it.
                self.publish();
                if let Some(m) = &self.member {
                    let _ = m.links.feed.send(feed);
                }
                Some(true)
            }
            Err(f) => {
                if !m.failing {
                    m.failing = true;
                    tracing::warn!(error = %f.cause, "reading the members and their runs; trying again every second");
                }
                Some(false)
            }
        }
    }

    /// Tells the daemon who is alive and whether it leads, when that changed.
    fn publish(&self) {
        let Some(m) = &self.member else {
            return;
        };
        let now = Cluster {
            me: self.me.id.clone(),
            location: m.links.location.clone(),
            members: m.members.clone(),
            leading: self.epoch.is_some() && self.lost.is_none(),
        };
        m.links.cluster.send_if_modified(|c| {
            let changed = *c != now;
            if changed {
                *c = now;
            }
            changed
        });
    }

    /// Where age retention starts, as stored timestamps are written.
    fn cutoff(&self) -> String {
        super::rows::ts(&self.retention.cutoff(chrono::Utc::now()))
    }

    /// Hourly: the leader drops the days older than the retention; every
    /// member makes today's and tomorrow's partitions ahead of their first
    /// run, and forgets members long gone.
    fn maintain_days(&mut self) {
        self.maintained_at = Some(Instant::now());
        let cutoff = self.cutoff();
        let now = chrono::Utc::now();
        let ahead = [
            super::rows::ts(&now),
            super::rows::ts(&(now + chrono::TimeDelta::days(1))),
        ];
        let mut days = std::mem::take(&mut self.days);
        if self.epoch.is_some() {
            match self.with(|c| {
                members::forget_gone(c)?;
                follow::forget_asks(c)?;
                days.drop_before(c, &cutoff)
            }) {
                Ok(0) => {}
                Ok(n) => tracing::info!(days = n, "dropped run history older than the retention"),
                Err(f) => tracing::warn!(error = %f.cause, "dropping old run history"),
            }
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
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        let mut days = std::mem::take(&mut self.days);
        let result = self.with(|c| {
            days.ensure(c, runs.iter().map(|r| r.started_at.as_str()), &cutoff)?;
            sql::write_batch(c, leader, runs, ops, keep.runs_per_check, &cutoff, prune)
        });
        self.days = days;
        result
    }

    fn load(&mut self) -> Result<Snapshot, Failure> {
        self.with(sql::load)
    }

    fn claim(&mut self, k: &ClaimRow) -> Result<Vec<OutboxItem>, Failure> {
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        self.with(|c| sql::claim(c, leader, k))
    }

    fn update_delivery(&mut self, o: &OutboxRow, k: &ClaimRow) -> Result<bool, Failure> {
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        self.with(|c| sql::update_delivery(c, leader, o, k))
    }

    fn release(&mut self, claimer: &str) -> Result<(), Failure> {
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        self.with(|c| sql::release(c, leader, claimer))
    }

    fn forget_check(&mut self, check: &str) -> Result<(), Failure> {
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        self.with(|c| sql::forget_check(c, leader, check))
    }

    fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    fn ask(&mut self, incident: &str, note: Option<&str>) -> Result<i64, Failure> {
        self.with(|c| follow::ask(c, incident, note))
    }

    fn answer_of(&mut self, id: i64) -> Result<Option<String>, Failure> {
        self.with(|c| follow::answer_of(c, id))
    }

    fn answer(&mut self, id: i64, answer: &str) -> Result<(), Failure> {
        self.with(|c| follow::answer(c, id, answer))
    }

    fn tick(&mut self) -> Option<bool> {
        self.lead();
        let reached = self.follow();
        if self
            .maintained_at
            .is_none_or(|at| at.elapsed() >= MAINTAIN_EVERY)
        {
            self.maintain_days();
        }
        reached
    }

    fn close(mut self) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        if self.lost.is_none() && self.epoch.is_some() {
            lease::release(&mut client, &self.me);
        }
        if self.member.is_some()
            && let Err(e) = members::leave(&mut client, &self.me)
        {
            tracing::warn!(error = %e, "leaving the store's members");
        }
    }
}
