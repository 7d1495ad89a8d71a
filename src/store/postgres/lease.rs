//! One writer per store: the daemon that writes holds the `lease` row,
//! renews it well inside its time to live and gives it up when it stops. A
//! second daemon waits for the lease to expire (a daemon that was killed
//! leaves it behind) and is refused if it does not: two incident engines
//! over one store would declare every incident twice. Times come from the
//! database's clock (`clock_timestamp()`), never from a member's.
//!
//! Not a session advisory lock: a paused process or a half-open connection
//! keeps a session lock for as long as TCP keepalive takes to notice.

use std::time::{Duration, Instant};

use postgres::Client;

use super::error::{DbError, chain};

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often the holder renews it: a third of its life, so two renewals
/// may fail before it lapses.
pub(super) const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Who holds the lease: this process.
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

/// Takes (or renews) the lease if it is free or this holder's; else
/// describes the daemon that holds it.
pub(super) fn take(client: &mut Client, me: &Holder) -> Result<Option<String>, DbError> {
    let ttl = LEASE.as_secs_f64();
    let taken = client.query_opt(
        "INSERT INTO lease (id, holder, host, pid, version, since, expires_at)
             VALUES (1, $1, $2, $3, $4, clock_timestamp(),
                     clock_timestamp() + make_interval(secs => $5))
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, host = excluded.host,
                 pid = excluded.pid, version = excluded.version,
                 since = CASE WHEN lease.holder = excluded.holder THEN lease.since
                              ELSE excluded.since END,
                 expires_at = excluded.expires_at
             WHERE lease.holder = excluded.holder OR lease.expires_at < clock_timestamp()
             RETURNING holder",
        &[
            &me.id,
            &me.host,
            &i64::from(std::process::id()),
            &env!("CARGO_PKG_VERSION"),
            &ttl,
        ],
    )?;
    if taken.is_some() {
        return Ok(None);
    }
    let row = client.query_one(
        "SELECT host, pid, version, since::text,
                    greatest(0, extract(epoch FROM expires_at - clock_timestamp()))::float8
             FROM lease WHERE id = 1",
        &[],
    )?;
    let (host, pid, version, since, left): (String, i64, String, String, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    Ok(Some(format!(
        "another scarecrow writes to this store: version {version} on host {host:?} (pid {pid}), since {since}; its lease expires in {left:.0} s unless it renews it"
    )))
}

/// Takes the lease, waiting up to [`LEASE`] and one renewal for another
/// holder's to expire.
pub(super) fn acquire(client: &mut Client, me: &Holder) -> Result<(), String> {
    let until = Instant::now() + LEASE + RENEW_EVERY;
    let mut said = false;
    loop {
        let held = take(client, me).map_err(|e| format!("taking the store's lease: {e}"))?;
        let Some(held) = held else {
            return Ok(());
        };
        if Instant::now() >= until {
            return Err(format!(
                "{held}. One daemon writes to a store: stop the other one, or give this one a store of its own"
            ));
        }
        if !said {
            tracing::warn!("{held}; waiting for it to expire");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Gives the lease up, so the next daemon need not wait for it.
pub(super) fn release(client: &mut Client, me: &Holder) {
    if let Err(e) = client.execute("DELETE FROM lease WHERE holder = $1", &[&me.id]) {
        tracing::warn!(error = %chain(&e), "giving up the store's lease");
    }
}
