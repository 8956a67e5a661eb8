//! `coracle:[1:INTER]`: puts itself into the container's cgroup and namespaces, then
//! clones the container process (init, or an exec'd process) as main's sibling.

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, Message};
use super::{ExecConfig, InitConfig};
use crate::namespaces::{self, JOIN_ORDER};
use crate::sys::raw::{self, CloneResult};

pub(super) fn run_for_init(cfg: &InitConfig<'_>, chan: &Channel, init_end: Channel) -> i32 {
    super::set_name("coracle:[1:INTER]");
    let result = (|| -> Result<(), String> {
        setup_common()?;
        // No cgroup here: main moves init into the container's cgroups once it knows
        // init's pid, while init mounts (see rootfs::prepare_with). On cgroup v1 the first
        // write to cgroup.procs waits for an RCU grace period (about 10 ms here), which
        // that overlaps. The cgroup namespace is made by init after the move, so that its
        // root is the container's cgroup.
        let mut fds = Vec::new();
        for (typ, path) in &cfg.plan.join {
            fds.push((
                *typ,
                path,
                namespaces::open_ns(path).map_err(|e| e.to_string())?,
            ));
        }
        for (typ, path, fd) in &fds {
            namespaces::join(fd, *typ, path).map_err(|e| e.to_string())?;
        }
        if cfg.plan.creates(LinuxNamespaceType::User) {
            unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare(CLONE_NEWUSER): {e} ({})", e.desc()))?;
            chan.send(&Message::UsernsCreated)
                .map_err(|e| e.to_string())?;
            chan.expect(&Message::UsernsMapped)?;
            // Become root of the new namespace (uid/gid 0 are mapped by now).
            setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                .map_err(|e| format!("setresgid(0) in the user namespace: {e}"))?;
            setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                .map_err(|e| format!("setresuid(0) in the user namespace: {e}"))?;
        }
        let flags = cfg.plan.unshare_flags() - CloneFlags::CLONE_NEWCGROUP;
        unshare(flags).map_err(|e| format!("unshare({flags:?}): {e} ({})", e.desc()))?;
        clone_child(chan, || super::init::run(cfg, init_end))
    })();
    report(chan, result)
}

pub(super) fn run_for_exec(cfg: &ExecConfig<'_>, chan: &Channel, child_end: Channel) -> i32 {
    super::set_name("coracle:[1:INTER]");
    let result = (|| -> Result<(), String> {
        setup_common()?;
        // The cgroup first, as for init: once the container's user namespace is
        // joined we may lack the privilege to write cgroup.procs, and the exec'd
        // process must be accounted (and frozen, limited) with the container.
        cfg.cgroup.add_task(0).map_err(|e| e.to_string())?;
        let types: Vec<LinuxNamespaceType> = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|ns| ns.typ())
            .collect();
        // Open every namespace fd before joining any: after the mount namespace is
        // joined, the host's /proc/<pid> paths are no longer reachable.
        let mut fds = Vec::new();
        for typ in JOIN_ORDER.iter().filter(|t| types.contains(t)) {
            let name = namespaces::proc_name(*typ);
            let path = std::path::PathBuf::from(format!("/proc/{}/ns/{name}", cfg.container_pid));
            if same_namespace(&path, name) {
                // setns into one's own user namespace fails with EINVAL; others are no-ops.
                continue;
            }
            fds.push((
                *typ,
                namespaces::open_ns(&path).map_err(|e| e.to_string())?,
                path,
            ));
        }
        for (typ, fd, path) in &fds {
            namespaces::join(fd, *typ, path).map_err(|e| e.to_string())?;
        }
        clone_child(chan, || super::init::run_exec(cfg, child_end))
    })();
    report(chan, result)
}

fn setup_common() -> Result<(), String> {
    // If main dies mid-set-up, do not linger half-made.
    raw::set_parent_death_signal(libc::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    raw::set_non_dumpable().map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))
}

fn same_namespace(path: &std::path::Path, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata(format!("/proc/self/ns/{name}")).map(|m| (m.dev(), m.ino()));
    let theirs = std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    matches!((own, theirs), (Ok(a), Ok(b)) if a == b)
}

/// Clone the container process as main's child (CLONE_PARENT) and report its pid.
fn clone_child(chan: &Channel, child: impl FnOnce()) -> Result<(), String> {
    match raw::clone_process(libc::CLONE_PARENT) {
        Ok(CloneResult::Child) => {
            // `child` execs or exits; it never returns.
            child();
            raw::exit_now(1)
        }
        Ok(CloneResult::Parent { child }) => chan
            .send(&Message::ChildPid(child.as_raw()))
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("clone(CLONE_PARENT): {e} ({})", e.desc())),
    }
}

fn report(chan: &Channel, result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = chan.send(&Message::Error(e));
            1
        }
    }
}
