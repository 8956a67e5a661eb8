//! Container records: create, look up, resolve, list, rename, transition, remove.

use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::Value;
use tracing::debug;

use super::db::{from_nanos, to_nanos};
use super::ids::{self, short_id};
use super::lifecycle::{State, Transition};
use super::{Result, Store, StoreError};

/// What the engine knows about a container when it creates its record.
#[derive(Debug, Clone, Default)]
pub struct NewContainer {
    /// A full id chosen by the caller (for example because the bundle directory
    /// is named after it); `None` draws a random one.
    pub id: Option<String>,
    /// The name; `None` generates an `adjective_surname` one. A leading `/` is
    /// accepted and dropped.
    pub name: Option<String>,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (`sha256:…`).
    pub image_id: String,
    /// The container's configuration; opaque to the store.
    pub config: Value,
    pub bundle_dir: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    /// Anything else the engine keeps (network settings, mounts); `Null` is
    /// stored as `{}`.
    pub extra: Value,
}

/// A container as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub created: SystemTime,
    pub config: Value,
    pub state: State,
    /// The main process's host pid; 0 when there is none.
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub restart_count: u32,
    /// Why the last start or run failed; empty when it did not.
    pub error: String,
    pub bundle_dir: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    pub extra: Value,
}

impl ContainerRecord {
    /// The first 12 digits of the id.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// The fields a transition records besides the state. Which of them a
/// transition uses:
///
/// - `Start`: `pid`; `started_at` = `at` (default now); the exit code is reset
///   to 0 and the error to `error` (default empty).
/// - `Exit`: `exit_code` (default: unchanged), `error` (default: unchanged);
///   pid becomes 0; `finished_at` = `at` (default now).
/// - `Restart`: as `Exit` (the process ended or is being stopped), and the
///   restart count goes up by one.
/// - `Die`: pid becomes 0, `error` if given; `finished_at` = `at` if given.
/// - `Pause`, `Unpause`, `Remove`: nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChange {
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub at: Option<SystemTime>,
}

/// Changes to a record's non-state fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordUpdate {
    pub config: Option<Value>,
    pub extra: Option<Value>,
    pub bundle_dir: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
}

const COLUMNS: &str = "id, name, image, image_id, created, config, state, pid, exit_code, \
     started_at, finished_at, restart_count, error, bundle_dir, log_path, extra";

/// How many generated names are drawn before a digit is appended.
const NAME_TRIES: u32 = 10;

