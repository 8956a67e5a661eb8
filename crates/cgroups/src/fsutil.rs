//! File operations on cgroupfs, each logged and each error naming op, path and errno.

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{CgroupError, Result};

/// One pending write of `value` to the cgroup file `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub path: PathBuf,
    pub value: String,
}

impl Write {
    pub fn new(dir: &Path, file: &str, value: impl Into<String>) -> Write {
        Write {
            path: dir.join(file),
            value: value.into(),
        }
    }
}

/// How long `remove` keeps retrying an rmdir the kernel answers with EBUSY.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> CgroupError {
    CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Write `value` with a single write(2) to an existing file (cgroupfs files are
/// never created; a missing file is an error naming it).
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| io_err("write", path, e))?;
    tracing::debug!(path = %path.display(), value, "cgroup write done");
    Ok(())
}

pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_err("read", path, e))
}

/// Before any write: every target file must exist.
pub fn check_targets(writes: &[Write]) -> Result<()> {
    for w in writes {
        match std::fs::metadata(&w.path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let file = w
                    .path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(CgroupError::Unsupported {
                    field: file,
                    reason: format!(
                        "{} does not exist (controller not enabled for this cgroup, or the cgroup was not created)",
                        w.path.display()
                    ),
                });
            }
            Err(e) => return Err(io_err("stat", &w.path, e)),
        }
    }
    Ok(())
}

/// `mkdir -p`, retried when a concurrent `remove` of another container deletes an
/// empty shared parent between our mkdirs (ENOENT).
pub fn create_dir_all(dir: &Path) -> Result<()> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        tracing::debug!(path = %dir.display(), attempt, "cgroup mkdir");
        match std::fs::create_dir_all(dir) {
            Ok(()) => {
                tracing::debug!(path = %dir.display(), "cgroup mkdir done");
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < ATTEMPTS => {
                tracing::debug!(path = %dir.display(), "parent vanished during mkdir; retrying");
            }
            Err(e) => return Err(io_err("mkdir", dir, e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// Pids listed in `dir/cgroup.procs` and in every descendant cgroup, sorted.
pub fn read_pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    collect_pids(dir, &mut pids)?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    for line in read_file(&procs)?.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let pid = line.parse::<i32>().map_err(|_| CgroupError::Invalid {
            field: procs.display().to_string(),
            reason: format!("{line:?}: not a pid"),
        })?;
        pids.push(pid);
    }
    for sub in subdirs(dir)? {
        match collect_pids(&sub, pids) {
            // A child cgroup removed while we walk is fine.
            Err(CgroupError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| io_err("stat", &entry.path(), e))?;
        if ft.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// rmdir one cgroup directory, retrying EBUSY (processes still exiting) until
/// `deadline`. Missing is fine.
fn rmdir_retry(dir: &Path, deadline: Instant) -> Result<()> {
    // Exiting processes usually leave within a millisecond or two.
    let mut delay = Duration::from_millis(1);
    loop {
        tracing::debug!(path = %dir.display(), "cgroup rmdir");
        match std::fs::remove_dir(dir) {
            Ok(()) => {
                tracing::debug!(path = %dir.display(), "cgroup rmdir done");
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(io_err("rmdir", dir, e)),
        }
    }
}

/// Depth-first removal of a cgroup and the cgroups below it.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    for sub in subdirs(dir)? {
        remove_tree(&sub, deadline)?;
    }
    rmdir_retry(dir, deadline)
}

/// Remove `root/rel` (and any child cgroups), then each now-empty ancestor up to,
/// not including, `root`. An ancestor still in use (ENOTEMPTY/EBUSY) or already
/// gone (ENOENT) ends or skips that step silently.
/// EBUSY is retried until `deadline` (shared by all hierarchies of one remove).
pub fn remove_cgroup(root: &Path, rel: &Path, deadline: Instant) -> Result<()> {
    let leaf = root.join(rel);
    remove_tree(&leaf, deadline)?;
    let mut cur = leaf.parent();
    while let Some(dir) = cur {
        if dir == root || !dir.starts_with(root) {
            break;
        }
        tracing::debug!(path = %dir.display(), "cgroup rmdir empty ancestor");
        match std::fs::remove_dir(dir) {
            Ok(()) => tracing::debug!(path = %dir.display(), "cgroup rmdir done"),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTEMPTY) | Some(libc::EBUSY) | Some(libc::EEXIST)
                ) =>
            {
                tracing::debug!(path = %dir.display(), "ancestor still in use; kept");
                break;
            }
            Err(e) => return Err(io_err("rmdir", dir, e)),
        }
        cur = dir.parent();
    }
    Ok(())
}

/// The directories from `root` (included) down to `root/rel` (included).
pub fn path_chain(root: &Path, rel: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        out.push(cur.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_requires_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let err = write_file(&d.path().join("memory.max"), "1").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("open") && text.contains("memory.max") && text.contains("No such file"),
            "{text}"
        );
        std::fs::write(d.path().join("memory.max"), "max\n").unwrap();
        write_file(&d.path().join("memory.max"), "1").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("memory.max")).unwrap(),
            "1"
        );
    }

    fn soon() -> Instant {
        Instant::now() + REMOVE_TIMEOUT
    }

    #[test]
    fn remove_is_idempotent_and_cleans_empty_ancestors() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("coracle/a/nested")).unwrap();
        std::fs::create_dir_all(root.join("coracle/b")).unwrap();
        remove_cgroup(root, Path::new("coracle/a"), soon()).unwrap();
        assert!(!root.join("coracle/a").exists());
        assert!(root.join("coracle/b").exists(), "sibling kept");
        remove_cgroup(root, Path::new("coracle/a"), soon()).unwrap();
        remove_cgroup(root, Path::new("coracle/b"), soon()).unwrap();
        assert!(!root.join("coracle").exists(), "empty parent removed");
        assert!(root.exists(), "root kept");
    }

    #[test]
    fn pids_of_descendants() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("c/sub")).unwrap();
        std::fs::write(root.join("c/cgroup.procs"), "12\n7\n").unwrap();
        std::fs::write(root.join("c/sub/cgroup.procs"), "30\n").unwrap();
        assert_eq!(
            read_pids_recursive(&root.join("c")).unwrap(),
            vec![7, 12, 30]
        );
        std::fs::write(root.join("c/cgroup.procs"), "x\n").unwrap();
        assert!(read_pids_recursive(&root.join("c")).is_err());
    }

    #[test]
    fn chain() {
        assert_eq!(
            path_chain(Path::new("/r"), Path::new("a/b")),
            vec![
                PathBuf::from("/r"),
                PathBuf::from("/r/a"),
                PathBuf::from("/r/a/b")
            ]
        );
    }
}
