//! The tables both backends share, described for copying one store into
//! another (`store copy`): columns, their kinds and each table's key.

/// A column's values, as both backends store them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Real,
    Int,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Text(Option<String>),
    Real(f64),
    Int(i64),
}

/// A table both schemas share: its columns, and the unique key a row is
/// recognised by in the target. Rows are read in `order`.
pub(super) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static str,
    /// SQLite's column to page by: increasing, unique.
    pub order: &'static str,
}

use Kind::{Int, Real, Text};

/// In the order they are copied: runs before the incidents that refer to
/// them, incidents before their events and notifications.
pub(super) const TABLES: [Table; 5] = [
    Table {
        name: "runs",
        columns: &[
            ("run_id", Text),
            ("check_name", Text),
            ("started_at", Text),
            ("duration_ms", Real),
            ("result", Text),
            ("reason", Text),
            ("step", Text),
            ("message", Text),
            ("json", Text),
            ("location", Text),
        ],
        key: "run_id, started_at",
        order: "seq",
    },
    Table {
        name: "incidents",
        columns: &[
            ("id", Text),
            ("key", Text),
            ("check_name", Text),
            ("severity", Text),
            ("title", Text),
            ("first_failure_at", Text),
            ("declared_at", Text),
            ("resolved_at", Text),
            ("resolution", Text),
            ("note", Text),
            ("evidence", Text),
            ("run_ids", Text),
            ("json", Text),
            ("updated_at", Text),
        ],
        key: "id",
        order: "rowid",
    },
    Table {
        name: "events",
        columns: &[
            ("id", Text),
            ("incident_id", Text),
            ("kind", Text),
            ("at", Text),
        ],
        key: "id",
        order: "rowid",
    },
    // Claims are left behind: they belong to a worker of the old store.
    Table {
        name: "outbox",
        columns: &[
            ("id", Text),
            ("event_id", Text),
            ("sink", Text),
            ("kind", Text),
            ("incident_id", Text),
            ("item", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_at", Text),
            ("created_at", Text),
            ("delivered_at", Text),
            ("last_error", Text),
        ],
        key: "id",
        order: "rowid",
    },
    Table {
        name: "check_states",
        columns: &[("check_name", Text), ("state", Text)],
        key: "check_name",
        order: "check_name",
    },
];
