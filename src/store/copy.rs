//! `scarecrow store copy`: a SQLite store's content into a PostgreSQL one
//! (runs, incidents with their timelines and notifications, check states),
//! table by table in pages, each row inserted unless the target has it, so
//! a copy that stopped halfway is finished by running it again. The target
//! is opened as a daemon opens it (migrated, its lease taken), so no
//! daemon writes to it meanwhile.

use std::path::Path;

use super::postgres::{self, Connect};
use super::sqlite;
use super::tables::TABLES;
use super::{Retention, StoreError};

/// Rows read and written at a time.
const PAGE: usize = 10_000;

/// Rows of each table read from the source and inserted into the target
/// (rows the target had already are read, not inserted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64, u64)>,
}

/// Copies the SQLite store at `from` into the PostgreSQL store at `to`;
/// `progress` hears each page, as (table, rows read so far).
pub fn copy(
    from: &Path,
    to: &Connect,
    mut progress: impl FnMut(&str, u64),
) -> Result<Copied, StoreError> {
    let source = sqlite::Export::open(from)?;
    let mut target = postgres::open(to, Retention::from(usize::MAX), None)?;
    let mut copy_all = || {
        let mut copied = Copied::default();
        for table in &TABLES {
            let (mut read, mut inserted) = (0, 0);
            let mut after = None;
            loop {
                let (rows, last) = source.page(table, after.as_ref(), PAGE)?;
                if rows.is_empty() {
                    break;
                }
                read += rows.len() as u64;
                inserted += target.import(table, &rows)?;
                progress(table.name, read);
                after = Some(last);
            }
            copied.tables.push((table.name, read, inserted));
        }
        Ok(copied)
    };
    let copied = copy_all();
    // Given up either way, so the next copy or daemon need not wait.
    target.finish();
    copied
}
