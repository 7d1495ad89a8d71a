//! Membership: every daemon on the store keeps a row in `members`, renewed
//! every [`RENEW_EVERY`](super::lease::RENEW_EVERY); a row not renewed
//! within [`MEMBER_TTL`] is a member gone, and the others take its checks
//! over. Times from the database's clock, as the lease's.

use std::time::Duration;

use postgres::Client;

use super::error::DbError;
use super::lease::Holder;
use crate::store::cluster::Member;

/// How long a member counts as alive without renewing its row.
pub const MEMBER_TTL: Duration = Duration::from_secs(10);

/// Rows of members gone this long are deleted (they no longer count
/// anyway; they are kept a while for whoever looks).
const FORGET_AFTER: &str = "1 hour";

/// Registers or renews `me` at `location`.
pub(super) fn renew(client: &mut Client, me: &Holder, location: &str) -> Result<(), DbError> {
    client.execute(
        "INSERT INTO members (id, location, host, pid, version, since, expires_at)
             VALUES ($1, $2, $3, $4, $5, clock_timestamp(),
                     clock_timestamp() + make_interval(secs => $6))
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
        &[
            &me.id,
            &location,
            &me.host,
            &i64::from(std::process::id()),
            &env!("CARGO_PKG_VERSION"),
            &MEMBER_TTL.as_secs_f64(),
        ],
    )?;
    Ok(())
}

/// The members alive now, by id.
pub(super) fn live(client: &mut Client) -> Result<Vec<Member>, DbError> {
    Ok(client
        .query(
            "SELECT id, location FROM members WHERE expires_at > clock_timestamp() ORDER BY id",
            &[],
        )?
        .iter()
        .map(|row| Member {
            id: row.get(0),
            location: row.get(1),
        })
        .collect())
}

/// Deletes the rows of members long gone.
pub(super) fn forget_gone(client: &mut Client) -> Result<(), DbError> {
    client.execute(
        &format!(
            "DELETE FROM members WHERE expires_at < clock_timestamp() - interval '{FORGET_AFTER}'"
        ),
        &[],
    )?;
    Ok(())
}

/// Leaves at once, so the others need not wait for the row to expire.
pub(super) fn leave(client: &mut Client, me: &Holder) -> Result<(), DbError> {
    client.execute("DELETE FROM members WHERE id = $1", &[&me.id])?;
    Ok(())
}
