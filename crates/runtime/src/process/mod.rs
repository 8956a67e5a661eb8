//! Turning a spec into processes: the clone dance.
//!
//! ```text
//! main (coracle-runtime / the shim)
//!  ├─ clone ──> coracle:[1:INTER]   setns into path namespaces, unshares the user ns
//!  │                                 (main writes its id maps), unshares the other new
//!  │                                 namespaces but the cgroup one, then
//!  │                                 clone(CLONE_PARENT) ──┐ and reports the pid; exits
//!  └─ (sibling, main's own child) <──────────────────────┘
//!     coracle:[2:INIT]  PID 1 in the new pid ns: rootfs mounts while main moves it into
//!                        the container's cgroups; then its cgroup ns and the cgroup
//!                        mounts, hooks, pivot_root, identity, capabilities, seccomp,
//!                        waits on exec.fifo, execve
//! (exec'd processes: the intermediate joins the cgroup itself, before anything else.)
//! ```
//! Two forks are needed because a new pid namespace applies only to the children of
//! the process that unshares it. CLONE_PARENT makes init main's direct child, so the
//! shim (a subreaper) can wait for it, and an `exec`'d process's parent is outside
//! the container's pid namespace (its PPID reads 0 inside, as with Docker).
//!
//! Messages between the processes: [`channel`]. The runtime is single-threaded, so
//! forking without exec is sound.

pub mod channel;
mod finalize;
mod init;
mod intermediate;
pub mod wait;

use std::os::fd::OwnedFd;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process, Spec};

use crate::error::{Result, RuntimeError};
use crate::namespaces::Plan;
use crate::sys::raw::{self, CloneResult};
use channel::Message;

/// What the container's init needs.
pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a std::path::Path,
    pub plan: Plan,
    pub cgroup: &'a coracle_cgroups::Manager,
    /// O_PATH fd of `exec.fifo`: init blocks opening it for writing until `start`.
    pub exec_fifo: &'a OwnedFd,
    /// Connected `--console-socket` (or the runtime's own, for a foreground tty).
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    /// `linux.seccomp`, compiled by spec validation; loaded by init.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
}

/// What an `exec`'d process needs.
pub struct ExecConfig<'a> {
    pub process: &'a Process,
    pub spec: &'a Spec,
    /// The container's init pid: its /proc/<pid>/ns/* are joined.
    pub container_pid: i32,
    pub cgroup: &'a coracle_cgroups::Manager,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
}

