//! `create`: everything up to "waiting for start".

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{write_pid_file, Container};
use crate::cgroups::{Layout, Manager};
use crate::error::{Result, RuntimeError};
use crate::namespaces::Plan;
use crate::process::{spawn_init, InitConfig};
use crate::spec::Bundle;
use crate::state::{rfc3339_now, ContainerState, StateDir, Status, EXEC_FIFO};
use crate::sys::raw;

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    /// A connected console socket: the pty master is sent over it when
    /// `process.terminal` is true.
    pub console: Option<OwnedFd>,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
}

/// Create the container: on success its init waits on exec.fifo for `start`.
/// On failure nothing is left: no state dir, cgroup, process or mount.
pub fn create(opts: CreateOptions<'_>) -> Result<Container> {
    let bundle = Bundle::load_with_seccomp_cache(
        opts.bundle,
        Some(&opts.root.join(crate::state::SECCOMP_CACHE_DIR)),
    )?;
    let dir = StateDir::new(opts.root, opts.id)?;
    // Reserving the id is the first thing that makes state: everything after it is
    // undone on failure.
    dir.reserve()?;
    let mut cgroup: Option<Manager> = None;
    match create_reserved(&opts, &bundle, &dir, &mut cgroup) {
        Ok(c) => Ok(c),
        Err(first) => {
            let mut cleanup = Vec::new();
            if let Some(cg) = &cgroup {
                kill_cgroup(cg);
                if let Err(e) = cg.remove() {
                    cleanup.push(e.to_string());
                }
            }
            if let Err(e) = dir.remove() {
                cleanup.push(e.to_string());
            }
            if cleanup.is_empty() {
                Err(first)
            } else {
                Err(RuntimeError::WithCleanup {
                    first: Box::new(first),
                    cleanup,
                })
            }
        }
    }
}

fn create_reserved(
    opts: &CreateOptions<'_>,
    bundle: &Bundle,
    dir: &StateDir,
    cgroup_out: &mut Option<Manager>,
) -> Result<Container> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().expect("validated");
    // Absent or empty: a default under /coracle, so leftovers are easy to find.
    let cgroup_path = linux
        .cgroups_path()
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(format!("/coracle/{}", opts.id)));
    let mut state = ContainerState {
        oci_version: spec.version().clone(),
        id: opts.id.to_string(),
        status: Status::Creating,
        pid: None,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: rfc3339_now(),
        owner: owner_name(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        pid_start_time: None,
        cgroup_path: cgroup_path.clone(),
        config: Some(spec.clone()),
    };
    dir.save(&state)?;

    let cgroup = Manager::new(Layout::detect()?, &cgroup_path);
    cgroup.create()?;
    *cgroup_out = Some(cgroup.clone());
    let resources = linux.resources().clone().unwrap_or_default();
    cgroup.apply(&crate::devices::with_default_devices(spec, &resources))?;

    let fifo_path = dir.dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(|e| crate::sys::SyscallError::new("mkfifo", &fifo_path, e))?;
    // mkfifo's mode is filtered by the umask; init (possibly a mapped, unprivileged
    // uid on the host) must be able to open it for writing, so set the mode and owner
    // explicitly: the container's root owns it.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(|e| RuntimeError::io("chmod", &fifo_path, e))?;
    let (uid, gid) = host_root_ids(linux);
    nix::unistd::chown(
        &fifo_path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| crate::sys::SyscallError::new("chown", &fifo_path, e))?;
    // O_PATH: holding it neither blocks nor counts as a reader or writer.
    let exec_fifo = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map(raw::owned_fd)
        .map_err(|e| crate::sys::SyscallError::new("open", &fifo_path, e))?;

    let plan = Plan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]));
    let cfg = InitConfig {
        spec,
        rootfs: &bundle.rootfs,
        plan,
        cgroup: &cgroup,
        exec_fifo: &exec_fifo,
        console: opts.console.as_ref(),
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        seccomp: bundle.seccomp.as_ref(),
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    let mut run_create_runtime_hooks = |pid: i32| -> Result<String> {
        state.pid = Some(pid);
        let json = state.public_json();
        // prestart is deprecated but still honoured, before createRuntime.
        crate::hooks::run(
            "prestart",
            hooks.prestart().as_deref().unwrap_or(&[]),
            &json,
        )?;
        crate::hooks::run(
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or(&[]),
            &json,
        )?;
        Ok(json.to_string())
    };
    let pid = spawn_init(&cfg, &mut run_create_runtime_hooks)?;
    state.pid = Some(pid.as_raw());
    state.pid_start_time = crate::state::process_start_time(pid.as_raw());
    state.status = Status::Created;
    dir.save(&state)?;
    if let Some(p) = opts.pid_file {
        write_pid_file(p, pid.as_raw())?;
    }
    Ok(Container {
        dir: dir.clone(),
        state,
    })
}

/// SIGKILL every process left in a cgroup (after a failed create).
pub(super) fn kill_cgroup(cg: &Manager) {
    for pid in cg.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn owner_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// The host uid and gid that the container's root maps to (0, 0 without a user
/// namespace).
fn host_root_ids(linux: &oci_spec::runtime::Linux) -> (u32, u32) {
    let find = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    (find(linux.uid_mappings()), find(linux.gid_mappings()))
}
