//! `coracle:[2:INIT]`: the container's first process (PID 1 in a new pid namespace),
//! and the exec'd-process variant. Both end in [`finalize`](super::finalize).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, Message};
use super::finalize;
use super::{ExecConfig, InitConfig};
use crate::sys::{raw, LinuxSyscall, Syscall};

pub(super) fn run(cfg: &InitConfig<'_>, chan: Channel) -> ! {
    super::set_name("coracle:[2:INIT]");
    match setup(cfg, &chan) {
        Ok(never) => match never {},
        Err(e) => {
            // After `Ready` main may be gone: then the container's stderr is the only
            // place left to say what went wrong.
            if chan.send(&Message::Error(e.clone())).is_err() {
                eprintln!("coracle-runtime: container init: {e}");
            }
            raw::exit_now(127)
        }
    }
}

pub(super) fn run_exec(cfg: &ExecConfig<'_>, chan: Channel) -> ! {
    match setup_exec(cfg, &chan) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = chan.send(&Message::Error(e));
            raw::exit_now(1)
        }
    }
}

enum Never {}

fn setup(cfg: &InitConfig<'_>, chan: &Channel) -> Result<Never, String> {
    let spec = cfg.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    let sys = LinuxSyscall;
    // Until init reports ready it must not outlive main; the death signal is cleared
    // before main is told, since `create` exits right after.
    raw::set_parent_death_signal(libc::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    raw::set_non_dumpable().map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let layout = cfg.cgroup.layout().clone();
    let wants_cgroupns = cfg
        .plan
        .creates(oci_spec::runtime::LinuxNamespaceType::Cgroup);
    let mut joined = || -> Result<(), String> {
        chan.expect(&Message::CgroupJoined)?;
        if wants_cgroupns {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| format!("unshare(CLONE_NEWCGROUP): {e} ({})", e.desc()))?;
        }
        Ok(())
    };
    crate::rootfs::prepare_with(&sys, spec, cfg.rootfs, Some(&layout), &mut joined)
        .map_err(|e| e.to_string())?;

    // prestart and createRuntime hooks run in main (the runtime's namespaces) while
    // the container's mounts exist but before pivot_root, as the spec orders.
    chan.send(&Message::RunCreateRuntimeHooks)
        .map_err(|e| e.to_string())?;
    let state = match chan.recv() {
        Ok(Message::CreateRuntimeHooksDone(state)) => state,
        Ok(other) => return Err(format!("protocol error: unexpected {other:?}")),
        Err(e) => return Err(format!("runtime went away: {e}")),
    };
    let state: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    if let Some(hooks) = spec.hooks() {
        // createContainer: in the container's namespaces, path resolved before pivot.
        crate::hooks::run(
            "createContainer",
            hooks.create_container().as_deref().unwrap_or(&[]),
            &state,
        )
        .map_err(|e| e.to_string())?;
    }
    crate::rootfs::pivot(&sys, cfg.rootfs, cfg.no_pivot).map_err(|e| e.to_string())?;

    if process.terminal().unwrap_or(false) {
        let console = cfg
            .console
            .ok_or("process.terminal is true but no console socket was given")?;
        attach_new_pty(&sys, console)?;
    }
    if let Some(sysctl) = linux.sysctl() {
        // Before finish(): /proc/sys becomes read-only there.
        crate::sysctl::apply(Path::new("/proc/sys"), sysctl).map_err(|e| e.to_string())?;
    }
    if cfg.plan.has(LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sys.sethostname(h).map_err(|e| e.to_string())?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            sys.setdomainname(d).map_err(|e| e.to_string())?;
        }
    }
    crate::rootfs::finish(&sys, spec).map_err(|e| e.to_string())?;

    // The filter main compiled while validating the spec (inherited across fork).
    let prepared = finalize::prepare(process, cfg.seccomp, cfg.preserve_fds)?;
    // Report ready, then block until `start` opens the fifo for reading.
    raw::set_parent_death_signal(0).map_err(|e| format!("prctl(PR_SET_PDEATHSIG, 0): {e}"))?;
    chan.send(&Message::Ready).map_err(|e| e.to_string())?;
    wait_for_start(cfg.exec_fifo)?;
    if let Some(hooks) = spec.hooks() {
        // startContainer: after `start`, before the user's program, in the container.
        crate::hooks::run(
            "startContainer",
            hooks.start_container().as_deref().unwrap_or(&[]),
            &state,
        )
        .map_err(|e| e.to_string())?;
    }
    finalize::exec(prepared).map(|never| match never {})
}

fn setup_exec(cfg: &ExecConfig<'_>, _chan: &Channel) -> Result<Never, String> {
    raw::set_parent_death_signal(libc::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    raw::set_non_dumpable().map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    let process = cfg.process;
    let filter = match cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::compile(s).map_err(|e| e.to_string())?),
        None => None,
    };
    if process.terminal().unwrap_or(false) {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        let console = cfg
            .console
            .ok_or("process.terminal is true but no console socket was given")?;
        attach_new_pty(&LinuxSyscall, console)?;
    }
    let prepared = finalize::prepare(process, filter.as_ref(), cfg.preserve_fds)?;
    // The exec'd process must not be killed when main (e.g. `exec --detach`) exits.
    raw::set_parent_death_signal(0).map_err(|e| format!("prctl(PR_SET_PDEATHSIG, 0): {e}"))?;
    finalize::exec(prepared).map(|never| match never {})
}

/// Open a pty in the container, send its master over the console socket, and make
/// its slave our stdio and controlling terminal (and, for init, /dev/console).
fn attach_new_pty(sys: &dyn Syscall, console: &OwnedFd) -> Result<(), String> {
    let pty = crate::tty::open_pty().map_err(|e| e.to_string())?;
    let name = pty.slave_path.display().to_string();
    crate::tty::send_master(console.as_raw_fd(), &pty.master, &name).map_err(|e| e.to_string())?;
    drop(pty.master);
    if nix::unistd::getpid().as_raw() == 1 {
        crate::rootfs::setup_console(sys, &pty.slave_path).map_err(|e| e.to_string())?;
    }
    crate::tty::become_controlling(&pty.slave_path).map_err(|e| e.to_string())
}

/// Block until `start` opens exec.fifo for reading, then write one byte.
///
/// The fifo is reopened for writing through /proc/self/fd of the O_PATH fd main
/// opened before the fork: its path on the host is no longer reachable after
/// pivot_root. (A process may always follow its own /proc/self/fd links.)
fn wait_for_start(fifo: &OwnedFd) -> Result<(), String> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let fd = nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(raw::owned_fd)
    .map_err(|e| format!("open exec.fifo ({path}): {e}"))?;
    nix::unistd::write(&fd, b"0").map_err(|e| format!("write exec.fifo: {e}"))?;
    Ok(())
}
