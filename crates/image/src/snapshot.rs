//! Overlay snapshots: the root file system of a container as an overlayfs mount whose lower
//! directories are the image's layer chain, over a fresh upper and work directory.
//!
//! Layout, one directory per snapshot:
//!
//! ```text
//! <root>/snapshots/<id>/upper    writable layer of the container
//! <root>/snapshots/<id>/work     overlayfs' scratch directory
//! <root>/snapshots/<id>/merged   the usual mount point
//! <root>/snapshots/<id>/l/0..N-1 symlinks to the layer directories, 0 = bottom-most
//! <root>/snapshots/<id>/empty    the single lower directory of a snapshot with no layers
//! ```
//!
//! The snapshot layer only describes mounts ([`Snapshotter::prepare`] returns a [`MountSpec`]);
//! the caller performs them with [`mount`] where and when it wants.
//!
//! # The mount-option length limit
//!
//! The kernel copies mount data into a single page, so the whole overlay option string must fit
//! in 4096 bytes including its terminating NUL. Absolute layer paths (a hundred bytes each) run
//! out after a few dozen layers. Instead every layer gets a short symlink `l/<n>` inside the
//! snapshot directory and the options name them relatively (`lowerdir=l/2:l/1:l/0,upperdir=upper,
//! workdir=work`); overlayfs resolves relative paths against the mounting process' working
//! directory, so [`mount`] changes into the snapshot directory for the duration of the mount(2)
//! call. With that, 500 layers (overlayfs' default stacking limit) need under 3 KiB.
//!
//! **Concurrency:** the working directory belongs to the whole process, not to a thread. While
//! [`mount`] runs, other threads of the same process must not rely on the working directory
//! (relative paths, spawning children that inherit it). A single-threaded CLI is fine; a
//! multi-threaded caller must serialise [`mount`] with any such work.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags, MsFlags};
use tracing::{debug, warn};

/// Largest mount data the kernel accepts: one page, including the terminating NUL.
pub const MAX_OPTIONS_LEN: usize = 4095;

/// Longest snapshot id accepted.
pub const MAX_ID_LEN: usize = 128;

const EMPTY_LOWER: &str = "empty";

/// Why a snapshot operation failed. Every variant names the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The id cannot be used as a single, safe file name.
    #[error("snapshot id {id:?} is invalid: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// `prepare` was called for a snapshot that already exists.
    #[error("snapshot {id:?} already exists at {}", path.display())]
    Exists { id: String, path: PathBuf },
    /// The overlay options for this many layers do not fit in one page.
    #[error("snapshot {id:?}: overlay options for {layers} layers are {len} bytes, over the {MAX_OPTIONS_LEN}-byte limit")]
    OptionsTooLong {
        id: String,
        layers: usize,
        len: usize,
    },
    /// A file-system operation failed.
    #[error("snapshot {id:?}: {op} {}: {source}", path.display())]
    Io {
        id: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// mount(2) failed.
    #[error("snapshot {id:?}: mounting overlay on {}: {errno} (errno {})", target.display(), *errno as i32)]
    Mount {
        id: String,
        target: PathBuf,
        errno: Errno,
    },
    /// umount2(2) failed for a reason other than "not mounted".
    #[error("snapshot {id:?}: unmounting {}: {errno} (errno {})", path.display(), *errno as i32)]
    Unmount {
        id: String,
        path: PathBuf,
        errno: Errno,
    },
}

/// Result of snapshot operations.
pub type Result<T> = std::result::Result<T, SnapshotError>;

/// Everything needed to mount a snapshot; see [`mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The snapshot id.
    pub id: String,
    /// File-system type for mount(2): `overlay`.
    pub fstype: String,
    /// Source for mount(2): `overlay`.
    pub source: String,
    /// Mount data, with paths relative to [`MountSpec::cwd`].
    pub options: String,
    /// Directory the relative paths in `options` are resolved against (the snapshot directory).
    pub cwd: PathBuf,
    /// The snapshot's own mount point, `<cwd>/merged`; [`Snapshotter::remove`] unmounts it.
    pub merged: PathBuf,
}