impl Store {
    /// Records a new container in state `created`.
    pub fn create_container(&self, new: NewContainer) -> Result<ContainerRecord> {
        let id = match new.id {
            Some(id) if ids::is_full_id(&id) => id,
            Some(id) => return Err(StoreError::InvalidId { id }),
            None => ids::new_id()?,
        };
        let wanted = new.name.as_deref().map(ids::check_name).transpose()?;
        let config = encode(&new.config, &id, "configuration")?;
        let extra = encode(&non_null(new.extra), &id, "extra")?;
        let created = SystemTime::now();
        let name = self.write(&format!("create container {id}"), |tx| {
            if let Some(other) = id_exists(tx, &id)? {
                return Err(StoreError::IdConflict { id: other });
            }
            let name = match wanted {
                Some(name) => {
                    if let Some(holder) = name_holder(tx, name)? {
                        return Err(StoreError::NameConflict {
                            name: name.to_string(),
                            id: holder,
                        });
                    }
                    name.to_string()
                }
                None => free_generated_name(tx)?,
            };
            tx.execute(
                "INSERT INTO containers (id, name, image, image_id, created, config, state, \
                 bundle_dir, log_path, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    name,
                    new.image,
                    new.image_id,
                    to_nanos(created),
                    config,
                    State::Created.as_str(),
                    new.bundle_dir.as_deref().map(path_text),
                    new.log_path.as_deref().map(path_text),
                    extra,
                ],
            )
            .map_err(StoreError::db(format!("insert container {id}")))?;
            Ok(name)
        })?;
        debug!(id, name, "created container record");
        self.get(&id)
    }

    /// The container with exactly this id.
    pub fn get(&self, id: &str) -> Result<ContainerRecord> {
        let conn = self.conn();
        get_in(&conn, id)?.ok_or_else(|| StoreError::NoSuchContainer(id.to_string()))
    }

    /// Finds the container a user means, in Docker's order: an exact id, then an
    /// exact name (with or without a leading `/`), then a unique id prefix. An
    /// ambiguous prefix is an error naming the matches.
    pub fn resolve(&self, reference: &str) -> Result<ContainerRecord> {
        self.read(&format!("resolve container {reference}"), |tx| {
            resolve_in(tx, reference)
        })
    }

    /// Containers, newest first: all of them, or only those with a process
    /// (running, paused, restarting), as `ps` without `-a` shows.
    pub fn list(&self, all: bool) -> Result<Vec<ContainerRecord>> {
        let conn = self.conn();
        let op = || StoreError::db("list containers");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created DESC, id"
            ))
            .map_err(op())?;
        let rows = stmt.query_map([], RawRecord::from_row).map_err(op())?;
        let mut out = Vec::new();
        for row in rows {
            let record = row.map_err(op())?.decode()?;
            if all || record.state.is_active() {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Gives container `id` a new name. Renaming to the name it has is an error,
    /// as in Docker.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<ContainerRecord> {
        let new_name = ids::check_name(new_name)?;
        self.write(&format!("rename container {id}"), |tx| {
            let current = get_in(tx, id)?.ok_or_else(|| StoreError::NoSuchContainer(id.into()))?;
            if current.name == new_name {
                return Err(StoreError::SameName {
                    id: current.id,
                    name: current.name,
                });
            }
            if let Some(holder) = name_holder(tx, new_name)? {
                return Err(StoreError::NameConflict {
                    name: new_name.to_string(),
                    id: holder,
                });
            }
            tx.execute(
                "UPDATE containers SET name = ?2 WHERE id = ?1",
                params![id, new_name],
            )
            .map_err(StoreError::db(format!("rename container {id}")))?;
            Ok(())
        })?;
        debug!(id, new_name, "renamed container");
        self.get(id)
    }

    /// Deletes container `id` with its volume references and exec sessions.
    /// Refused while it is running, paused or restarting (move it to
    /// `removing` first to force a removal). Removing an id that is not there
    /// is a `NoSuchContainer` error.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.write(&format!("remove container {id}"), |tx| {
            let current = get_in(tx, id)?.ok_or_else(|| StoreError::NoSuchContainer(id.into()))?;
            if current.state.is_active() {
                return Err(StoreError::RemoveActive {
                    id: current.short_id().to_string(),
                    state: current.state,
                });
            }
            tx.execute("DELETE FROM containers WHERE id = ?1", [id])
                .map_err(StoreError::db(format!("delete container {id}")))?;
            Ok(())
        })?;
        debug!(id, "removed container record");
        Ok(())
    }

    /// Moves container `id` through `transition`, recording `change` (see
    /// [`StateChange`] for which fields each transition uses). A transition the
    /// table does not allow from the current state changes nothing and fails
    /// with an error naming the container, the transition and the state.
    pub fn update_state(
        &self,
        id: &str,
        transition: Transition,
        change: StateChange,
    ) -> Result<ContainerRecord> {
        let record = self.write(&format!("{} container {id}", transition.verb()), |tx| {
            let mut rec = get_in(tx, id)?.ok_or_else(|| StoreError::NoSuchContainer(id.into()))?;
            let to = transition
                .apply(rec.state)
                .ok_or_else(|| StoreError::InvalidTransition {
                    id: rec.short_id().to_string(),
                    from: rec.state,
                    transition,
                })?;
            let now = change.at.unwrap_or_else(SystemTime::now);
            match transition {
                Transition::Start => {
                    rec.pid = change.pid.unwrap_or(0);
                    rec.started_at = Some(now);
                    rec.exit_code = 0;
                    rec.error = change.error.unwrap_or_default();
                }
                Transition::Exit | Transition::Restart => {
                    rec.pid = 0;
                    rec.exit_code = change.exit_code.unwrap_or(rec.exit_code);
                    rec.error = change.error.unwrap_or(rec.error);
                    rec.finished_at = Some(now);
                    if transition == Transition::Restart {
                        rec.restart_count = rec.restart_count.saturating_add(1);
                    }
                }
                Transition::Die => {
                    rec.pid = 0;
                    rec.error = change.error.unwrap_or(rec.error);
                    rec.exit_code = change.exit_code.unwrap_or(rec.exit_code);
                    if change.at.is_some() {
                        rec.finished_at = Some(now);
                    }
                }
                Transition::Pause | Transition::Unpause | Transition::Remove => {}
            }
            rec.state = to;
            tx.execute(
                "UPDATE containers SET state = ?2, pid = ?3, exit_code = ?4, started_at = ?5, \
                 finished_at = ?6, restart_count = ?7, error = ?8 WHERE id = ?1",
                params![
                    id,
                    rec.state.as_str(),
                    rec.pid,
                    rec.exit_code,
                    rec.started_at.map(to_nanos),
                    rec.finished_at.map(to_nanos),
                    rec.restart_count,
                    rec.error,
                ],
            )
            .map_err(StoreError::db(format!("update state of container {id}")))?;
            Ok(rec)
        })?;
        debug!(id, state = %record.state, pid = record.pid, "container state");
        Ok(record)
    }

    /// Changes the configuration, `extra` or paths of container `id`.
    pub fn update_record(&self, id: &str, update: RecordUpdate) -> Result<ContainerRecord> {
        let config = update
            .config
            .as_ref()
            .map(|v| encode(v, id, "configuration"))
            .transpose()?;
        let extra = update
            .extra
            .map(|v| encode(&non_null(v), id, "extra"))
            .transpose()?;
        self.write(&format!("update container {id}"), |tx| {
            let n = tx
                .execute(
                    "UPDATE containers SET config = coalesce(?2, config), \
                     extra = coalesce(?3, extra), bundle_dir = coalesce(?4, bundle_dir), \
                     log_path = coalesce(?5, log_path) WHERE id = ?1",
                    params![
                        id,
                        config,
                        extra,
                        update.bundle_dir.as_deref().map(path_text),
                        update.log_path.as_deref().map(path_text),
                    ],
                )
                .map_err(StoreError::db(format!("update container {id}")))?;
            if n == 0 {
                return Err(StoreError::NoSuchContainer(id.to_string()));
            }
            Ok(())
        })?;
        self.get(id)
    }
}

