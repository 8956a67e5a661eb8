//! After pivot: masked paths, read-only paths, and the read-only root.
//!
//! These run with the container's root as `/`, so a symlink in a path can no longer
//! lead out of the container; the paths are used as they are, under `root` (which
//! is `/` in production and a scratch directory in tests).

use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::Spec;

use super::mounts::mount_flags_of;
use super::{join_in, RootfsError};
use crate::sys::{Syscall, SyscallError};

/// The file type of `path`, following symlinks (as mount does); `None` if missing.
fn kind(path: &Path) -> Result<Option<SFlag>, SyscallError> {
    match nix::sys::stat::stat(path) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(SyscallError::new("stat", path, e)),
    }
}

/// The flags of the mount at `path` that a remount must keep (see
/// [`mount_flags_of`]); read-only is added by the caller.
fn kept_flags(path: &Path) -> Result<MsFlags, SyscallError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| SyscallError::new("statvfs", path, e))?;
    Ok(mount_flags_of(&st) & !MsFlags::MS_RDONLY)
}

/// Hide `path`: /dev/null bound over a file, an empty read-only tmpfs over a
/// directory. A path the container does not have is skipped.
fn mask(sys: &dyn Syscall, root: &Path, path: &str) -> Result<(), RootfsError> {
    let target = join_in(root, path)?;
    let err = |source| RootfsError::Masked {
        path: path.into(),
        source,
    };
    match kind(&target).map_err(err)? {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => sys
            .mount(
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
            .map_err(err),
        Some(_) => {
            let null = root.join("dev/null");
            sys.mount(Some(&null), &target, None, MsFlags::MS_BIND, None)
                .map_err(err)
        }
    }
}

/// Make `path` read-only: a recursive bind onto itself makes it a mount of its own,
/// then a bind remount sets MS_RDONLY on it, keeping its nosuid/nodev/noexec/atime
/// flags (a user namespace refuses to drop them).
fn readonly(sys: &dyn Syscall, root: &Path, path: &str) -> Result<(), RootfsError> {
    let target = join_in(root, path)?;
    let err = |source| RootfsError::Readonly {
        path: path.into(),
        source,
    };
    if kind(&target).map_err(err)?.is_none() {
        return Ok(());
    }
    sys.mount(
        Some(&target),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(err)?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | kept_flags(&target).map_err(err)?;
    sys.mount(None, &target, None, flags, None).map_err(err)
}

/// Phase 3 with the container's root at `root`.
pub(super) fn finish_in(sys: &dyn Syscall, spec: &Spec, root: &Path) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(sys, root, p)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(sys, root, p)?;
    }
    // Last: once the root is read-only nothing more can be created in it, and the
    // masks and read-only binds above need their mount points (and /dev/null).
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let err = |source| RootfsError::Readonly {
            path: "/".into(),
            source,
        };
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | kept_flags(root).map_err(err)?;
        sys.mount(None, root, None, flags, None).map_err(err)?;
    }
    Ok(())
}