/// The overlay mount options for a snapshot of `n_layers` layers, relative to the snapshot
/// directory. Layers are numbered bottom-most first (`l/0` is the base layer); overlayfs wants
/// the top-most lower directory first, so the list runs from `l/<n-1>` down to `l/0`. Zero
/// layers use the `empty` directory.
pub fn mount_options(n_layers: usize) -> String {
    let mut out = String::with_capacity(32 + n_layers * 6);
    out.push_str("lowerdir=");
    if n_layers == 0 {
        out.push_str(EMPTY_LOWER);
    }
    for (i, n) in (0..n_layers).rev().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str("l/");
        out.push_str(&n.to_string());
    }
    out.push_str(",upperdir=upper,workdir=work");
    out
}

/// Check that `id` is usable as one path component: 1..=128 bytes of `[A-Za-z0-9_.-]`, not
/// starting with `.` or `-`.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(SnapshotError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 128 bytes");
    }
    if id.starts_with('.') || id.starts_with('-') {
        return bad("starts with '.' or '-'");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return bad("only ASCII letters, digits, '_', '.' and '-' are allowed");
    }
    Ok(())
}

/// Creates, describes and removes overlay snapshots under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

impl Snapshotter {
    /// A snapshotter keeping its snapshots in `<root>/snapshots`. Nothing is created yet.
    pub fn new(root: impl Into<PathBuf>) -> Snapshotter {
        Snapshotter { root: root.into() }
    }

    /// The directory of snapshot `id` (whether or not it exists).
    pub fn dir(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        Ok(self.root.join("snapshots").join(id))
    }

    /// Create snapshot `id` over `layers` (bottom-most first) and describe its mount. Nothing
    /// is mounted. The layer directories must exist; they are referenced by absolute path from
    /// the snapshot's `l/` symlinks. Fails if the snapshot already exists; on any other failure
    /// the partial snapshot directory is removed.
    pub fn prepare(&self, id: &str, layers: &[PathBuf]) -> Result<MountSpec> {
        let dir = self.dir(id)?;
        let options = mount_options(layers.len());
        if options.len() > MAX_OPTIONS_LEN {
            return Err(SnapshotError::OptionsTooLong {
                id: id.to_string(),
                layers: layers.len(),
                len: options.len(),
            });
        }
        let io_err = |op, path: &Path| {
            let id = id.to_string();
            let path = path.to_path_buf();
            move |source| SnapshotError::Io {
                id,
                op,
                path,
                source,
            }
        };
        let parent = self.root.join("snapshots");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&parent)
            .map_err(io_err("creating", &parent))?;
        // Resolve the layers before creating anything, so a bad layer leaves no trace.
        let mut targets = Vec::with_capacity(layers.len());
        for layer in layers {
            let target = fs::canonicalize(layer).map_err(io_err("resolving layer", layer))?;
            if !target.is_dir() {
                return Err(io_err("resolving layer", layer)(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "layer is not a directory",
                )));
            }
            targets.push(target);
        }
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::Exists {
                    id: id.to_string(),
                    path: dir,
                });
            }
            Err(e) => return Err(io_err("creating", &dir)(e)),
        }
        let populate = || -> Result<()> {
            for (name, mode) in [
                ("upper", 0o755),
                ("work", 0o700),
                ("merged", 0o755),
                ("l", 0o700),
            ] {
                let path = dir.join(name);
                fs::DirBuilder::new()
                    .mode(mode)
                    .create(&path)
                    .map_err(io_err("creating", &path))?;
            }
            if targets.is_empty() {
                let path = dir.join(EMPTY_LOWER);
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&path)
                    .map_err(io_err("creating", &path))?;
            }
            for (n, target) in targets.iter().enumerate() {
                let link = dir.join("l").join(n.to_string());
                symlink(target, &link).map_err(io_err("linking layer", &link))?;
            }
            Ok(())
        };
        if let Err(e) = populate() {
            if let Err(cleanup) = fs::remove_dir_all(&dir) {
                warn!(snapshot = id, error = %cleanup, "removing partial snapshot");
            }
            return Err(e);
        }
        debug!(snapshot = id, layers = layers.len(), "snapshot prepared");
        Ok(MountSpec {
            id: id.to_string(),
            fstype: "overlay".to_string(),
            source: "overlay".to_string(),
            options,
            merged: dir.join("merged"),
            cwd: dir,
        })
    }

    /// Unmount the snapshot's `merged` directory if anything is mounted there (lazily, with
    /// `MNT_DETACH`, repeated for stacked mounts) and remove the snapshot directory. Removing a
    /// snapshot that does not exist succeeds. Mounts of the snapshot elsewhere than `merged` are
    /// the caller's to undo.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(SnapshotError::Io {
                    id: id.to_string(),
                    op: "inspecting",
                    path: dir,
                    source: e,
                })
            }
            Ok(_) => {}
        }
        let merged = dir.join("merged");
        // Each successful umount2 peels off one mount; EINVAL means nothing is mounted there.
        // Bounded so a pathological state cannot spin forever.
        for _ in 0..64 {
            match umount2(&merged, MntFlags::MNT_DETACH) {
                Ok(()) => debug!(snapshot = id, "unmounted merged"),
                Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
                Err(errno) => {
                    return Err(SnapshotError::Unmount {
                        id: id.to_string(),
                        path: merged,
                        errno,
                    })
                }
            }
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SnapshotError::Io {
                id: id.to_string(),
                op: "removing",
                path: dir,
                source,
            }),
        }
    }
}

