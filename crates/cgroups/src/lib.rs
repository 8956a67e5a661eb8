//! cgroupfs management for one container: create its cgroup, apply the OCI
//! `linux.resources`, add processes, freeze/thaw, list pids, remove.
//!
//! Works on cgroup v1 (and the v1/v2 hybrid where v1 holds the controllers) and on
//! pure cgroup v2. Every writer takes the hierarchy root(s) as data ([`Layout`]) so
//! tests run against fixture directories shaped like real cgroup trees.
//!
//! # Layouts
//!
//! * **v1** and **hybrid** ([`Layout::V1`]): every mounted hierarchy is listed, the
//!   named ones (`name=systemd`) and the cgroup2 mount of a hybrid host (`unified`)
//!   included. The container's directory is created in every one of them, and its
//!   processes are added to every one of them. Co-mounted controllers
//!   (`cpu,cpuacct`) share one hierarchy. On a hybrid host, controllers that only the
//!   cgroup2 mount holds (usually `hugetlb`) are written there, and freezing falls back
//!   to the cgroup2 `cgroup.freeze` when no v1 freezer is mounted.
//! * **v2** ([`Layout::V2`]): one tree. [`Manager::create`] enables the controllers
//!   Coracle uses (`cpu cpuset io memory pids hugetlb`, as far as each parent offers
//!   them) in the `cgroup.subtree_control` of every ancestor of the container's cgroup.
//!
//! # Validation first
//!
//! [`Manager::apply`] converts and checks every value (ranges, list syntax, files
//! that must exist such as `memory.memsw.limit_in_bytes` for a swap limit) before it
//! writes anything, so an invalid spec leaves the cgroup untouched. The pure part of
//! that lives in `resources.rs`. A value of `0` for memory limit/swap/reservation,
//! CPU shares, quota and period means "not set", as in runc.
//!
//! # Attach latency
//!
//! The first move of a task between cgroups after a quiet spell waits for an RCU grace
//! period (10-14 ms measured here); [`prime_attach`] lets a caller pay it early, on a
//! thread, while it prepares the container (see `attach_lock.rs`).
//!
//! # Limitations
//!
//! * **Device rules are not enforced on cgroup v2.** cgroup v2 has no devices
//!   controller; enforcing `linux.resources.devices` needs an eBPF program attached
//!   to the cgroup, which Coracle does not implement. On a v2 layout the rules are
//!   ignored and a warning is logged once per process. (On v1 and hybrid hosts the
//!   v1 devices controller enforces them.)
//! * Network priorities/class ids, RDMA limits and the deprecated kernel memory
//!   limits are ignored (logged at debug level). `unified` key/values are only
//!   written on a v2 layout.
#![deny(unsafe_code)]

mod attach_lock;
#[cfg(test)]
mod fixture_tests;
mod fsutil;
mod layout;
mod resources;
mod v1;
mod v2;

use std::path::{Component, Path, PathBuf};

pub use oci_spec;
use oci_spec::runtime::LinuxResources;

pub use attach_lock::prime_attach;
pub use layout::parse_mountinfo;

/// Errors name the file written or read, the value, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup: invalid value for {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cgroup: no usable cgroup hierarchy found in /proc/self/mountinfo")]
    NoHierarchy,
    /// The request is valid but this host cannot honour it (controller not mounted,
    /// file missing because a kernel feature is off, ...).
    #[error("cgroup: {field} is not supported on this host: {reason}")]
    Unsupported { field: String, reason: String },
    /// Freezing or thawing did not settle in time; the last state read is given.
    #[error("cgroup: {op} {path}: state still {state:?} after {waited_ms} ms")]
    Timeout {
        op: &'static str,
        path: PathBuf,
        state: String,
        waited_ms: u64,
    },
    /// Several independent steps failed (best-effort teardown reports all of them).
    #[error("cgroup: {} errors: {}", .0.len(), join_errors(.0))]
    Multiple(Vec<CgroupError>),
}

