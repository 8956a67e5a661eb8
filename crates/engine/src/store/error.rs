//! The store's errors. Each names the container, volume or exec it is about.

use std::path::PathBuf;

use super::lifecycle::{State, Transition};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: create directory: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path}: open database: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "store {path}: the database has schema version {found}, newer than this \
         coracle knows ({known}); use a newer coracle"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("store {path}: migration to schema version {version}: {source}")]
    Migration {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("store {path}: integrity check failed: {detail}")]
    Integrity { path: PathBuf, detail: String },
    /// A database error while doing `op` (which names the object).
    #[error("store: {op}: {source}")]
    Db { op: String, source: rusqlite::Error },
    #[error("store: read random bytes from /dev/urandom: {source}")]
    Random { source: std::io::Error },
    #[error("store: {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    /// A row that does not decode (an unknown state, a bad time).
    #[error("store: {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },

    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \
         \"{id}\". You have to remove (or rename) that container to be able to reuse \
         that name."
    )]
    NameConflict { name: String, id: String },
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("Error when allocating new name: container {id} already has the name \"/{name}\"")]
    SameName { id: String, name: String },
    #[error("invalid container id {id:?}: an id is 64 lowercase hex digits")]
    InvalidId { id: String },
    #[error("Conflict. The container id \"{id}\" is already in use")]
    IdConflict { id: String },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match the prefix {prefix:?}: {}", .ids.join(", "))]
    AmbiguousPrefix { prefix: String, ids: Vec<String> },
    #[error("cannot {} container {id}: it is {from}", .transition.verb())]
    InvalidTransition {
        id: String,
        from: State,
        transition: Transition,
    },
    #[error("cannot remove container {id}: it is {state}; stop it first, or force the removal")]
    RemoveActive { id: String, state: State },

    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    #[error(
        "Invalid volume name ({name}): only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, \
         at least two characters"
    )]
    InvalidVolumeName { name: String },
    #[error("volume {name}: driver {driver:?} is not supported (only \"local\")")]
    UnsupportedDriver { name: String, driver: String },
    #[error("volume {name} already exists with driver {existing}, not {requested}")]
    VolumeDriverConflict {
        name: String,
        existing: String,
        requested: String,
    },
    #[error("remove {name}: volume is in use - [{}]", .containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("volume {name}: {op} {path}: {source}")]
    VolumeIo {
        name: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
}

impl StoreError {
    /// Wraps a database error with what was being done.
    pub(crate) fn db(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let op = op.into();
        move |source| StoreError::Db { op, source }
    }

    /// Wraps a JSON error with what was being encoded or decoded.
    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Json { what, source }
    }

    /// Whether this is SQLite's "database is locked" / "busy" (the busy timeout ran out).
    pub fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. }
            | StoreError::Migration { source, .. }
            | StoreError::Db { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}