/// Mount `spec` on `target` (usually `spec.merged`). The working directory of the process is
/// switched to `spec.cwd` for the mount(2) call and restored afterwards; see the module
/// documentation for what that means for multi-threaded callers.
pub fn mount(spec: &MountSpec, target: &Path) -> Result<()> {
    let io_err = |op, path: &Path| {
        let id = spec.id.clone();
        let path = path.to_path_buf();
        move |source| SnapshotError::Io {
            id,
            op,
            path,
            source,
        }
    };
    // A relative target must not be resolved against the snapshot directory.
    let target = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(io_err("resolving the working directory for", target))?
            .join(target)
    };
    // Keep the old working directory open so it can be restored even if it was renamed.
    let here = Path::new(".");
    let previous = File::open(here).map_err(io_err("opening the working directory", here))?;
    nix::unistd::chdir(&spec.cwd)
        .map_err(|errno| io_err("entering", &spec.cwd)(io::Error::from(errno)))?;
    let mounted = nix::mount::mount(
        Some(spec.source.as_str()),
        &target,
        Some(spec.fstype.as_str()),
        MsFlags::empty(),
        Some(spec.options.as_str()),
    );
    let restored = nix::unistd::fchdir(previous.as_raw_fd());
    if let Err(errno) = mounted {
        if let Err(e) = restored {
            warn!(snapshot = %spec.id, error = %e, "restoring the working directory");
        }
        return Err(SnapshotError::Mount {
            id: spec.id.clone(),
            target,
            errno,
        });
    }
    restored
        .map_err(|errno| io_err("restoring the working directory", here)(io::Error::from(errno)))?;
    debug!(snapshot = %spec.id, target = %target.display(), "overlay mounted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_top_layer_first() {
        assert_eq!(
            mount_options(3),
            "lowerdir=l/2:l/1:l/0,upperdir=upper,workdir=work"
        );
        assert_eq!(mount_options(1), "lowerdir=l/0,upperdir=upper,workdir=work");
        assert_eq!(
            mount_options(0),
            "lowerdir=empty,upperdir=upper,workdir=work"
        );
    }

    #[test]
    fn ids_are_single_safe_components() {
        for good in ["abc", "a.b-c_d", "0123456789abcdef", &"x".repeat(128)] {
            validate_id(good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a\0b",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
