//! A container's saved state under `--root/<id>/`.
//!
//! `state.json` holds the OCI state (what `coracle-runtime state` prints, with runc's
//! extra `rootfs`, `created` and `owner` fields) plus what later operations need: the
//! cgroup path, the init's start time (to tell a recycled pid from ours) and the
//! spec (so `delete` can run poststop hooks after the bundle is gone). Every write
//! is atomic: write a temp file, fsync, rename.
//!
//! The status is never trusted from disk alone: [`ContainerState::refresh`] derives
//! it from the init process, the `exec.fifo` and the freezer.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {id} does not exist (no {path})")]
    NotFound { id: String, path: PathBuf },
    #[error("container id {0:?} is already in use")]
    Exists(String),
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt state: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("container {id} is {status}: cannot {op}")]
    WrongStatus {
        id: String,
        status: Status,
        op: &'static str,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        // pad, not write_str: `list` aligns columns with `{:<10}`.
        f.pad(s)
    }
}

impl Status {
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_exec(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
    /// Without `--force`, only a container whose process is gone (or never started
    /// the user's program) may be deleted.
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Stopped | Status::Created | Status::Creating)
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Private fields below: not part of what `state` prints.
    #[serde(default, rename = "coracle.pidStartTime")]
    pub pid_start_time: Option<u64>,
    #[serde(default, rename = "coracle.cgroupPath")]
    pub cgroup_path: PathBuf,
    #[serde(default, rename = "coracle.config")]
    pub config: Option<Spec>,
}

impl ContainerState {
    /// The OCI state JSON (with runc's extra fields) as `state` prints it and hooks
    /// receive it on stdin.
    pub fn public_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if let Some(pid) = self.pid {
            v["pid"] = pid.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }

    /// Derive the live status from the init process, the exec fifo and the freezer.
    pub fn refresh(&mut self, dir: &Path) {
        if self.status == Status::Creating {
            return;
        }
        let alive = match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            (Some(pid), None) => process_start_time(pid).is_some(),
            _ => false,
        };
        self.status = if !alive {
            Status::Stopped
        } else if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else if self
            .cgroup()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false)
        {
            Status::Paused
        } else {
            Status::Running
        };
    }

    /// The container's cgroup, on this host's layout.
    pub fn cgroup(&self) -> Option<coracle_cgroups::Manager> {
        let layout = coracle_cgroups::Layout::detect().ok()?;
        Some(coracle_cgroups::Manager::new(layout, &self.cgroup_path))
    }

    pub fn require(&self, ok: bool, op: &'static str) -> Result<(), StateError> {
        if ok {
            Ok(())
        } else {
            Err(StateError::WrongStatus {
                id: self.id.clone(),
                status: self.status,
                op,
            })
        }
    }
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or
/// None if there is no such process or it is a zombie (it has exited).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Names in the state root that begin with this belong to the runtime itself (the
/// sealed-executable mount point, the seccomp cache), never to a container.
pub const RESERVED_PREFIX: &str = ".coracle-";

/// The seccomp program cache in the state root (see [`crate::seccomp::cache`]).
pub const SECCOMP_CACHE_DIR: &str = ".coracle-seccomp";

/// Check that `id` can be used as a directory name and a cgroup leaf.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let bad = |reason| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("'.' and '..' are not ids");
    }
    if id.starts_with(RESERVED_PREFIX) {
        return bad("names beginning with .coracle- are the runtime's own");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The state directory of one container: `<root>/<id>`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
    pub id: String,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        Ok(StateDir {
            dir: root.join(id),
            id: id.to_string(),
        })
    }

    /// Reserve the id: mkdir is atomic, so two `create`s of one id cannot both win.
    pub fn reserve(&self) -> Result<(), StateError> {
        let root = self.dir.parent().expect("state dir has a parent");
        std::fs::create_dir_all(root).map_err(io("mkdir", root))?;
        match std::fs::create_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(self.id.clone()))
            }
            Err(e) => Err(io("mkdir", &self.dir)(e)),
        }
    }

    pub fn load(&self) -> Result<ContainerState, StateError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound {
                    id: self.id.clone(),
                    path,
                })
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Load and refresh the live status.
    pub fn load_live(&self) -> Result<ContainerState, StateError> {
        let mut st = self.load()?;
        st.refresh(&self.dir);
        Ok(st)
    }

    /// Atomically replace `state.json`.
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(state).expect("state serializes");
        write_atomic(&self.dir.join(STATE_FILE), &bytes)
    }

    /// Remove the whole directory; a missing directory is not an error.
    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.dir)(e)),
        }
    }
}

/// Write to `<path>.tmp`, then rename over `path`: a reader sees the old or the new
/// file, never a torn one, whenever a writer process dies.
///
/// No fsync: runtime state lives under a run directory (`/run/...`, tmpfs) and
/// describes processes that do not survive a reboot, so durability across a power
/// loss buys nothing, and each fsync would cost milliseconds on every container
/// start (three state writes per `run`). The engine's database, which must survive
/// reboots, makes its own durability choices.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

/// Every container under `root`, sorted by id. Unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<ContainerState>, StateError> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io("readdir", root)(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(dir) = StateDir::new(root, &id) else {
            continue;
        };
        if let Ok(st) = dir.load_live() {
            out.push(st);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Now as RFC 3339 UTC with nanoseconds, e.g. `2026-11-29T03:04:05.123456789Z`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Format seconds since the epoch as RFC 3339 UTC (proleptic Gregorian calendar).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm, public domain arithmetic).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tod / 3600,
        (tod % 3600) / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_920_245, 0), "2026-11-29T02:44:05.000000000Z");
    }

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("web-1_a.b").is_ok());
        for bad in ["", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn status_honours_column_width() {
        assert_eq!(format!("{:<10}|", Status::Running), "running   |");
    }

    #[test]
    fn status_transitions() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Running.can_delete());
        assert!(Status::Stopped.can_delete());
        assert!(Status::Paused.can_resume() && !Status::Running.can_resume());
        assert!(!Status::Stopped.can_kill());
    }

    #[test]
    fn reserve_refuses_an_id_in_use_and_save_is_atomic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path(), "c1").unwrap();
        dir.reserve().unwrap();
        assert!(matches!(dir.reserve(), Err(StateError::Exists(_))));
        let st = ContainerState {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            status: Status::Created,
            pid: Some(i32::MAX),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339_now(),
            owner: "root".into(),
            annotations: HashMap::new(),
            pid_start_time: Some(1),
            cgroup_path: "/coracle/c1".into(),
            config: None,
        };
        dir.save(&st).unwrap();
        assert!(!dir.dir.join("state.tmp").exists());
        let mut back = dir.load().unwrap();
        back.refresh(&dir.dir);
        assert_eq!(back.status, Status::Stopped, "no such pid: stopped");
        assert!(back.public_json().get("coracle.cgroupPath").is_none());
        dir.remove().unwrap();
        dir.remove().unwrap();
    }

    #[test]
    fn own_process_start_time_is_readable() {
        assert!(process_start_time(std::process::id() as i32).is_some());
    }
}