/// Start the container's init and bring it to "waiting for start".
///
/// `create_runtime_hooks(pid)` runs in main once init's mounts are done and before
/// it pivots (the prestart and createRuntime hooks); it returns the state JSON that
/// init passes to the hooks it runs itself.
pub fn spawn_init(
    cfg: &InitConfig<'_>,
    create_runtime_hooks: &mut dyn FnMut(i32) -> Result<String>,
) -> Result<Pid> {
    let (to_inter, inter_end) = channel::pair()?;
    let (to_init, init_end) = channel::pair()?;
    let inter = match raw::clone_process(0).map_err(|e| sys_err("clone", e))? {
        CloneResult::Child => {
            drop(to_inter);
            drop(to_init);
            let code = intermediate::run_for_init(cfg, &inter_end, init_end);
            raw::exit_now(code)
        }
        CloneResult::Parent { child } => child,
    };
    drop(inter_end);
    drop(init_end);
    let mut init_pid: Option<Pid> = None;
    let result = (|| -> Result<Pid> {
        if cfg.plan.creates(LinuxNamespaceType::User) {
            to_inter
                .expect(&Message::UsernsCreated)
                .map_err(RuntimeError::Init)?;
            let linux = cfg.spec.linux().as_ref().expect("validated");
            write_id_maps(inter, linux.uid_mappings(), linux.gid_mappings())?;
            to_inter
                .send(&Message::UsernsMapped)
                .map_err(|e| RuntimeError::Init(e.to_string()))?;
        }
        let pid = recv_child_pid(&to_inter)?;
        init_pid = Some(pid);
        reap(inter);
        // Into the cgroups while init mounts; it waits for this before its cgroup
        // namespace and cgroup mounts, and long before anything of the container runs.
        cfg.cgroup
            .add_task(pid.as_raw())
            .map_err(|e| RuntimeError::Init(format!("joining the cgroup: {e}")))?;
        if let Err(e) = to_init.send(&Message::CgroupJoined) {
            // Init may have failed (and said why) while we were joining.
            return Err(match to_init.recv() {
                Ok(Message::Error(reason)) => RuntimeError::Init(reason),
                _ => RuntimeError::Init(e.to_string()),
            });
        }
        to_init
            .expect(&Message::RunCreateRuntimeHooks)
            .map_err(RuntimeError::Init)?;
        let state = create_runtime_hooks(pid.as_raw())?;
        to_init
            .send(&Message::CreateRuntimeHooksDone(state))
            .map_err(|e| RuntimeError::Init(e.to_string()))?;
        to_init
            .expect(&Message::Ready)
            .map_err(RuntimeError::Init)?;
        Ok(pid)
    })();
    if result.is_err() {
        // Only our own children, by pid: the intermediate, and init if it exists.
        for pid in [Some(inter), init_pid].into_iter().flatten() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
    result
}

/// Start a process inside a running container. Returns its pid once it has exec'd.
pub fn spawn_exec(cfg: &ExecConfig<'_>) -> Result<Pid> {
    let (to_inter, inter_end) = channel::pair()?;
    let (to_child, child_end) = channel::pair()?;
    let inter = match raw::clone_process(0).map_err(|e| sys_err("clone", e))? {
        CloneResult::Child => {
            drop(to_inter);
            drop(to_child);
            let code = intermediate::run_for_exec(cfg, &inter_end, child_end);
            raw::exit_now(code)
        }
        CloneResult::Parent { child } => child,
    };
    drop(inter_end);
    drop(child_end);
    let pid = recv_child_pid(&to_inter);
    reap(inter);
    let pid = pid?;
    // The child's end is CLOEXEC: a clean close means execve succeeded.
    match to_child.recv() {
        Err(channel::ChannelError::Closed) => Ok(pid),
        Ok(Message::Error(e)) => {
            let _ = waitpid(pid, None);
            Err(RuntimeError::Init(e))
        }
        Ok(other) => Err(RuntimeError::Init(format!(
            "protocol error: unexpected {other:?}"
        ))),
        Err(e) => Err(RuntimeError::Init(e.to_string())),
    }
}

fn recv_child_pid(chan: &channel::Channel) -> Result<Pid> {
    match chan.recv() {
        Ok(Message::ChildPid(pid)) => Ok(Pid::from_raw(pid)),
        Ok(Message::Error(e)) => Err(RuntimeError::Init(e)),
        Ok(other) => Err(RuntimeError::Init(format!(
            "protocol error: unexpected {other:?}"
        ))),
        Err(e) => Err(RuntimeError::Init(format!("intermediate process: {e}"))),
    }
}

fn reap(pid: Pid) {
    let _ = waitpid(pid, None);
}

fn sys_err(call: &'static str, e: nix::errno::Errno) -> RuntimeError {
    RuntimeError::Syscall(crate::sys::SyscallError::new(call, "", e))
}

/// Write /proc/<pid>/{uid_map,gid_map} for the intermediate's new user namespace.
/// We are root in the parent namespace, so no setgroups "deny" is needed.
fn write_id_maps(
    pid: Pid,
    uids: &Option<Vec<LinuxIdMapping>>,
    gids: &Option<Vec<LinuxIdMapping>>,
) -> Result<()> {
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| RuntimeError::io("write", path, e))?;
    }
    Ok(())
}

/// Name this process (as seen in `ps`) `coracle:[N:ROLE]`.
pub(crate) fn set_name(name: &str) {
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(name).expect("no NUL"));
}
