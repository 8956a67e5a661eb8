//! The container's root file system: mounts, devices, pivot_root, masked and
//! read-only paths. Runs inside the container's new mount namespace.
//! STUB: interface fixed, implementation in progress.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::sys::{SyscallError, Syscall};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {0}")]
    Syscall(#[from] SyscallError),
    #[error("rootfs: {0}")]
    Invalid(String),
}

/// Phase 1, before pivot_root, in the container's mount namespace: root propagation,
/// bind the rootfs onto itself, the spec's mounts (targets resolved inside the
/// rootfs), default devices and /dev symlinks.
pub fn prepare(
    _sys: &dyn Syscall,
    _spec: &Spec,
    _rootfs: &Path,
    _cgroups: Option<&coracle_cgroups::Layout>,
) -> Result<(), RootfsError> {
    Ok(())
}

/// Phase 2: make `rootfs` the root (pivot_root, or MS_MOVE + chroot with `no_pivot`).
pub fn pivot(_sys: &dyn Syscall, _rootfs: &Path, _no_pivot: bool) -> Result<(), RootfsError> {
    Ok(())
}

/// Phase 3, after pivot: masked paths, read-only paths, read-only root.
pub fn finish(_sys: &dyn Syscall, _spec: &Spec) -> Result<(), RootfsError> {
    Ok(())
}
