//! Writing copied rows (`store copy`): a page of a table per statement,
//! rows the store already has left as they are.

use postgres::types::ToSql;

use super::Postgres;
use super::error::DbError;
use crate::incident::store::StoreError;
use crate::store::tables::{Cell, Kind, Table};

impl Postgres {
    /// Inserts `rows` of `table` that the store does not have yet (by the
    /// table's key); returns how many it inserted.
    pub(in crate::store) fn import(
        &mut self,
        table: &Table,
        rows: &[Vec<Cell>],
    ) -> Result<u64, StoreError> {
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let arrays: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                let ty = match kind {
                    Kind::Text => "text",
                    Kind::Real => "float8",
                    Kind::Int => "int8",
                };
                format!("${}::{ty}[]", i + 1)
            })
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO NOTHING",
            table.name,
            columns.join(", "),
            arrays.join(", "),
            table.key
        );
        let params: Vec<Box<dyn ToSql + Sync>> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| column(rows, i, *kind))
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p).collect();
        let started: Vec<&str> = match table.columns.iter().position(|(c, _)| *c == "started_at") {
            Some(i) if table.name == "runs" => rows
                .iter()
                .filter_map(|row| match &row[i] {
                    Cell::Text(Some(s)) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        // Renewed between pages: a copy longer than the lease keeps it.
        self.lead();
        let me = self.me.id.clone();
        let leader = self.epoch.map(|epoch| (me.as_str(), epoch));
        let mut days = std::mem::take(&mut self.days);
        let result = self.with(|c| {
            days.ensure(c, started.iter().copied(), "")?;
            // Fenced like every leader's write.
            let mut tx = c.transaction()?;
            super::sql::fence(&mut tx, leader)?;
            let inserted = tx.execute(&sql, &params)?;
            tx.commit()?;
            Ok::<_, DbError>(inserted)
        });
        self.days = days;
        result.map_err(|f| {
            StoreError(format!(
                "copying {} into {}: {}",
                table.name, self.connect, f.cause
            ))
        })
    }

    /// Lets the store go: its lease is given up for the next daemon.
    pub(in crate::store) fn finish(self) {
        crate::store::writer::Database::close(self);
    }
}

/// Column `i` of `rows` as one array parameter.
fn column(rows: &[Vec<Cell>], i: usize, kind: Kind) -> Box<dyn ToSql + Sync> {
    match kind {
        Kind::Text => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Cell::Text(s) => s.clone(),
                    _ => None,
                })
                .collect::<Vec<Option<String>>>(),
        ),
        Kind::Real => Box::new(
            rows.iter()
                .map(|r| match r[i] {
                    Cell::Real(x) => x,
                    _ => 0.0,
                })
                .collect::<Vec<f64>>(),
        ),
        Kind::Int => Box::new(
            rows.iter()
                .map(|r| match r[i] {
                    Cell::Int(x) => x,
                    _ => 0,
                })
                .collect::<Vec<i64>>(),
        ),
    }
}
