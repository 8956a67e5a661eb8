//! Named volumes (driver `local`) and the references containers hold on them.
//!
//! A volume's data lives in `<root>/volumes/<name>/_data`. The record and the
//! directory are created and removed together: creation makes the directory
//! first (idempotent) and then commits the record; removal deletes the record and
//! the directory inside one transaction, so a failed directory removal leaves the
//! volume listed (and `rm` can be retried) rather than a record without data.
//!
//! `container_volumes` says which container mounts which volume at which
//! destination; the engine fills it when it creates a container, the rows go
//! with the container, and a volume with rows is not removable.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, Row};
use tracing::debug;

use super::db::{from_nanos, to_nanos};
use super::ids;
use super::{Result, Store, StoreError};

/// The only driver.
pub const LOCAL_DRIVER: &str = "local";

/// A volume to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewVolume {
    /// `None` draws a random 64-hex name, as Docker does for anonymous volumes.
    pub name: Option<String>,
    /// `None` or `local`.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A volume as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub created: SystemTime,
}

/// One container's use of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRef {
    pub container_id: String,
    pub volume: String,
    pub destination: String,
}

impl Store {
    /// `<root>/volumes/<name>/_data`.
    pub fn volume_mountpoint(&self, name: &str) -> PathBuf {
        self.root().join("volumes").join(name).join("_data")
    }

    /// Creates a volume and its data directory. Creating a volume that exists
    /// with the same driver returns it unchanged, as Docker does.
    pub fn create_volume(&self, new: NewVolume) -> Result<Volume> {
        let name = match new.name {
            Some(name) if ids::is_valid_name(&name) => name,
            Some(name) => return Err(StoreError::InvalidVolumeName { name }),
            None => ids::new_id()?,
        };
        let driver = new.driver.unwrap_or_else(|| LOCAL_DRIVER.to_string());
        if driver != LOCAL_DRIVER {
            return Err(StoreError::UnsupportedDriver { name, driver });
        }
        let mountpoint = self.volume_mountpoint(&name);
        fs::create_dir_all(&mountpoint).map_err(|source| StoreError::VolumeIo {
            name: name.clone(),
            op: "create directory",
            path: mountpoint.clone(),
            source,
        })?;
        let labels = encode_map(&new.labels, &name, "labels")?;
        let options = encode_map(&new.options, &name, "options")?;
        let created = self.write(&format!("create volume {name}"), |tx| {
            if let Some(existing) = get_volume_in(tx, &name)? {
                return Ok(existing.driver == driver);
            }
            tx.execute(
                "INSERT INTO volumes (name, driver, mountpoint, labels, options, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    name,
                    driver,
                    mountpoint.to_string_lossy(),
                    labels,
                    options,
                    to_nanos(SystemTime::now())
                ],
            )
            .map_err(StoreError::db(format!("insert volume {name}")))?;
            Ok(true)
        })?;
        let volume = self.get_volume(&name)?;
        if !created {
            return Err(StoreError::VolumeDriverConflict {
                name,
                existing: volume.driver,
                requested: driver,
            });
        }
        debug!(name, "created volume");
        Ok(volume)
    }

    pub fn get_volume(&self, name: &str) -> Result<Volume> {
        get_volume_in(&self.conn(), name)?.ok_or_else(|| StoreError::NoSuchVolume(name.into()))
    }

    /// All volumes, by name.
    pub fn list_volumes(&self) -> Result<Vec<Volume>> {
        let conn = self.conn();
        let op = || StoreError::db("list volumes");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {VOLUME_COLUMNS} FROM volumes ORDER BY name"
            ))
            .map_err(op())?;
        let rows = stmt.query_map([], RawVolume::from_row).map_err(op())?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(op())?.decode()?);
        }
        Ok(out)
    }

    /// Removes a volume and its data. Refused while a container references it.
    pub fn remove_volume(&self, name: &str) -> Result<()> {
        self.write(&format!("remove volume {name}"), |tx| {
            let volume = get_volume_in(tx, name)?
                .ok_or_else(|| StoreError::NoSuchVolume(name.to_string()))?;
            let users = users_in(tx, name)?;
            if !users.is_empty() {
                return Err(StoreError::VolumeInUse {
                    name: name.to_string(),
                    containers: users,
                });
            }
            tx.execute("DELETE FROM volumes WHERE name = ?1", [name])
                .map_err(StoreError::db(format!("delete volume {name}")))?;
            // The volume's own directory, `<root>/volumes/<name>`.
            let dir = volume
                .mountpoint
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| volume.mountpoint.clone());
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StoreError::VolumeIo {
                    name: name.to_string(),
                    op: "remove directory",
                    path: dir,
                    source,
                }),
            }
        })?;
        debug!(name, "removed volume");
        Ok(())
    }

    /// Records that container `container_id` mounts `volume` at `destination`
    /// (recording the same pair again is not an error).
    pub fn add_volume_ref(
        &self,
        container_id: &str,
        volume: &str,
        destination: &str,
    ) -> Result<()> {
        self.write(
            &format!("reference volume {volume} from container {container_id}"),
            |tx| {
                if get_volume_in(tx, volume)?.is_none() {
                    return Err(StoreError::NoSuchVolume(volume.to_string()));
                }
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
                    "INSERT INTO container_volumes (container_id, volume, destination) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (container_id, destination) \
                 DO UPDATE SET volume = excluded.volume",
                    params![container_id, volume, destination],
                )
                .map_err(StoreError::db(format!(
                    "reference volume {volume} from container {container_id}"
                )))?;
                Ok(())
            },
        )
    }

    /// The volumes container `container_id` references.
    pub fn volume_refs(&self, container_id: &str) -> Result<Vec<VolumeRef>> {
        let conn = self.conn();
        let op = || StoreError::db(format!("list volumes of container {container_id}"));
        let mut stmt = conn
            .prepare(
                "SELECT container_id, volume, destination FROM container_volumes \
                 WHERE container_id = ?1 ORDER BY destination",
            )
            .map_err(op())?;
        let rows = stmt
            .query_map([container_id], |r| {
                Ok(VolumeRef {
                    container_id: r.get(0)?,
                    volume: r.get(1)?,
                    destination: r.get(2)?,
                })
            })
            .map_err(op())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(op())
    }

    /// The names of the volumes no container references (`volume prune`).
    pub fn unused_volumes(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let op = || StoreError::db("list unused volumes");
        let mut stmt = conn
            .prepare(
                "SELECT name FROM volumes WHERE name NOT IN \
                 (SELECT volume FROM container_volumes) ORDER BY name",
            )
            .map_err(op())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(op())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(op())
    }

    /// The ids of the containers referencing `volume`.
    pub fn volume_users(&self, volume: &str) -> Result<Vec<String>> {
        users_in(&self.conn(), volume)
    }
}

