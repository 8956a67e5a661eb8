//! Paying the cgroup attach lock's grace period ahead of time.
//!
//! Every move of a task between cgroups (a write to `cgroup.procs` or `tasks`, in any
//! hierarchy, v1 or v2) takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. That lock is a per-CPU rw-semaphore: while no writer has come for a while,
//! its readers (every fork and exit on the host) take a fast path without atomics, and
//! the first writer must switch them off it, which waits for an RCU grace period
//! (`rcu_sync_enter`). Writers that arrive during that wait share it, and writers that
//! arrive within one grace period after the last one left do not wait at all. Measured
//! on the project's machines, that grace period is 10-14 ms: the longest single wait of
//! a `coracle run`, paid by the runtime when it moves the container's init into its
//! cgroups. (The `favordynmods` mount option keeps the lock in writer mode for good,
//! which removes the wait; it is a host-wide choice, left to the administrator.)
//!
//! [`prime_attach`] starts that wait early: it writes `0` (meaning the writer itself) to
//! the `cgroup.procs` of the cgroup this process already belongs to, which moves
//! nothing. Called on a thread of its own a few milliseconds before the container's
//! init is attached, it lets that attach find the lock already in writer mode.

use std::path::{Path, PathBuf};

use crate::fsutil::{io_err, write_file};
use crate::{CgroupError, Layout, Result};

/// Take and release the cgroup attach lock with a move of this process to the cgroup it
/// is in (a no-op move). Blocks for the grace period described in the module docs;
/// meant for a thread of its own.
pub fn prime_attach(layout: &Layout) -> Result<()> {
    let own = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(own).map_err(|e| io_err("read", own, e))?;
    let procs = own_procs_file(layout, &text).ok_or_else(|| CgroupError::Invalid {
        field: "/proc/self/cgroup".into(),
        reason: "no line for a mounted hierarchy".into(),
    })?;
    write_file(&procs, "0")
}

/// `cgroup.procs` of this process's own cgroup in one mounted hierarchy: the cgroup2 one
/// if there is one (line `0::PATH`), else the first v1 hierarchy whose controller list
/// matches a line's (`N:cpu,cpuacct:PATH`).
fn own_procs_file(layout: &Layout, proc_self_cgroup: &str) -> Option<PathBuf> {
    let lines: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let hierarchies = layout.hierarchies();
    let (mount, path) = hierarchies
        .iter()
        .filter(|h| h.unified)
        .find_map(|h| {
            let (_, path) = lines.iter().find(|(ctrl, _)| ctrl.is_empty())?;
            Some((&h.mount_point, *path))
        })
        .or_else(|| {
            hierarchies.iter().filter(|h| !h.unified).find_map(|h| {
                let (_, path) = lines.iter().find(|(ctrl, _)| {
                    let mut listed: Vec<&str> = ctrl.split(',').collect();
                    let mut mounted: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
                    listed.sort_unstable();
                    mounted.sort_unstable();
                    listed == mounted
                })?;
                Some((&h.mount_point, *path))
            })
        })?;
    Some(
        mount
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hierarchy;

    fn v1(mount: &str, controllers: &[&str]) -> Hierarchy {
        Hierarchy {
            mount_point: mount.into(),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            unified: false,
        }
    }

    const HYBRID: &str = "12:pids:/user.slice/a\n4:cpu,cpuacct:/user.slice/b\n\
                          1:name=systemd:/user.slice/c\n0::/user.slice/d\n";

    #[test]
    fn the_cgroup2_line_is_used_when_a_cgroup2_hierarchy_is_mounted() {
        let layout = Layout::V1 {
            hierarchies: vec![
                v1("/sys/fs/cgroup/pids", &["pids"]),
                Hierarchy {
                    mount_point: "/sys/fs/cgroup/unified".into(),
                    controllers: vec![],
                    unified: true,
                },
            ],
        };
        assert_eq!(
            own_procs_file(&layout, HYBRID),
            Some("/sys/fs/cgroup/unified/user.slice/d/cgroup.procs".into())
        );
        let v2 = Layout::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            own_procs_file(&v2, "0::/\n"),
            Some("/sys/fs/cgroup/cgroup.procs".into())
        );
    }

    #[test]
    fn on_pure_v1_the_line_with_the_same_controllers_is_used() {
        let layout = Layout::V1 {
            hierarchies: vec![v1("/sys/fs/cgroup/cpu,cpuacct", &["cpuacct", "cpu"])],
        };
        assert_eq!(
            own_procs_file(&layout, HYBRID),
            Some("/sys/fs/cgroup/cpu,cpuacct/user.slice/b/cgroup.procs".into())
        );
        let unmatched = Layout::V1 {
            hierarchies: vec![v1("/sys/fs/cgroup/memory", &["memory"])],
        };
        assert_eq!(own_procs_file(&unmatched, HYBRID), None);
    }
}
