//! [`Store`]: the database file, its pragmas, schema migrations and transactions.
//!
//! # Schema versions
//!
//! `schema_migrations` has one row per applied migration (`version`, `applied_at`
//! in Unix nanoseconds). [`MIGRATIONS`] lists them in order; [`Store::open`]
//! applies the missing ones in one `BEGIN IMMEDIATE` transaction, so two processes
//! opening a fresh or old database at once apply each migration exactly once. A
//! database newer than this build is refused rather than misread. Migrations are
//! only ever appended: an applied one is never edited.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};
use tracing::debug;

use super::{Result, StoreError};

/// The database's file name under the root.
pub const DB_FILE: &str = "engine.db";

/// How long a writer waits for another process's write transaction before it
/// gives up with "database is locked". Write transactions here are short (well
/// under a millisecond of work, plus an fsync), so this only runs out when a
/// process holds the lock far longer than it should.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema, as migrations applied in order; version `i + 1` is `MIGRATIONS[i]`.
pub const MIGRATIONS: &[&str] = &[
    // 1: containers, volumes, container↔volume references, execs, IPAM.
    r#"
    CREATE TABLE containers (
        id            TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),
        name          TEXT NOT NULL UNIQUE,
        image         TEXT NOT NULL,
        image_id      TEXT NOT NULL,
        created       INTEGER NOT NULL,
        config        TEXT NOT NULL,
        state         TEXT NOT NULL,
        pid           INTEGER NOT NULL DEFAULT 0,
        exit_code     INTEGER NOT NULL DEFAULT 0,
        started_at    INTEGER,
        finished_at   INTEGER,
        restart_count INTEGER NOT NULL DEFAULT 0,
        error         TEXT NOT NULL DEFAULT '',
        bundle_dir    TEXT,
        log_path      TEXT,
        extra         TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE volumes (
        name       TEXT PRIMARY KEY NOT NULL,
        driver     TEXT NOT NULL,
        mountpoint TEXT NOT NULL,
        labels     TEXT NOT NULL DEFAULT '{}',
        options    TEXT NOT NULL DEFAULT '{}',
        created    INTEGER NOT NULL
    );
    CREATE TABLE container_volumes (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        volume       TEXT NOT NULL REFERENCES volumes(name),
        destination  TEXT NOT NULL,
        PRIMARY KEY (container_id, destination)
    );
    CREATE INDEX container_volumes_by_volume ON container_volumes(volume);
    CREATE TABLE execs (
        id           TEXT PRIMARY KEY NOT NULL,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        config       TEXT NOT NULL,
        pid          INTEGER NOT NULL DEFAULT 0,
        exit_code    INTEGER,
        running      INTEGER NOT NULL DEFAULT 0,
        created      INTEGER NOT NULL
    );
    CREATE INDEX execs_by_container ON execs(container_id);
    CREATE TABLE ipam_networks (
        network TEXT PRIMARY KEY NOT NULL,
        subnet  TEXT,
        last    TEXT
    );
    CREATE TABLE ipam_allocations (
        network TEXT NOT NULL REFERENCES ipam_networks(network) ON DELETE CASCADE,
        address TEXT NOT NULL,
        owner   TEXT NOT NULL,
        PRIMARY KEY (network, address)
    );
    "#,
    // 2: `ps` lists newest first.
    "CREATE INDEX containers_by_created ON containers(created);",
];

