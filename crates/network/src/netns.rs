//! Named network namespaces: a namespace kept alive by a bind mount of its nsfs
//! inode on a file (like `ip netns add`), so a container's network can be set up
//! before the container exists and outlive any process.
//!
//! Creating one needs a thread: unshare(CLONE_NEWNET) changes the namespace of
//! the calling thread only, so a short-lived thread unshares, the namespace is
//! bind-mounted from /proc/thread-self/ns/net, and the thread exits without ever
//! running anything else in the new namespace.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("netns {path}: {op}: {errno} ({})", errno.desc())]
    Sys {
        path: PathBuf,
        op: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("netns {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("netns {0}: already exists")]
    Exists(PathBuf),
}

fn sys<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(nix::errno::Errno) -> NetnsError + 'a {
    move |errno| NetnsError::Sys {
        path: path.to_path_buf(),
        op,
        errno,
    }
}

/// Create a new network namespace pinned at `path` (its parent is created). The
/// loopback link inside is left down; the caller brings it up with netlink.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NetnsError::Io {
            path: dir.into(),
            op: "mkdir",
            source,
        })?;
    }
    // O_EXCL: two creators of one name cannot both succeed.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(path.into()))
        }
        Err(source) => {
            return Err(NetnsError::Io {
                path: path.into(),
                op: "create",
                source,
            })
        }
    }
    let target = path.to_path_buf();
    let result = std::thread::spawn(move || -> Result<(), NetnsError> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(sys(&target, "unshare(CLONE_NEWNET)"))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(&target, "bind mount /proc/thread-self/ns/net"))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetnsError::Sys {
            path: path.into(),
            op: "thread",
            errno: nix::errno::Errno::EIO,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Unpin and remove the namespace at `path`. Idempotent: a missing file is fine.
/// Processes still inside keep the namespace alive until they exit.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a leftover file); ENOENT: already gone.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(sys(path, "umount2")(e)),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NetnsError::Io {
            path: path.into(),
            op: "unlink",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// True if `path` is a pinned network namespace (an nsfs mount).
pub fn is_netns(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_exclusive_and_remove_is_idempotent() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns").join("c1");
        create(&path).unwrap();
        assert!(is_netns(&path));
        let own = std::fs::metadata("/proc/self/ns/net").unwrap();
        let theirs = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(own.ino(), theirs.ino(), "a new namespace, not ours");
        assert!(matches!(create(&path), Err(NetnsError::Exists(_))));
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert!(!path.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(dir.path().to_str().unwrap()),
            "mount left behind"
        );
    }
}