fn non_null(v: Value) -> Value {
    if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    }
}

fn encode(v: &Value, id: &str, what: &str) -> Result<String> {
    serde_json::to_string(v).map_err(StoreError::json(format!("encode {what} of container {id}")))
}

fn path_text(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn id_exists(tx: &Transaction<'_>, id: &str) -> Result<Option<String>> {
    tx.query_row("SELECT id FROM containers WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()
    .map_err(StoreError::db(format!("look up container {id}")))
}

/// The id of the container called `name`, if any.
fn name_holder(tx: &Transaction<'_>, name: &str) -> Result<Option<String>> {
    tx.query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map_err(StoreError::db(format!("look up container name {name}")))
}

/// A generated name no container has, drawn inside the write transaction.
fn free_generated_name(tx: &Transaction<'_>) -> Result<String> {
    let mut retry = 0;
    loop {
        let name = ids::generate_name(u32::from(retry >= NAME_TRIES))?;
        if name_holder(tx, &name)?.is_none() {
            return Ok(name);
        }
        retry += 1;
    }
}

fn get_in(conn: &rusqlite::Connection, id: &str) -> Result<Option<ContainerRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
        [id],
        RawRecord::from_row,
    )
    .optional()
    .map_err(StoreError::db(format!("read container {id}")))?
    .map(RawRecord::decode)
    .transpose()
}

fn resolve_in(tx: &Transaction<'_>, reference: &str) -> Result<ContainerRecord> {
    let not_found = || StoreError::NoSuchContainer(reference.to_string());
    if reference.is_empty() {
        return Err(not_found());
    }
    if ids::is_full_id(reference) {
        if let Some(rec) = get_in(tx, reference)? {
            return Ok(rec);
        }
    }
    let name = ids::normalize_name(reference);
    if let Some(id) = name_holder(tx, name)? {
        if let Some(rec) = get_in(tx, &id)? {
            return Ok(rec);
        }
    }
    if !ids::is_hex(reference) {
        return Err(not_found());
    }
    // Hex digits only, so the pattern has no LIKE wildcards in it.
    let op = || StoreError::db(format!("resolve container prefix {reference}"));
    let mut stmt = tx
        .prepare("SELECT id FROM containers WHERE id LIKE ?1 || '%' ORDER BY id LIMIT 11")
        .map_err(op())?;
    let matches = stmt
        .query_map([reference], |r| r.get::<_, String>(0))
        .map_err(op())?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(op())?;
    match matches.as_slice() {
        [] => Err(not_found()),
        [id] => get_in(tx, id)?.ok_or_else(not_found),
        _ => Err(StoreError::AmbiguousPrefix {
            prefix: reference.to_string(),
            ids: matches.iter().map(|id| short_id(id).to_string()).collect(),
        }),
    }
}

/// A row as SQLite returns it, before decoding states, times and JSON.
struct RawRecord {
    id: String,
    name: String,
    image: String,
    image_id: String,
    created: i64,
    config: String,
    state: String,
    pid: i32,
    exit_code: i32,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    restart_count: u32,
    error: String,
    bundle_dir: Option<String>,
    log_path: Option<String>,
    extra: String,
}