/// The engine's metadata database. Cheap to share between threads (one
/// connection behind a mutex); every process opens its own.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `<root>/engine.db`, sets WAL mode, the busy
    /// timeout and foreign keys, and applies missing migrations.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|source| StoreError::CreateDir {
                path: root.clone(),
                source,
            })?;
        let path = root.join(DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        // The busy timeout first: switching to WAL and migrating both wait for
        // other processes doing the same.
        conn.busy_handler(Some(busy_wait)).map_err(open_err)?;
        let mode = switch_to_wal(&conn).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            debug!(path = %path.display(), mode, "database did not switch to WAL");
        }
        // NORMAL (with WAL): every transaction is atomic and survives a crash of any
        // process; the WAL is synced at checkpoints, not at each commit, so a power loss
        // may roll back the last few transactions, never corrupt the database. The
        // containers those transactions were about do not survive a power loss either.
        // FULL cost an fsync per commit, five on the path of one `run --rm` (0.6 to
        // 2.3 ms each, perf trace).
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        // Every `coracle` command opens and closes the database; by default the last
        // connection to close checkpoints the WAL into the database, fsyncs both and deletes
        // the WAL, which the next command creates again (about 2 ms per command). Without
        // that, SQLite checkpoints automatically once the WAL reaches a size (below).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(open_err)?;
        // But the first connection of a process (all of them, for `coracle` commands) reads
        // the whole WAL to rebuild its index: 1.9 ms more per command with the 820 pages 40
        // `run --rm` leave (`ps -aq`: 5.9 against 4.0 ms after a checkpoint, hyperfine).
        // A run writes about 20 pages, so SQLite's default of 1000 pages before a checkpoint
        // made every command pay about 1 ms on average; at 128 pages the reads are an eighth
        // of that, for a checkpoint (two fsyncs) every six runs or so.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 128;")
            .map_err(open_err)?;
        let mut store = Store {
            root,
            path,
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The root directory given to [`Store::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the database (the number of applied migrations).
    pub fn schema_version(&self) -> Result<i64> {
        let conn = self.conn();
        current_version(&conn).map_err(StoreError::db("read the schema version"))
    }

    /// Runs SQLite's integrity and foreign-key checks.
    pub fn check_integrity(&self) -> Result<()> {
        let conn = self.conn();
        let integrity = |detail: String| StoreError::Integrity {
            path: self.path.clone(),
            detail,
        };
        let result: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(StoreError::db("integrity check"))?;
        if result != "ok" {
            return Err(integrity(result));
        }
        let violations: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(StoreError::db("foreign key check"))?;
        if violations != 0 {
            return Err(integrity(format!("{violations} foreign key violations")));
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let known = MIGRATIONS.len() as i64;
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mig_err = |version, source| StoreError::Migration {
            path: path.clone(),
            version,
            source,
        };
        // Up to date (every open but the first few): no write lock needed.
        let found = current_version(conn).map_err(|e| mig_err(0, e))?;
        if found == known {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| mig_err(0, e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY NOT NULL,
                 applied_at INTEGER NOT NULL
             );",
        )
        .map_err(|e| mig_err(0, e))?;
        // Again under the write lock: another process may have migrated meanwhile.
        let found = current_version(&tx).map_err(|e| mig_err(0, e))?;
        if found > known {
            return Err(StoreError::SchemaTooNew { path, found, known });
        }
        if found == known {
            return Ok(());
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            tx.execute_batch(sql).map_err(|e| mig_err(version, e))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                (version, to_nanos(SystemTime::now())),
            )
            .map_err(|e| mig_err(version, e))?;
        }
        tx.commit().map_err(|e| mig_err(known, e))?;
        debug!(path = %path.display(), from = found, to = known, "migrated database");
        Ok(())
    }

    /// The connection, for a read (a single statement is its own consistent
    /// snapshot; several reads that must agree use [`Store::read`]).
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open: the
        // `Transaction` guard rolls back on drop. So the connection stays usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`), committing if it
    /// returns `Ok` and rolling back otherwise. `op` names the change for errors.
    pub(crate) fn write<T, E>(
        &self,
        op: &str,
        f: impl FnOnce(&Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Db {
                op: format!("{op}: begin transaction"),
                source,
            })?;
        let value = f(&tx)?;
        tx.commit().map_err(|source| StoreError::Db {
            op: format!("{op}: commit"),
            source,
        })?;
        Ok(value)
    }

    /// Runs `f` in one read transaction: everything it reads is one snapshot.
    pub(crate) fn read<T>(
        &self,
        op: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|source| StoreError::Db {
                op: format!("{op}: begin transaction"),
                source,
            })?;
        let value = f(&tx)?;
        // Nothing was written: ending the read transaction cannot lose anything.
        tx.finish().map_err(|source| StoreError::Db {
            op: format!("{op}: end transaction"),
            source,
        })?;
        Ok(value)
    }
}

/// The busy handler: called with the number of earlier calls for the same
/// lock; `true` means try again. SQLite's own `busy_timeout` sleeps longer
/// the longer it waits (up to 100 ms a try), so under contention a waiter
/// often sleeps through the moments the lock is free: 50 writers at once took
/// about 4 s. Short, even pauses keep a burst of writers moving (each
/// transaction holds the lock for a millisecond or so) and still give up after
/// [`BUSY_TIMEOUT`].
fn busy_wait(count: i32) -> bool {
    const FAST_TRIES: u64 = 200;
    let count = u64::try_from(count).unwrap_or(0);
    let (pause, waited) = if count < FAST_TRIES {
        (Duration::from_millis(1), Duration::from_millis(count))
    } else {
        (
            Duration::from_millis(5),
            Duration::from_millis(FAST_TRIES + (count - FAST_TRIES) * 5),
        )
    };
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    thread::sleep(pause);
    true
}

/// Sets WAL mode (persistent in the file, so this only changes anything on a
/// new database) and returns the journal mode now in effect.
///
/// The switch reads the database and then needs an exclusive lock. When several
/// processes open a new database at once, two can hold the read lock and both
/// want the exclusive one: SQLite reports "database is locked" at once to one of
/// them instead of calling the busy handler, since waiting could never succeed.
/// That one retries after a short pause, until [`BUSY_TIMEOUT`].
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<String> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(e)
                if start.elapsed() < BUSY_TIMEOUT
                    && matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) =>
            {
                debug!(error = %e, "switching to WAL: busy, retrying");
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// Unix nanoseconds, the store's time format (times before 1970 become 0;
/// `i64` nanoseconds last until 2262).
pub(crate) fn to_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_nanos(n: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_wal_foreign_keys_and_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let conn = store.conn();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(conn);
        store.check_integrity().unwrap();
    }

    #[test]
    fn reopen_applies_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let store = Store::open(dir.path()).unwrap();
        let rows: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)",
                [],
            )
            .unwrap();
        drop(store);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn busy_wait_gives_up_after_the_timeout() {
        assert!(busy_wait(0));
        assert!(busy_wait(1000));
        // 200 tries of 1 ms, then 5 ms each: 30 s are used up at try 6160.
        assert!(busy_wait(6159));
        assert!(!busy_wait(6160));
        assert!(!busy_wait(i32::MAX));
    }

    #[test]
    fn times_round_trip() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(from_nanos(to_nanos(t)), t);
    }
}
