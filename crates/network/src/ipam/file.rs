//! [`FileStore`]: IPAM records as files, until the engine's database takes over.
//!
//! Layout of the store's directory:
//!
//! - `<network>.json`: one network's [`NetworkAllocations`], pretty-printed JSON.
//! - `lock`: an empty file; every update holds an exclusive `flock(2)` on it for its
//!   whole read-modify-write, which serializes updates between processes (and
//!   between threads, since each update opens the file anew and flock locks belong
//!   to the open file description). The kernel drops the lock when a holder dies.
//! - `<network>.json.tmp`: a record being written. It is written and fsynced, then
//!   renamed over `<network>.json`, then the directory is fsynced, so a crash leaves
//!   the old or the new record and a committed record survives a power loss. A
//!   leftover temp file is overwritten by the next update.
//!
//! Reads take no lock: a record is only ever replaced by rename, so a reader sees
//! a whole record, old or new.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::{IpamError, IpamStore, NetworkAllocations};

const LOCK_FILE: &str = "lock";

/// A directory of JSON records, one per network, safe for concurrent use by
/// separate processes. Cheap to open; holds no file open between operations.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (mode 0700) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, IpamError> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| IpamError::OpenStore {
                path: dir.clone(),
                source,
            })?;
        Ok(FileStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, network: &str) -> Result<PathBuf, IpamError> {
        check_network_name(network)?;
        Ok(self.dir.join(format!("{network}.json")))
    }

    /// Opens the lock file and takes the exclusive lock; dropping the returned
    /// file releases it.
    fn lock(&self, network: &str) -> Result<File, IpamError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(network, "open lock file", &path, e))?;
        file.lock()
            .map_err(|e| io_err(network, "lock (flock LOCK_EX)", &path, e))?;
        Ok(file)
    }

    fn read(&self, network: &str, path: &Path) -> Result<NetworkAllocations, IpamError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| IpamError::Corrupt {
                network: network.to_string(),
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(NetworkAllocations::default()),
            Err(e) => Err(io_err(network, "read", path, e)),
        }
    }

    fn write(
        &self,
        network: &str,
        path: &Path,
        state: &NetworkAllocations,
    ) -> Result<(), IpamError> {
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|source| IpamError::Corrupt {
            network: network.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        bytes.push(b'\n');
        let tmp = path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(|e| io_err(network, "create", &tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| io_err(network, "write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| io_err(network, "fsync", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| io_err(network, "rename into place", path, e))?;
        self.sync_dir(network)
    }

    fn sync_dir(&self, network: &str) -> Result<(), IpamError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(network, "fsync directory", &self.dir, e))
    }
}

impl IpamStore for FileStore {
    fn update(
        &self,
        network: &str,
        f: &mut dyn FnMut(&mut NetworkAllocations) -> Result<(), IpamError>,
    ) -> Result<(), IpamError> {
        let path = self.record_path(network)?;
        let _lock = self.lock(network)?;
        let before = self.read(network, &path)?;
        let mut state = before.clone();
        f(&mut state)?;
        if state != before {
            self.write(network, &path, &state)?;
            debug!(network, path = %path.display(), "committed IPAM record");
        }
        Ok(())
        // `_lock` is dropped here, after the record is durable.
    }

    fn load(&self, network: &str) -> Result<NetworkAllocations, IpamError> {
        let path = self.record_path(network)?;
        self.read(network, &path)
    }

    fn remove_network(&self, network: &str) -> Result<(), IpamError> {
        let path = self.record_path(network)?;
        let _lock = self.lock(network)?;
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(network),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(network, "remove", &path, e)),
        }
    }
}

/// Network names become file names: letters, digits, `_`, `.` and `-`, starting
/// with a letter or digit (Docker's rule for network names), at most 128 bytes.
fn check_network_name(network: &str) -> Result<(), IpamError> {
    let bad = |reason: &str| {
        Err(IpamError::InvalidName {
            network: network.to_string(),
            reason: reason.to_string(),
        })
    };
    let Some(first) = network.bytes().next() else {
        return bad("a network name must not be empty");
    };
    if !first.is_ascii_alphanumeric() {
        return bad("a network name must start with a letter or digit");
    }
    if network.len() > 128 {
        return bad("a network name must be at most 128 bytes");
    }
    if !network
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return bad("a network name may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn io_err(network: &str, op: &'static str, path: &Path, source: std::io::Error) -> IpamError {
    IpamError::Io {
        network: network.to_string(),
        op,
        path: path.to_path_buf(),
        source,
    }
}
