//! cgroupfs management for one container: create its cgroup, apply the OCI
//! `linux.resources`, add processes, freeze/thaw, list pids, remove.
//!
//! Works on cgroup v1 (and the v1/v2 hybrid where v1 holds the controllers) and on
//! pure cgroup v2. Every writer takes the hierarchy root(s) as data ([`Layout`]) so
//! tests run against fixture directories shaped like real cgroup trees.
//!
//! STUB: the interface below is fixed; the implementation is being written.
#![deny(unsafe_code)]

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

/// Errors name the file written or read, the value, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("cgroup: invalid value for {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cgroup: no usable cgroup hierarchy found in /proc/self/mountinfo")]
    NoHierarchy,
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// One mounted cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory` or `/sys/fs/cgroup`.
    pub mount_point: PathBuf,
    /// v1 controllers on this hierarchy (`["cpu"]`, `["name=systemd"]`); empty for v2.
    pub controllers: Vec<String>,
    /// true for a cgroup2 mount.
    pub unified: bool,
}

/// How the host's cgroups are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Controllers on v1 hierarchies (pure v1, or hybrid with an extra cgroup2 mount).
    V1 { hierarchies: Vec<Hierarchy> },
    /// Pure cgroup v2 rooted at `root` (normally `/sys/fs/cgroup`).
    V2 { root: PathBuf },
}

impl Layout {
    /// Read the host's layout from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Layout> {
        Err(CgroupError::NoHierarchy)
    }
}

/// The cgroup of one container.
#[derive(Debug, Clone)]
pub struct Manager {
    layout: Layout,
    path: PathBuf,
}

impl Manager {
    /// `cgroups_path` is the OCI `linux.cgroupsPath` (absolute, or relative to each
    /// hierarchy root).
    pub fn new(layout: Layout, cgroups_path: &Path) -> Manager {
        Manager { layout, path: cgroups_path.to_path_buf() }
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Create the cgroup directories (parents included) in every hierarchy.
    pub fn create(&self) -> Result<()> {
        Ok(())
    }
    /// Validate every value first, then write them.
    pub fn apply(&self, _resources: &LinuxResources) -> Result<()> {
        Ok(())
    }
    /// Move `pid` (0 = the caller) into the cgroup in every hierarchy.
    pub fn add_task(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    pub fn freeze(&self) -> Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    /// Every pid in the cgroup (and its descendants).
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    /// Remove the cgroup directories (retrying while the kernel still reports busy).
    /// Missing directories are not an error: removal is idempotent.
    pub fn remove(&self) -> Result<()> {
        Ok(())
    }
}
