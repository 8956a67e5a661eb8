//! Exec sessions: a process started in a running container (`exec`). The record
//! goes with its container.

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;
use tracing::debug;

use super::db::{from_nanos, to_nanos};
use super::ids;
use super::{Result, Store, StoreError};

/// An exec session as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRecord {
    /// 64 hex digits.
    pub id: String,
    pub container_id: String,
    /// The exec's configuration (command, env, user, tty...); opaque to the store.
    pub config: Value,
    /// The process's host pid; 0 before it starts and after it ends.
    pub pid: i32,
    /// `None` until the process has ended.
    pub exit_code: Option<i32>,
    pub running: bool,
    pub created: SystemTime,
}

const EXEC_COLUMNS: &str = "id, container_id, config, pid, exit_code, running, created";

impl Store {
    /// Records a new exec session for container `container_id` (not running yet).
    pub fn create_exec(&self, container_id: &str, config: Value) -> Result<ExecRecord> {
        let id = ids::new_id()?;
        let text = serde_json::to_string(&config).map_err(StoreError::json(format!(
            "encode configuration of exec {id}"
        )))?;
        self.write(&format!("create exec {id}"), |tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM containers WHERE id = ?1",
                    [container_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::db(format!("look up container {container_id}")))?;
            if exists.is_none() {
                return Err(StoreError::NoSuchContainer(container_id.to_string()));
            }
            tx.execute(
                "INSERT INTO execs (id, container_id, config, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, container_id, text, to_nanos(SystemTime::now())],
            )
            .map_err(StoreError::db(format!("insert exec {id}")))?;
            Ok(())
        })?;
        debug!(id, container_id, "created exec record");
        self.get_exec(&id)
    }

    pub fn get_exec(&self, id: &str) -> Result<ExecRecord> {
        self.conn()
            .query_row(
                &format!("SELECT {EXEC_COLUMNS} FROM execs WHERE id = ?1"),
                [id],
                RawExec::from_row,
            )
            .optional()
            .map_err(StoreError::db(format!("read exec {id}")))?
            .ok_or_else(|| StoreError::NoSuchExec(id.to_string()))?
            .decode()
    }

    /// The exec sessions of container `container_id`, oldest first.
    pub fn list_execs(&self, container_id: &str) -> Result<Vec<ExecRecord>> {
        let conn = self.conn();
        let op = || StoreError::db(format!("list execs of container {container_id}"));
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {EXEC_COLUMNS} FROM execs WHERE container_id = ?1 ORDER BY created, id"
            ))
            .map_err(op())?;
        let rows = stmt
            .query_map([container_id], RawExec::from_row)
            .map_err(op())?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(op())?.decode()?);
        }
        Ok(out)
    }

    /// Records that exec `id`'s process started as `pid`.
    pub fn exec_started(&self, id: &str, pid: i32) -> Result<ExecRecord> {
        self.update_exec(
            id,
            "record the start of",
            "UPDATE execs SET pid = ?2, running = 1, exit_code = NULL WHERE id = ?1",
            pid,
        )
    }

    /// Records that exec `id`'s process ended with `exit_code`.
    pub fn exec_exited(&self, id: &str, exit_code: i32) -> Result<ExecRecord> {
        self.update_exec(
            id,
            "record the exit of",
            "UPDATE execs SET pid = 0, running = 0, exit_code = ?2 WHERE id = ?1",
            exit_code,
        )
    }

    /// Deletes exec `id`'s record (removing a missing one is not an error).
    pub fn remove_exec(&self, id: &str) -> Result<()> {
        self.write(&format!("remove exec {id}"), |tx| {
            tx.execute("DELETE FROM execs WHERE id = ?1", [id])
                .map_err(StoreError::db(format!("delete exec {id}")))?;
            Ok(())
        })
    }

    fn update_exec(&self, id: &str, what: &str, sql: &str, value: i32) -> Result<ExecRecord> {
        self.write(&format!("{what} exec {id}"), |tx| {
            let n = tx
                .execute(sql, params![id, value])
                .map_err(StoreError::db(format!("{what} exec {id}")))?;
            if n == 0 {
                return Err(StoreError::NoSuchExec(id.to_string()));
            }
            Ok(())
        })?;
        self.get_exec(id)
    }
}

struct RawExec {
    id: String,
    container_id: String,
    config: String,
    pid: i32,
    exit_code: Option<i32>,
    running: bool,
    created: i64,
}

impl RawExec {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawExec> {
        Ok(RawExec {
            id: r.get(0)?,
            container_id: r.get(1)?,
            config: r.get(2)?,
            pid: r.get(3)?,
            exit_code: r.get(4)?,
            running: r.get(5)?,
            created: r.get(6)?,
        })
    }

    fn decode(self) -> Result<ExecRecord> {
        let config = serde_json::from_str(&self.config).map_err(StoreError::json(format!(
            "decode configuration of exec {}",
            self.id
        )))?;
        Ok(ExecRecord {
            id: self.id,
            container_id: self.container_id,
            config,
            pid: self.pid,
            exit_code: self.exit_code,
            running: self.running,
            created: from_nanos(self.created),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::NewContainer;

    #[test]
    fn exec_lifecycle_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let c = s
            .create_container(NewContainer {
                name: Some("box".into()),
                ..Default::default()
            })
            .unwrap();
        let e = s.create_exec(&c.id, json!({"Cmd": ["ps"]})).unwrap();
        assert!(ids::is_full_id(&e.id));
        assert_eq!((e.pid, e.running, e.exit_code), (0, false, None));
        let e = s.exec_started(&e.id, 99).unwrap();
        assert_eq!((e.pid, e.running), (99, true));
        let e = s.exec_exited(&e.id, 3).unwrap();
        assert_eq!((e.pid, e.running, e.exit_code), (0, false, Some(3)));
        assert_eq!(s.list_execs(&c.id).unwrap(), vec![e.clone()]);
        assert!(matches!(
            s.create_exec("nope", json!({})),
            Err(StoreError::NoSuchContainer(_))
        ));
        assert!(matches!(
            s.exec_started("nope", 1),
            Err(StoreError::NoSuchExec(_))
        ));
        s.remove(&c.id).unwrap();
        assert!(matches!(s.get_exec(&e.id), Err(StoreError::NoSuchExec(_))));
    }
}
