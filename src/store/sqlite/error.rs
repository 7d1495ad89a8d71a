//! How SQLite's failures become the store's: the error every backend call
//! answers with, and decoding a stored JSON value.

use std::fmt::Display;
use std::path::Path;

use crate::incident::store::StoreError;

/// `{doing} in {path}: {cause}`, e.g. `committing incident.declared inc_… in
/// /var/lib/scarecrow/state.db: database is locked`.
pub(super) fn db_error(doing: &str, path: &Path, cause: impl Display) -> StoreError {
    StoreError(format!("{doing} in {}: {cause}", path.display()))
}

/// [`db_error`] for `map_err`.
pub(super) fn failed<'a>(
    doing: &'a str,
    path: &'a Path,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| db_error(doing, path, e)
}

/// Reading failed: SQLite did, or a stored value no longer decodes.
#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// Not valid JSON, or not a value this build knows.
    #[error("{0}")]
    Invalid(String),
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, DbError> {
    crate::store::rows::decode(what, json).map_err(DbError::Invalid)
}
