//! The container's root file system: mounts, devices, pivot_root, masked and
//! read-only paths. Runs in the container's init, inside its new mount namespace.
//!
//! The init process calls, in this order:
//!
//! 1. [`prepare`] (before pivot_root): `/` propagation, the rootfs bound onto itself,
//!    the spec's mounts with every target resolved inside the rootfs ([`resolve`]),
//!    default and spec devices, /dev symlinks;
//! 2. [`setup_console_in`] for a container with a terminal (or [`setup_console`] after
//!    step 3), once the devpts instance the pty belongs to is mounted;
//! 3. [`pivot`]: the rootfs becomes `/`;
//! 4. [`finish`]: masked paths, read-only paths, and the read-only root last.
//!
//! Every mount goes through [`Syscall`], so the order and arguments can be checked
//! with [`crate::sys::RecordingSyscall`] without root. Opening and creating files
//! (openat2, mkdirat) is done directly: it needs no privilege and is what keeps the
//! mounts inside the rootfs.
//!
//! Split: [`options`] (pure option parsing), [`resolve`] (symlink-safe lookup),
//! `mounts` (one spec mount), `devices`, `pivot`, `masked` (masked/read-only paths),
//! `console`.

use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{Mount, Spec};

use crate::sys::{Syscall, SyscallError};

mod console;
mod devices;
mod masked;
mod mountinfo;
mod mounts;
pub mod options;
mod pivot;
pub mod resolve;
#[cfg(test)]
mod root_tests;
#[cfg(test)]
mod tests;

pub use console::{setup_console, setup_console_in};
pub use resolve::ResolveError;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {0}")]
    Syscall(#[from] SyscallError),
    #[error("rootfs: {0}")]
    Invalid(String),
    /// A spec entry that cannot be applied (checked before anything is mounted).
    #[error("rootfs: mount {destination}: {reason}")]
    InvalidMount {
        destination: PathBuf,
        reason: String,
    },
    /// A mount call for the mount at `destination` (in the container) failed.
    #[error("rootfs: mount {destination}: {source}")]
    Mount {
        destination: PathBuf,
        source: SyscallError,
    },
    /// The direct mount failed and so did the bind-mount fallback: both errors.
    #[error("rootfs: mount {destination}: {first}; fallback bind mount failed too: {fallback}")]
    MountFallback {
        destination: PathBuf,
        first: SyscallError,
        fallback: SyscallError,
    },
    /// `destination` could not be resolved safely inside the root file system
    /// (e.g. a symlink in it points outside).
    #[error("rootfs: {what} {destination}: {source}")]
    Resolve {
        what: &'static str,
        destination: PathBuf,
        source: ResolveError,
    },
    #[error("rootfs: device {path}: {source}")]
    Device { path: PathBuf, source: SyscallError },
    #[error("rootfs: masked path {path}: {source}")]
    Masked { path: PathBuf, source: SyscallError },
    #[error("rootfs: read-only path {path}: {source}")]
    Readonly { path: PathBuf, source: SyscallError },
    #[error("rootfs: making {rootfs} the root: {source}")]
    Pivot {
        rootfs: PathBuf,
        source: SyscallError,
    },
    #[error("rootfs: console {path}: {source}")]
    Console { path: PathBuf, source: SyscallError },
}

impl RootfsError {
    fn mount(destination: &Path) -> impl FnOnce(SyscallError) -> RootfsError + '_ {
        move |source| RootfsError::Mount {
            destination: destination.to_path_buf(),
            source,
        }
    }
    fn resolve<'a>(
        what: &'static str,
        destination: &'a Path,
    ) -> impl FnOnce(ResolveError) -> RootfsError + 'a {
        move |source| RootfsError::Resolve {
            what,
            destination: destination.to_path_buf(),
            source,
        }
    }
}

/// The default propagation of `/` in the container's mount namespace: mounts made on
/// the host still appear in the container, nothing made in the container reaches
/// the host.
const DEFAULT_ROOT_PROPAGATION: MsFlags = MsFlags::MS_SLAVE.union(MsFlags::MS_REC);

/// `linux.rootfsPropagation`, or the default.
fn root_propagation(spec: &Spec) -> Result<MsFlags, RootfsError> {
    let word = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref());
    match word {
        None | Some("") => Ok(DEFAULT_ROOT_PROPAGATION),
        Some(w) => options::parse_propagation(w)
            .ok_or_else(|| RootfsError::Invalid(format!("unknown linux.rootfsPropagation {w:?}"))),
    }
}

/// Check the whole spec before anything is mounted, so a bad entry late in the list
/// does not leave a half-built root behind.
fn validate(spec: &Spec) -> Result<(), RootfsError> {
    root_propagation(spec)?;
    for m in spec.mounts().iter().flatten() {
        mounts::validate(m)?;
    }
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in devices.into_iter().flatten() {
        devices::DeviceNode::from_spec(d)?;
    }
    Ok(())
}

/// `path` as a relative path below `root`, refusing `..` (used for paths after pivot).
fn join_in(root: &Path, path: &str) -> Result<PathBuf, RootfsError> {
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(RootfsError::Invalid(format!(
            "'..' is not allowed in {path:?}"
        )));
    }
    Ok(root.join(p.strip_prefix("/").unwrap_or(p)))
}

