//! The SQLite backend of [`crate::store::Store`] and
//! [`crate::store::Reader`]: run history, incidents and their timeline,
//! check states and the outbox in one file. The writer's connection is
//! owned by the store's writer thread ([`crate::store::writer`]); readers
//! use connections of their own that never write.

mod error;
mod export;
mod read;
mod schema;
mod sql;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub(super) use export::Export;
pub use read::Reader;

use super::Retention;
use super::rows::{ClaimRow, OutboxRow, RunRow};
use super::writer::{Database, Failure, Op};
use crate::incident::store::{OutboxItem, Snapshot, StoreError};
use error::{DbError, db_error, decode};

/// Opens (creating it and its directory if needed) and migrates the
/// database at `path`, for the writer thread.
pub(super) fn open(path: &Path) -> Result<Sqlite, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("creating the directory {}: {e}", dir.display())))?;
    }
    Ok(Sqlite {
        conn: schema::open_writer(path)?,
        path: path.to_owned(),
    })
}

/// The writer's connection.
pub(super) struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

/// SQLite answers every failure itself: none is "unreachable".
fn refused<T>(result: Result<T, impl std::fmt::Display>) -> Result<T, Failure> {
    result.map_err(Failure::refused)
}

impl Database for Sqlite {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn write_batch(
        &mut self,
        runs: &[&RunRow],
        ops: &[Op<'_>],
        keep: Retention,
        prune: &BTreeSet<&str>,
    ) -> Result<Vec<Vec<OutboxItem>>, Failure> {
        refused(sql::write_batch(&mut self.conn, runs, ops, keep, prune))
    }

    fn load(&mut self) -> Result<Snapshot, Failure> {
        refused(sql::load(&mut self.conn))
    }

    fn claim(&mut self, k: &ClaimRow) -> Result<Vec<OutboxItem>, Failure> {
        refused(sql::claim(&mut self.conn, k))
    }

    fn update_delivery(&mut self, o: &OutboxRow, k: &ClaimRow) -> Result<bool, Failure> {
        refused(sql::update_delivery(&mut self.conn, o, k))
    }

    fn release(&mut self, claimer: &str) -> Result<(), Failure> {
        refused(sql::release(&mut self.conn, claimer))
    }

    fn forget_check(&mut self, check: &str) -> Result<(), Failure> {
        refused(sql::forget_check(&mut self.conn, check))
    }

    fn close(self) {
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(path = %self.path.display(), error = %e, "closing the store");
        }
    }
}
