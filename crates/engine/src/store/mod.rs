//! The metadata database and the container lifecycle state machine.
//!
//! One SQLite file, `<root>/engine.db`, holds everything the engine knows about
//! containers, their volumes and exec sessions, and the address allocations of the
//! network crate's IPAM. Several `coracle` processes open it at once:
//!
//! - the database runs in WAL mode, so readers never wait for the writer;
//! - every write is one `BEGIN IMMEDIATE` transaction, which takes the write lock
//!   up front (a deferred transaction that upgrades to a writer can fail with
//!   "database is locked" without waiting), and a busy timeout of
//!   [`BUSY_TIMEOUT`] makes a second writer wait for the first instead of failing;
//! - a state change (create, transition, rename, remove, allocation) reads what it
//!   checks inside the same transaction that writes, so two processes cannot both
//!   pass a check (a free name, an allowed transition, a free address);
//! - a process killed mid-transaction leaves nothing behind: SQLite rolls the
//!   unfinished transaction back when the next connection opens the file.
//!
//! Modules:
//! - [`db`]: [`Store`], opening, pragmas, schema migrations, transactions.
//! - [`lifecycle`]: the container states and the transition table.
//! - [`ids`]: container ids, names (validation, generated names), resolution.
//! - [`containers`]: container records.
//! - [`volumes`]: named volumes and the container↔volume references.
//! - [`execs`]: exec sessions.
//! - [`ipam`]: [`coracle_network::ipam::IpamStore`] on the database. The
//!   inherent [`Store::list`] (containers) hides the trait's `list`; call it as
//!   `IpamStore::list(&store, network)`.

pub mod containers;
pub mod db;
mod error;
pub mod execs;
pub mod ids;
pub mod ipam;
pub mod lifecycle;
pub mod volumes;

pub use self::containers::{ContainerRecord, NewContainer, RecordUpdate, StateChange};
pub use self::db::{Store, BUSY_TIMEOUT, DB_FILE, MIGRATIONS};
pub use self::error::StoreError;
pub use self::execs::ExecRecord;
pub use self::lifecycle::{State, Transition};
pub use self::volumes::{NewVolume, Volume, VolumeRef};

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
