//! The one seam under privileged code.
//!
//! Every mount, pivot, hostname and device-node call the container set-up makes goes
//! through [`Syscall`], so unit tests can record the calls ([`RecordingSyscall`]) and
//! inject errors without root. Raw syscalls that nix does not wrap (openat2,
//! memfd sealing, clone with CLONE_PARENT) live in [`raw`], the only place with
//! `unsafe` in this crate apart from the fork/exec glue in `process`.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

pub mod raw;

/// A failed syscall: which call, on what, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SyscallError {
    pub syscall: &'static str,
    pub path: PathBuf,
    pub errno: Errno,
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} ({})",
            self.syscall,
            self.path.display(),
            self.errno,
            self.errno.desc()
        )
    }
}

impl SyscallError {
    pub fn new(syscall: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Self {
        SyscallError {
            syscall,
            path: path.into(),
            errno,
        }
    }
}

pub type SysResult<T = ()> = std::result::Result<T, SyscallError>;

/// Privileged calls made while building a container's root file system and identity.
pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult;
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult;
    fn chroot(&self, path: &Path) -> SysResult;
    fn chdir(&self, path: &Path) -> SysResult;
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult;
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> SysResult;
    fn symlink(&self, target: &Path, link: &Path) -> SysResult;
    fn sethostname(&self, name: &str) -> SysResult;
    fn setdomainname(&self, name: &str) -> SysResult;
}

/// The real thing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult {
        tracing::debug!(?source, ?target, ?fstype, ?flags, ?data, "mount");
        nix::mount::mount(source, target, fstype, flags, data)
            .map_err(|e| SyscallError::new("mount", target, e))
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult {
        tracing::debug!(?target, ?flags, "umount2");
        nix::mount::umount2(target, flags).map_err(|e| SyscallError::new("umount2", target, e))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult {
        tracing::debug!(?new_root, ?put_old, "pivot_root");
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| SyscallError::new("pivot_root", new_root, e))
    }
    fn chroot(&self, path: &Path) -> SysResult {
        nix::unistd::chroot(path).map_err(|e| SyscallError::new("chroot", path, e))
    }
    fn chdir(&self, path: &Path) -> SysResult {
        nix::unistd::chdir(path).map_err(|e| SyscallError::new("chdir", path, e))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult {
        nix::sys::stat::mknod(path, kind, perm, dev)
            .map_err(|e| SyscallError::new("mknod", path, e))
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> SysResult {
        nix::unistd::chown(
            path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| SyscallError::new("chown", path, e))
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult {
        nix::unistd::symlinkat(target, None, link)
            .map_err(|e| SyscallError::new("symlink", link, e))
    }
    fn sethostname(&self, name: &str) -> SysResult {
        nix::unistd::sethostname(name).map_err(|e| SyscallError::new("sethostname", name, e))
    }
    fn setdomainname(&self, name: &str) -> SysResult {
        raw::setdomainname(name).map_err(|e| SyscallError::new("setdomainname", name, e))
    }
}

/// One recorded call, for unit tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: MntFlags,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chroot(PathBuf),
    Chdir(PathBuf),
    Mknod {
        path: PathBuf,
        kind: SFlag,
        perm: Mode,
        dev: u64,
    },
    Chown {
        path: PathBuf,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Sethostname(String),
    Setdomainname(String),
}

/// Records every call; fails the calls whose syscall name is in `fail` with `EPERM`.
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    pub calls: RefCell<Vec<Call>>,
    pub fail: Vec<(&'static str, Errno)>,
}

impl RecordingSyscall {
    pub fn failing(syscall: &'static str, errno: Errno) -> Self {
        RecordingSyscall {
            calls: RefCell::default(),
            fail: vec![(syscall, errno)],
        }
    }
    fn record(&self, name: &'static str, path: &Path, call: Call) -> SysResult {
        self.calls.borrow_mut().push(call);
        match self.fail.iter().find(|(n, _)| *n == name) {
            Some((_, errno)) => Err(SyscallError::new(name, path, *errno)),
            None => Ok(()),
        }
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult {
        let call = Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        };
        self.record("mount", target, call)
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult {
        self.record(
            "umount2",
            target,
            Call::Umount2 {
                target: target.into(),
                flags,
            },
        )
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult {
        let call = Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        };
        self.record("pivot_root", new_root, call)
    }
    fn chroot(&self, path: &Path) -> SysResult {
        self.record("chroot", path, Call::Chroot(path.into()))
    }
    fn chdir(&self, path: &Path) -> SysResult {
        self.record("chdir", path, Call::Chdir(path.into()))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult {
        self.record(
            "mknod",
            path,
            Call::Mknod {
                path: path.into(),
                kind,
                perm,
                dev,
            },
        )
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> SysResult {
        self.record(
            "chown",
            path,
            Call::Chown {
                path: path.into(),
                uid,
                gid,
            },
        )
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult {
        let call = Call::Symlink {
            target: target.into(),
            link: link.into(),
        };
        self.record("symlink", link, call)
    }
    fn sethostname(&self, name: &str) -> SysResult {
        self.record(
            "sethostname",
            Path::new(name),
            Call::Sethostname(name.into()),
        )
    }
    fn setdomainname(&self, name: &str) -> SysResult {
        self.record(
            "setdomainname",
            Path::new(name),
            Call::Setdomainname(name.into()),
        )
    }
}
