//! Namespaces from `linux.namespaces`: which to create, which to join by path, and
//! the order in which joining must happen.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::sys::SyscallError;

/// The kernel's clone flag for one namespace type.
pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME has no constant in nix 0.29.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x0000_0080),
    }
}

/// The name of the namespace file under /proc/<pid>/ns/.
pub fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The order in which namespaces are joined with setns(2).
///
/// The user namespace comes first: joining it grants the capabilities needed to join
/// the namespaces it owns (a pod's network namespace is typically owned by the pod's
/// user namespace). The mount namespace comes last, because joining it changes the
/// root and cwd, after which paths like /proc/<pid>/ns/* of the host no longer
/// resolve (all fds are opened before any setns anyway). pid affects only children.
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The container's namespace plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Namespaces to create (unshare) in the intermediate process.
    pub create: Vec<LinuxNamespaceType>,
    /// Namespaces to join, by path, in [`JOIN_ORDER`].
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Plan {
        let mut plan = Plan::default();
        for typ in JOIN_ORDER {
            for ns in namespaces.iter().filter(|ns| ns.typ() == typ) {
                match ns.path() {
                    Some(path) => plan.join.push((typ, path.clone())),
                    None => plan.create.push(typ),
                }
            }
        }
        plan
    }
    pub fn creates(&self, typ: LinuxNamespaceType) -> bool {
        self.create.contains(&typ)
    }
    pub fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.creates(typ) || self.join.iter().any(|(t, _)| *t == typ)
    }
    /// The clone flags of every namespace to create, except the user namespace
    /// (which must be created on its own first, so its id maps can be written).
    pub fn unshare_flags(&self) -> CloneFlags {
        self.create
            .iter()
            .filter(|t| **t != LinuxNamespaceType::User)
            .fold(CloneFlags::empty(), |acc, t| acc | clone_flag(*t))
    }
}

/// Open a namespace file for setns(2).
pub fn open_ns(path: &Path) -> Result<OwnedFd, SyscallError> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map(crate::sys::raw::owned_fd)
        .map_err(|e| SyscallError::new("open", path, e))
}

/// setns(2) into `fd` of type `typ`.
pub fn join(fd: &OwnedFd, typ: LinuxNamespaceType, path: &Path) -> Result<(), SyscallError> {
    tracing::debug!(ns = proc_name(typ), ?path, "setns");
    nix::sched::setns(fd, clone_flag(typ)).map_err(|e| SyscallError::new("setns", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().unwrap()
    }

    #[test]
    fn plan_orders_user_first_and_mount_last() {
        let plan = Plan::from_spec(&[
            ns(LinuxNamespaceType::Mount, Some("/proc/1/ns/mnt")),
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Pid, None),
        ]);
        let order: Vec<_> = plan.join.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            order,
            vec![
                LinuxNamespaceType::User,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Mount
            ]
        );
        assert_eq!(plan.create, vec![LinuxNamespaceType::Pid]);
        assert_eq!(plan.unshare_flags(), CloneFlags::CLONE_NEWPID);
    }

    #[test]
    fn user_namespace_is_not_in_unshare_flags() {
        let plan = Plan::from_spec(&[
            ns(LinuxNamespaceType::User, None),
            ns(LinuxNamespaceType::Uts, None),
        ]);
        assert!(plan.creates(LinuxNamespaceType::User));
        assert_eq!(plan.unshare_flags(), CloneFlags::CLONE_NEWUTS);
    }
}
