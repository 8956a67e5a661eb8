//! `exec`: run another process inside a running container.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::{write_pid_file, Container};
use crate::error::{Result, RuntimeError};
use crate::process::{spawn_exec, ExecConfig};

pub struct ExecOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub process: &'a Process,
    pub console: Option<OwnedFd>,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: u32,
}

/// Start `process` in the container; returns its pid (our child) once it has exec'd.
pub fn exec(opts: ExecOptions<'_>) -> Result<Pid> {
    let c = Container::load(opts.root, opts.id)?;
    c.state.require(c.state.status.can_exec(), "exec")?;
    let spec = c
        .state
        .config
        .as_ref()
        .ok_or_else(|| RuntimeError::container(opts.id, "state has no config"))?;
    let cgroup = c
        .state
        .cgroup()
        .ok_or_else(|| RuntimeError::container(opts.id, "no cgroup hierarchy found"))?;
    let args = opts.process.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        return Err(RuntimeError::container(
            opts.id,
            "exec: process.args is empty",
        ));
    }
    let cfg = ExecConfig {
        process: opts.process,
        spec,
        container_pid: c.state.pid.unwrap_or(0),
        cgroup: &cgroup,
        console: opts.console.as_ref(),
        preserve_fds: opts.preserve_fds,
    };
    let pid = spawn_exec(&cfg)?;
    if let Some(p) = opts.pid_file {
        write_pid_file(p, pid.as_raw())?;
    }
    Ok(pid)
}