/// Phase 1, before pivot_root, in the container's mount namespace: root propagation,
/// bind the rootfs onto itself, the spec's mounts (targets resolved inside the
/// rootfs), default devices and /dev symlinks.
pub fn prepare(
    sys: &dyn Syscall,
    spec: &Spec,
    rootfs: &Path,
    cgroups: Option<&coracle_cgroups::Layout>,
) -> Result<(), RootfsError> {
    prepare_with(sys, spec, rootfs, cgroups, &mut || Ok(()))
}

/// [`prepare`], calling `before_cgroup` once before any cgroup file system is mounted (or,
/// with none in the spec, after the other mounts). Init waits there until main has moved
/// it into the container's cgroups, then makes its cgroup namespace, whose root is the
/// cgroup it is in at that moment, and which the cgroup mounts show. The cgroup mounts go
/// after the other mounts, so that the waiting overlaps as much of the mount work as it
/// can, unless a later entry of the spec mounts over, or under, their destination: then
/// the spec's order is kept.
pub fn prepare_with(
    sys: &dyn Syscall,
    spec: &Spec,
    rootfs: &Path,
    cgroups: Option<&coracle_cgroups::Layout>,
    before_cgroup: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(), RootfsError> {
    validate(spec)?;
    let root = Path::new("/");
    // First, so that none of the mounts below propagates back to the host (the new
    // namespace starts with the host's propagation, often shared).
    let propagation = root_propagation(spec)?;
    sys.mount(None, root, None, propagation, None)
        .map_err(RootfsError::mount(root))?;
    // pivot_root refuses shared mounts (the new root, its parent, the old root's
    // parent). With rootfsPropagation "shared"/"rshared", make the mount holding the
    // rootfs private, before the self-bind so that the bind is created private too
    // (a bind copies the propagation of the mount it comes from).
    if propagation.contains(MsFlags::MS_SHARED) {
        make_parent_private(sys, rootfs)?;
    }
    // pivot_root needs the new root to be a mount point; the rootfs is usually just
    // a directory of the bundle.
    sys.mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(RootfsError::mount(rootfs))?;
    // Opened after the self-bind, so every path resolved under it, and every mount
    // made through it, is in the new mount, not the directory beneath.
    let rootfd = resolve::open_dir(rootfs)?;
    let all: Vec<&Mount> = spec.mounts().iter().flatten().collect();
    let is_cgroup = |m: &Mount| matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2"));
    let mut waited = false;
    let mut wait = |waited: &mut bool| -> Result<(), RootfsError> {
        if !*waited {
            *waited = true;
            before_cgroup().map_err(RootfsError::Invalid)?;
        }
        Ok(())
    };
    let mut deferred = Vec::new();
    for (i, m) in all.iter().enumerate() {
        if is_cgroup(m) {
            let dest = m.destination();
            let overlaps = all[i + 1..].iter().any(|later| {
                later.destination().starts_with(dest) || dest.starts_with(later.destination())
            });
            if !overlaps {
                deferred.push(*m);
                continue;
            }
            wait(&mut waited)?;
        }
        mounts::mount_entry(sys, rootfd.as_raw_fd(), m, cgroups)?;
    }
    wait(&mut waited)?;
    for m in deferred {
        mounts::mount_entry(sys, rootfd.as_raw_fd(), m, cgroups)?;
    }
    // Devices after all mounts: made before the /dev tmpfs is mounted they would be
    // hidden under it.
    if devices::needs_dev_setup(spec) {
        let extra = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
        devices::create_devices(
            sys,
            rootfd.as_raw_fd(),
            extra.map(Vec::as_slice).unwrap_or_default(),
        )?;
        devices::create_symlinks(sys, rootfd.as_raw_fd(), Path::new("/proc/kcore").exists())?;
    }
    Ok(())
}

/// Make the mount holding the rootfs' parent directory private.
fn make_parent_private(sys: &dyn Syscall, rootfs: &Path) -> Result<(), RootfsError> {
    let io = |path: &Path, e: std::io::Error| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        RootfsError::Syscall(SyscallError::new("read", path, errno))
    };
    let real = std::fs::canonicalize(rootfs).map_err(|e| io(rootfs, e))?;
    let parent = real.parent().unwrap_or(Path::new("/"));
    let info_path = Path::new("/proc/self/mountinfo");
    let info = std::fs::read_to_string(info_path).map_err(|e| io(info_path, e))?;
    let mount_point = mountinfo::mount_point_of(&info, parent).unwrap_or_else(|| "/".into());
    sys.mount(None, &mount_point, None, MsFlags::MS_PRIVATE, None)
        .map_err(RootfsError::mount(&mount_point))
}

/// Phase 2: make `rootfs` the root (pivot_root, or MS_MOVE + chroot with `no_pivot`).
pub fn pivot(sys: &dyn Syscall, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    pivot::pivot(sys, rootfs, no_pivot)
}

/// Phase 3, after pivot: masked paths, read-only paths, read-only root.
pub fn finish(sys: &dyn Syscall, spec: &Spec) -> Result<(), RootfsError> {
    masked::finish_in(sys, spec, Path::new("/"))
}
