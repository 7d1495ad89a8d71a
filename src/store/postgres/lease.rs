//! The leader's lease: one `lease` row. The member holding it runs the
//! incident engine; it renews the row well inside its time to live and
//! gives it up when it stops, and the others try to take it once it has
//! expired. Every change of holder raises the row's `epoch`, and every
//! write of the engine checks the epoch it took (see `sql::fence`), so a
//! leader paused or cut off past its lease writes nothing once another
//! has taken over. Times come from the database's clock
//! (`clock_timestamp()`), never from a member's.
//!
//! Not a session advisory lock: a paused process or a half-open connection
//! keeps a session lock for as long as TCP keepalive takes to notice.

use std::time::{Duration, Instant};

use postgres::Client;

use super::error::{DbError, chain};

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the holder renews it: about a third of its life, so two
/// renewals may fail before it lapses.
pub(super) const RENEW_EVERY: Duration = Duration::from_secs(3);

/// This process, as a member and as a lease holder.
#[derive(Debug, Clone)]
pub(super) struct Holder {
    pub id: String,
    pub host: String,
}

impl Holder {
    pub fn new() -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Holder {
            id: uuid::Uuid::new_v4().to_string(),
            host,
        }
    }
}

/// Takes the lease if it is free or expired, or renews it if it is this
/// holder's. Returns its epoch when held, else describes the holder. A
/// holder that takes the lease over (a new epoch) frees the previous
/// leader's claims on notifications in the same transaction: the previous
/// leader can no longer write under them, and they go out at once rather
/// than when the claims expire. (`since` is the transaction's start,
/// `now()`, so the statement can tell a new holder from a renewal.)
pub(super) fn take(client: &mut Client, me: &Holder) -> Result<Result<i64, String>, DbError> {
    let ttl = LEASE.as_secs_f64();
    let mut tx = client.transaction()?;
    // Looked at first without a lock: an upsert locks the row even when it
    // changes nothing, and members trying every second would queue behind
    // the leader's fences.
    let free = tx
        .query_opt(
            "SELECT 1 FROM lease WHERE id = 1 AND holder <> $1 AND expires_at >= clock_timestamp()",
            &[&me.id],
        )?
        .is_none();
    if !free {
        return Ok(Err(describe(&mut tx)?));
    }
    tx.batch_execute(WAIT_BRIEFLY)?;
    let taken = tx.query_opt(
        "INSERT INTO lease (id, holder, host, pid, version, since, expires_at, epoch)
             VALUES (1, $1, $2, $3, $4, now(),
                     clock_timestamp() + make_interval(secs => $5), 1)
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, host = excluded.host,
                 pid = excluded.pid, version = excluded.version,
                 since = CASE WHEN lease.holder = excluded.holder THEN lease.since
                              ELSE excluded.since END,
                 epoch = CASE WHEN lease.holder = excluded.holder THEN lease.epoch
                              ELSE lease.epoch + 1 END,
                 expires_at = clock_timestamp() + make_interval(secs => $5)
             WHERE lease.holder = excluded.holder OR lease.expires_at < clock_timestamp()
             RETURNING epoch, since = now()",
        &[
            &me.id,
            &me.host,
            &i64::from(std::process::id()),
            &env!("CARGO_PKG_VERSION"),
            &ttl,
        ],
    )?;
    if let Some(row) = taken {
        let (epoch, new): (i64, bool) = (row.get(0), row.get(1));
        if new {
            tx.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by IS NOT NULL AND state = 'pending'",
                &[],
            )?;
        }
        tx.commit()?;
        return Ok(Ok(epoch));
    }
    Ok(Err(describe(&mut tx)?))
}

/// Who holds the lease, for messages.
fn describe(tx: &mut postgres::Transaction) -> Result<String, DbError> {
    let row = tx.query_one(
        "SELECT host, pid, version, since::text,
                    greatest(0, extract(epoch FROM expires_at - clock_timestamp()))::float8
             FROM lease WHERE id = 1",
        &[],
    )?;
    let (host, pid, version, since, left): (String, i64, String, String, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    Ok(format!(
        "another scarecrow leads on this store: version {version} on host {host:?} (pid {pid}), since {since}; its lease expires in {left:.0} s unless it renews it"
    ))
}

/// Renews the lease this holder took under `epoch`; `false` if it is no
/// longer its own (another took it over, even if that one's lapsed too:
/// a leader that lost its lease never takes it back, with a new epoch,
/// on its way out).
pub(super) fn renew(client: &mut Client, me: &Holder, epoch: i64) -> Result<bool, DbError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(WAIT_BRIEFLY)?;
    let renewed = tx.execute(
        "UPDATE lease SET expires_at = clock_timestamp() + make_interval(secs => $3)
         WHERE id = 1 AND holder = $1 AND epoch = $2",
        &[&me.id, &epoch, &LEASE.as_secs_f64()],
    )? > 0;
    tx.commit()?;
    Ok(renewed)
}

/// A statement waits this long for the lease row, rather than behind a
/// holder that is paused inside a transaction (until the server ends it).
const WAIT_BRIEFLY: &str = "SET LOCAL lock_timeout = '2s'";

/// Takes the lease, waiting up to [`LEASE`] and one renewal for another
/// holder's to expire: for `store copy` and a resolve without a daemon,
/// which must not write beside a running leader.
pub(super) fn acquire(client: &mut Client, me: &Holder) -> Result<i64, String> {
    let until = Instant::now() + LEASE + RENEW_EVERY;
    let mut said = false;
    loop {
        let held = take(client, me).map_err(|e| format!("taking the store's lease: {e}"))?;
        let held = match held {
            Ok(epoch) => return Ok(epoch),
            Err(held) => held,
        };
        if Instant::now() >= until {
            return Err(format!(
                "{held}. Stop the daemons on the store first (or, to resolve an incident, ask one of them through its API)"
            ));
        }
        if !said {
            tracing::warn!("{held}; waiting for it to expire");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Gives the lease up, so a member need not wait for it: it expires now,
/// and the row keeps its epoch.
pub(super) fn release(client: &mut Client, me: &Holder) {
    if let Err(e) = client.execute(
        "UPDATE lease SET expires_at = clock_timestamp() - interval '1 second' WHERE holder = $1",
        &[&me.id],
    ) {
        tracing::warn!(error = %chain(&e), "giving up the store's lease");
    }
}
