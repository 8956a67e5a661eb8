//! `delete`: remove a container's state and cgroup, and run poststop hooks.
//! Teardown is best-effort: it goes on past errors and reports all of them.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Container;
use crate::error::{Result, RuntimeError};
use crate::state::{process_start_time, StateDir, Status};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        // `delete --force` of a container whose state.json never got written (a
        // crash mid-create) still removes the directory.
        Err(RuntimeError::State(crate::state::StateError::NotFound { .. }))
        | Err(RuntimeError::State(crate::state::StateError::Corrupt { .. }))
            if force =>
        {
            let dir = StateDir::new(root, id)?;
            return Ok(dir.remove()?);
        }
        Err(e) => return Err(e),
    };
    let status = c.state.status;
    if !status.can_delete() && !force {
        return Err(RuntimeError::container(
            id,
            format!("cannot delete a {status} container; stop it first or use --force"),
        ));
    }
    let mut errors = Vec::new();
    let cg = c.state.cgroup();
    if status != Status::Stopped {
        // Kill everything in the cgroup, not only init: with a shared pid namespace
        // (or none) other processes would survive init's death.
        if let Some(cg) = &cg {
            if status == Status::Paused {
                // A frozen process cannot die; thaw after queueing SIGKILL.
                for pid in cg.pids().unwrap_or_default() {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                if let Err(e) = cg.thaw() {
                    errors.push(e.to_string());
                }
            }
        }
        for pid in c.pids().unwrap_or_default().into_iter().chain(c.state.pid) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(pid) = c.state.pid {
            wait_gone(pid, c.state.pid_start_time);
        }
    }
    if let Some(cg) = &cg {
        if let Err(e) = remove_cgroup(cg) {
            errors.push(e);
        }
    }
    if let Some(hooks) = c.state.config.as_ref().and_then(|s| s.hooks().clone()) {
        let mut st = c.state.clone();
        st.status = Status::Stopped;
        // The spec: a failing poststop hook is logged; deletion continues.
        if let Err(e) = crate::hooks::run(
            "poststop",
            hooks.poststop().as_deref().unwrap_or(&[]),
            &st.public_json(),
        ) {
            tracing::warn!("{e}");
        }
    }
    if let Err(e) = c.dir.remove() {
        errors.push(e.to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::container(
            id,
            format!("delete: {}", errors.join("; ")),
        ))
    }
}

/// Remove the cgroup, killing stragglers (e.g. processes init left behind).
fn remove_cgroup(cg: &crate::cgroups::Manager) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cg.remove().map_err(|e| e.to_string())
}

/// Wait (bounded) until `pid` is gone or a zombie.
fn wait_gone(pid: i32, start: Option<u64>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(100);
    while Instant::now() < deadline {
        match (process_start_time(pid), start) {
            (None, _) => return,
            (Some(t), Some(s)) if t != s => return,
            _ => {}
        }
        // If init is our child (foreground `run`), reap it.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