impl RawRecord {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawRecord> {
        Ok(RawRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            image: r.get(2)?,
            image_id: r.get(3)?,
            created: r.get(4)?,
            config: r.get(5)?,
            state: r.get(6)?,
            pid: r.get(7)?,
            exit_code: r.get(8)?,
            started_at: r.get(9)?,
            finished_at: r.get(10)?,
            restart_count: r.get(11)?,
            error: r.get(12)?,
            bundle_dir: r.get(13)?,
            log_path: r.get(14)?,
            extra: r.get(15)?,
        })
    }

    fn decode(self) -> Result<ContainerRecord> {
        let id = self.id;
        let state = self
            .state
            .parse::<State>()
            .map_err(|e| StoreError::Corrupt {
                what: format!("state of container {id}"),
                detail: e.to_string(),
            })?;
        let config = serde_json::from_str(&self.config).map_err(StoreError::json(format!(
            "decode configuration of container {id}"
        )))?;
        let extra = serde_json::from_str(&self.extra)
            .map_err(StoreError::json(format!("decode extra of container {id}")))?;
        Ok(ContainerRecord {
            name: self.name,
            image: self.image,
            image_id: self.image_id,
            created: from_nanos(self.created),
            config,
            state,
            pid: self.pid,
            exit_code: self.exit_code,
            started_at: self.started_at.map(from_nanos),
            finished_at: self.finished_at.map(from_nanos),
            restart_count: self.restart_count,
            error: self.error,
            bundle_dir: self.bundle_dir.map(PathBuf::from),
            log_path: self.log_path.map(PathBuf::from),
            extra,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn new(name: Option<&str>) -> NewContainer {
        NewContainer {
            name: name.map(str::to_string),
            image: "busybox".into(),
            image_id: "sha256:abc".into(),
            config: json!({"Cmd": ["sh"]}),
            ..Default::default()
        }
    }

    #[test]
    fn create_and_get_round_trip() {
        let (_d, s) = store();
        let mut n = new(Some("/web"));
        n.bundle_dir = Some("/run/x/bundle".into());
        n.extra = json!({"net": {"ip": "172.17.0.2"}});
        let rec = s.create_container(n).unwrap();
        assert_eq!(rec.name, "web");
        assert_eq!(rec.state, State::Created);
        assert_eq!(rec.pid, 0);
        assert_eq!(rec.config, json!({"Cmd": ["sh"]}));
        assert_eq!(rec.extra["net"]["ip"], "172.17.0.2");
        assert_eq!(rec.bundle_dir, Some(PathBuf::from("/run/x/bundle")));
        assert_eq!(rec.log_path, None);
        assert_eq!(s.get(&rec.id).unwrap(), rec);
    }

    #[test]
    fn generated_names_and_caller_ids() {
        let (_d, s) = store();
        let id = ids::new_id().unwrap();
        let mut n = new(None);
        n.id = Some(id.clone());
        let rec = s.create_container(n.clone()).unwrap();
        assert_eq!(rec.id, id);
        assert!(ids::is_valid_name(&rec.name) && rec.name.contains('_'));
        assert!(matches!(
            s.create_container(n).unwrap_err(),
            StoreError::IdConflict { .. }
        ));
        let mut bad = new(None);
        bad.id = Some("ABC".into());
        assert!(matches!(
            s.create_container(bad).unwrap_err(),
            StoreError::InvalidId { .. }
        ));
    }

    #[test]
    fn transitions_record_fields() {
        let (_d, s) = store();
        let id = s.create_container(new(Some("t1"))).unwrap().id;
        let change = |pid, code| StateChange {
            pid,
            exit_code: code,
            ..Default::default()
        };
        let r = s
            .update_state(&id, Transition::Start, change(Some(42), None))
            .unwrap();
        assert_eq!((r.state, r.pid), (State::Running, 42));
        assert!(r.started_at.is_some());
        let r = s
            .update_state(&id, Transition::Restart, change(None, Some(1)))
            .unwrap();
        assert_eq!(
            (r.state, r.pid, r.exit_code, r.restart_count),
            (State::Restarting, 0, 1, 1)
        );
        let r = s
            .update_state(&id, Transition::Start, change(Some(43), None))
            .unwrap();
        assert_eq!((r.state, r.pid, r.exit_code), (State::Running, 43, 0));
        let r = s
            .update_state(&id, Transition::Exit, change(None, Some(137)))
            .unwrap();
        assert_eq!((r.state, r.pid, r.exit_code), (State::Exited, 0, 137));
        assert!(r.finished_at.is_some());
        let err = s
            .update_state(&id, Transition::Pause, StateChange::default())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot pause container {}: it is exited", &id[..12])
        );
        assert_eq!(
            s.get(&id).unwrap(),
            r,
            "a refused transition changes nothing"
        );
    }
}