fn join_errors(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
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

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller` (e.g. `"cpu"` on `cpu,cpuacct`).
    pub fn has_controller(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
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
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let layout = parse_mountinfo(&text)?;
        tracing::debug!(?layout, "detected cgroup layout");
        Ok(layout)
    }

    /// Every mounted hierarchy: the v1 list, or the single cgroup2 root.
    pub fn hierarchies(&self) -> Vec<Hierarchy> {
        match self {
            Layout::V1 { hierarchies } => hierarchies.clone(),
            Layout::V2 { root } => {
                vec![Hierarchy {
                    mount_point: root.clone(),
                    controllers: vec![],
                    unified: true,
                }]
            }
        }
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
        Manager {
            layout,
            path: cgroups_path.to_path_buf(),
        }
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroups path relative to each hierarchy root. Rejects `..` and a path
    /// that names the root itself.
    pub fn relative_path(&self) -> Result<PathBuf> {
        relative_cgroup_path(&self.path)
    }

    /// The container's directory in every hierarchy (one entry on v2).
    pub fn directories(&self) -> Result<Vec<PathBuf>> {
        let rel = self.relative_path()?;
        Ok(self
            .layout
            .hierarchies()
            .iter()
            .map(|h| h.mount_point.join(&rel))
            .collect())
    }

    /// Create the cgroup directories (parents included) in every hierarchy.
    pub fn create(&self) -> Result<()> {
        let rel = self.relative_path()?;
        match &self.layout {
            Layout::V1 { hierarchies } => v1::create(hierarchies, &rel),
            Layout::V2 { root } => v2::create(root, &rel),
        }
    }

    /// Validate every value first, then write them.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let rel = self.relative_path()?;
        let plan = resources::validate(resources)?;
        tracing::debug!(path = %rel.display(), ?plan, "applying cgroup resources");
        // Layout checks, and enabling the needed v2 controllers in the ancestors
        // (the leaf's files only appear once they are enabled).
        match &self.layout {
            Layout::V1 { hierarchies } => v1::prepare(hierarchies, &rel, &plan)?,
            Layout::V2 { root } => v2::prepare(root, &rel, &plan)?,
        }
        let writes = match &self.layout {
            Layout::V1 { hierarchies } => v1::plan_writes(hierarchies, &rel, &plan)?,
            Layout::V2 { root } => v2::plan_writes(root, &rel, &plan)?,
        };
        fsutil::check_targets(&writes)?;
        for w in &writes {
            fsutil::write_file(&w.path, &w.value)?;
        }
        Ok(())
    }

    /// Move `pid` (0 = the caller) into the cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        if pid < 0 {
            return Err(CgroupError::Invalid {
                field: "pid".into(),
                reason: format!("{pid}: must be 0 (the caller) or a process id"),
            });
        }
        // "0" makes the kernel move the writing process itself, which stays right
        // even when the caller's getpid() belongs to another pid namespace.
        for dir in self.directories()? {
            fsutil::write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let rel = self.relative_path()?;
        match self.freezer()? {
            Freezer::V1(mount) => v1::set_frozen(&mount.join(&rel), frozen),
            Freezer::V2(root) => v2::set_frozen(&root.join(&rel), frozen),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        let rel = self.relative_path()?;
        match self.freezer()? {
            Freezer::V1(mount) => v1::is_frozen(&mount.join(&rel)),
            Freezer::V2(root) => v2::is_frozen(&root.join(&rel)),
        }
    }

    fn freezer(&self) -> Result<Freezer> {
        match &self.layout {
            Layout::V2 { root } => Ok(Freezer::V2(root.clone())),
            Layout::V1 { hierarchies } => {
                if let Some(h) = hierarchies
                    .iter()
                    .find(|h| !h.unified && h.has_controller("freezer"))
                {
                    Ok(Freezer::V1(h.mount_point.clone()))
                } else if let Some(h) = hierarchies.iter().find(|h| h.unified) {
                    Ok(Freezer::V2(h.mount_point.clone()))
                } else {
                    Err(CgroupError::Unsupported {
                        field: "freezer".into(),
                        reason: "no v1 freezer hierarchy and no cgroup2 mount".into(),
                    })
                }
            }
        }
    }

    /// Every pid in the cgroup (and its descendants).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let rel = self.relative_path()?;
        let dir = match &self.layout {
            Layout::V2 { root } => root.join(&rel),
            Layout::V1 { hierarchies } => {
                let pick = ["pids", "memory"]
                    .iter()
                    .find_map(|c| {
                        hierarchies
                            .iter()
                            .find(|h| !h.unified && h.has_controller(c))
                    })
                    .or_else(|| hierarchies.first())
                    .ok_or(CgroupError::NoHierarchy)?;
                pick.mount_point.join(&rel)
            }
        };
        fsutil::read_pids_recursive(&dir)
    }

    /// Remove the cgroup directories (retrying while the kernel still reports busy).
    /// Missing directories are not an error: removal is idempotent. Empty ancestors
    /// (a shared parent such as `/coracle`) are removed as well, up to the hierarchy
    /// root. Every hierarchy is attempted; all failures are reported.
    pub fn remove(&self) -> Result<()> {
        let rel = self.relative_path()?;
        let mut errors = Vec::new();
        let deadline = std::time::Instant::now() + fsutil::REMOVE_TIMEOUT;
        for h in self.layout.hierarchies() {
            if let Err(e) = fsutil::remove_cgroup(&h.mount_point, &rel, deadline) {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CgroupError::Multiple(errors)),
        }
    }
}

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

/// `linux.cgroupsPath` made relative to a hierarchy root: a leading `/` is dropped,
/// `.` components are skipped, `..` is rejected, and so is an empty result.
pub fn relative_cgroup_path(path: &Path) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => rel.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::Invalid {
                    field: "linux.cgroupsPath".into(),
                    reason: format!("{}: must not contain '..'", path.display()),
                })
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(CgroupError::Invalid {
            field: "linux.cgroupsPath".into(),
            reason: format!(
                "{:?}: names the hierarchy root, not a container cgroup",
                path.display().to_string()
            ),
        });
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_cgroup_path(Path::new("/coracle/abc")).unwrap(),
            PathBuf::from("coracle/abc")
        );
        assert_eq!(
            relative_cgroup_path(Path::new("coracle/abc")).unwrap(),
            PathBuf::from("coracle/abc")
        );
        assert_eq!(
            relative_cgroup_path(Path::new("./a/./b/")).unwrap(),
            PathBuf::from("a/b")
        );
        for bad in ["/a/../b", "..", "a/..", "/", "", "."] {
            let err = relative_cgroup_path(Path::new(bad)).unwrap_err();
            assert!(matches!(err, CgroupError::Invalid { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn manager_rejects_dotdot_everywhere() {
        let m = Manager::new(
            Layout::V2 {
                root: "/nonexistent".into(),
            },
            Path::new("/x/../y"),
        );
        assert!(matches!(m.create(), Err(CgroupError::Invalid { .. })));
        assert!(matches!(m.remove(), Err(CgroupError::Invalid { .. })));
        assert!(matches!(m.pids(), Err(CgroupError::Invalid { .. })));
        assert!(matches!(m.add_task(1), Err(CgroupError::Invalid { .. })));
        assert!(matches!(
            m.apply(&LinuxResources::default()),
            Err(CgroupError::Invalid { .. })
        ));
    }
}
