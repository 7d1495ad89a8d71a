//! Reading a SQLite store's tables as they are, for `store copy`.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::{db_error, schema};
use crate::incident::store::StoreError;
use crate::store::tables::{Cell, Kind, Table};

/// A read-only connection to the store being copied.
pub(in crate::store) struct Export {
    conn: Connection,
    path: std::path::PathBuf,
}

impl Export {
    pub(in crate::store) fn open(path: &Path) -> Result<Export, StoreError> {
        Ok(Export {
            conn: schema::open_reader(path)?,
            path: path.to_owned(),
        })
    }

    /// Up to `limit` rows of `table` after the row whose `order` column is
    /// `after`, in that order, with the last one's `order` value.
    pub(in crate::store) fn page(
        &self,
        table: &Table,
        after: Option<&Cell>,
        limit: usize,
    ) -> Result<(Vec<Vec<Cell>>, Cell), StoreError> {
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let sql = format!(
            "SELECT {order}, {columns} FROM {name} WHERE ?1 IS NULL OR {order} > ?1 ORDER BY {order} LIMIT ?2",
            order = table.order,
            columns = columns.join(", "),
            name = table.name,
        );
        let after = match after {
            None | Some(Cell::Text(None)) => Value::Null,
            Some(Cell::Text(Some(s))) => Value::Text(s.clone()),
            Some(Cell::Real(r)) => Value::Real(*r),
            Some(Cell::Int(i)) => Value::Integer(*i),
        };
        let limit = Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX));
        let read = || -> rusqlite::Result<_> {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter([after, limit]))?;
            let (mut page, mut last) = (Vec::new(), Cell::Text(None));
            while let Some(row) = rows.next()? {
                last = match row.get::<_, Value>(0)? {
                    Value::Integer(i) => Cell::Int(i),
                    Value::Text(s) => Cell::Text(Some(s)),
                    _ => Cell::Text(None),
                };
                let mut cells = Vec::with_capacity(table.columns.len());
                for (i, (_, kind)) in table.columns.iter().enumerate() {
                    cells.push(match kind {
                        Kind::Text => Cell::Text(row.get(i + 1)?),
                        Kind::Real => Cell::Real(row.get(i + 1)?),
                        Kind::Int => Cell::Int(row.get(i + 1)?),
                    });
                }
                page.push(cells);
            }
            Ok((page, last))
        };
        read().map_err(|e| db_error(&format!("reading {}", table.name), &self.path, e))
    }
}