const VOLUME_COLUMNS: &str = "name, driver, mountpoint, labels, options, created";

fn encode_map(map: &BTreeMap<String, String>, name: &str, what: &str) -> Result<String> {
    serde_json::to_string(map).map_err(StoreError::json(format!("encode {what} of volume {name}")))
}

fn get_volume_in(conn: &rusqlite::Connection, name: &str) -> Result<Option<Volume>> {
    conn.query_row(
        &format!("SELECT {VOLUME_COLUMNS} FROM volumes WHERE name = ?1"),
        [name],
        RawVolume::from_row,
    )
    .optional()
    .map_err(StoreError::db(format!("read volume {name}")))?
    .map(RawVolume::decode)
    .transpose()
}

fn users_in(conn: &rusqlite::Connection, volume: &str) -> Result<Vec<String>> {
    let op = || StoreError::db(format!("list users of volume {volume}"));
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT container_id FROM container_volumes WHERE volume = ?1 \
             ORDER BY container_id",
        )
        .map_err(op())?;
    let rows = stmt
        .query_map([volume], |r| r.get::<_, String>(0))
        .map_err(op())?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(op())
}

struct RawVolume {
    name: String,
    driver: String,
    mountpoint: String,
    labels: String,
    options: String,
    created: i64,
}

impl RawVolume {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawVolume> {
        Ok(RawVolume {
            name: r.get(0)?,
            driver: r.get(1)?,
            mountpoint: r.get(2)?,
            labels: r.get(3)?,
            options: r.get(4)?,
            created: r.get(5)?,
        })
    }

    fn decode(self) -> Result<Volume> {
        let name = self.name;
        let labels = serde_json::from_str(&self.labels)
            .map_err(StoreError::json(format!("decode labels of volume {name}")))?;
        let options = serde_json::from_str(&self.options)
            .map_err(StoreError::json(format!("decode options of volume {name}")))?;
        Ok(Volume {
            driver: self.driver,
            mountpoint: PathBuf::from(self.mountpoint),
            labels,
            options,
            created: from_nanos(self.created),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewContainer;

    #[test]
    fn create_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "db".to_string());
        let v = s
            .create_volume(NewVolume {
                name: Some("data".into()),
                labels: labels.clone(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v.mountpoint, dir.path().join("volumes/data/_data"));
        assert!(v.mountpoint.is_dir());
        assert_eq!(v.driver, "local");
        assert_eq!(v.labels, labels);
        // Again: the same volume back.
        let again = s
            .create_volume(NewVolume {
                name: Some("data".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(again, v);
        let anon = s.create_volume(NewVolume::default()).unwrap();
        assert!(ids::is_full_id(&anon.name));
        assert_eq!(s.list_volumes().unwrap().len(), 2);

        let c = s
            .create_container(NewContainer {
                name: Some("user".into()),
                ..Default::default()
            })
            .unwrap();
        s.add_volume_ref(&c.id, "data", "/var/lib/db").unwrap();
        s.add_volume_ref(&c.id, "data", "/var/lib/db").unwrap();
        assert_eq!(s.volume_users("data").unwrap(), vec![c.id.clone()]);
        assert_eq!(s.unused_volumes().unwrap(), vec![anon.name.clone()]);
        let err = s.remove_volume("data").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("remove data: volume is in use - [{}]", c.id)
        );
        assert!(v.mountpoint.is_dir());

        s.remove(&c.id).unwrap();
        assert!(s.volume_users("data").unwrap().is_empty());
        s.remove_volume("data").unwrap();
        assert!(!dir.path().join("volumes/data").exists());
        assert!(matches!(
            s.get_volume("data"),
            Err(StoreError::NoSuchVolume(_))
        ));
        assert_eq!(
            s.remove_volume("data").unwrap_err().to_string(),
            "No such volume: data"
        );
    }

    #[test]
    fn bad_names_and_drivers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for bad in ["a", "../x", "-x", "a/b"] {
            let err = s
                .create_volume(NewVolume {
                    name: Some(bad.into()),
                    ..Default::default()
                })
                .unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidVolumeName { .. }),
                "{bad}: {err}"
            );
        }
        let err = s
            .create_volume(NewVolume {
                name: Some("nfsvol".into()),
                driver: Some("nfs".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedDriver { .. }), "{err}");
    }
}
