//! /dev/console for containers with a terminal.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;

use super::resolve::{self, Create, Resolved};
use super::RootfsError;
use crate::sys::{Syscall, SyscallError};

/// Bind-mount the pty slave `pty_slave` (a path in the container, e.g. `/dev/pts/0`)
/// onto `/dev/console`, creating an empty `/dev/console` first if there is none.
///
/// This form is for **after [`super::pivot`]** (the container's root is `/`), and
/// before [`super::finish`]: with `root.readonly` set, `/dev/console` could not be
/// created once the root is read-only (when /dev is not a tmpfs). Before pivot, use
/// [`setup_console_in`] with the rootfs path. Either way the devpts instance holding
/// the pty must already be mounted at the container's /dev/pts (done by `prepare`).
pub fn setup_console(sys: &dyn Syscall, pty_slave: &Path) -> Result<(), RootfsError> {
    setup_console_in(sys, Path::new("/"), pty_slave)
}

/// [`setup_console`] for a container whose root file system is at `root` (the
/// rootfs path between `prepare` and `pivot`, or `/` after pivot). Both paths are
/// resolved inside `root` with the same symlink policy as the mounts.
pub fn setup_console_in(
    sys: &dyn Syscall,
    root: &Path,
    pty_slave: &Path,
) -> Result<(), RootfsError> {
    let console = Path::new("/dev/console");
    let err = |source| RootfsError::Console {
        path: pty_slave.to_path_buf(),
        source,
    };
    let rootfd = resolve::open_dir(root).map_err(err)?;
    let pty = resolve::resolve_in_root(rootfd.as_raw_fd(), pty_slave, Create::Nothing)
        .map_err(RootfsError::resolve("console pty", pty_slave))?;
    match resolve::file_type(pty.fd.as_raw_fd()) {
        Ok(SFlag::S_IFCHR) => {}
        Ok(_) => {
            return Err(RootfsError::Invalid(format!(
                "console: {} is not a character device",
                pty_slave.display()
            )))
        }
        Err(e) => return Err(err(SyscallError::new("fstat", pty_slave, e))),
    }
    let target = resolve::resolve_in_root(rootfd.as_raw_fd(), console, Create::File)
        .map_err(RootfsError::resolve("console", console))?;
    let (source, target) = (mount_path(root, &pty), mount_path(root, &target));
    sys.mount(Some(&source), &target, None, MsFlags::MS_BIND, None)
        .map_err(err)
}

/// The path to mount through: the fd's /proc/self/fd link when /proc is there (it
/// names exactly what was checked), else the in-root path under `root` (after pivot
/// without a /proc mount; nothing can lead out of the root by then anyway).
fn mount_path(root: &Path, r: &Resolved) -> PathBuf {
    if Path::new("/proc/self/fd").is_dir() {
        r.proc_path()
    } else {
        root.join(r.path.strip_prefix("/").unwrap_or(&r.path))
    }
}
