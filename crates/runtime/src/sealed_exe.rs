//! CVE-2019-5736: the container must never get a writable handle to the host's
//! runtime binary.
//!
//! Processes that enter a container's namespaces (init, exec'd processes before
//! their execve) are forks of the runtime, so their /proc/<pid>/exe is the runtime's
//! executable. A container whose entrypoint is `/proc/self/exe` would even execute
//! it. If that handle led to the host file through a writable mount, a process in
//! the container could reopen it for writing and replace the host's runtime.
//!
//! So before entering a container the runtime re-executes itself from a copy that
//! cannot be written, trying in order:
//! 1. nothing to do: the binary already runs from a read-only mount, a sealed memfd,
//!    or (after step 2/3) one of those;
//! 2. a read-only bind mount of the binary, detached right after it is opened: no
//!    copy is made (the page cache is shared), and reopening /proc/<pid>/exe for
//!    writing fails with EROFS. Needs CAP_SYS_ADMIN; the mount exists for a few
//!    microseconds, on a file in the runtime's own state directory, and is
//!    lazily unmounted before the exec;
//! 3. a sealed memfd copy (F_SEAL_WRITE | SHRINK | GROW | SEAL): works everywhere,
//!    costs a copy of the binary (about 3 ms for 4 MB here).
//!
//! A process that starts one of these binaries can do step 2 for it instead
//! ([`readonly_handle`]): the engine starts the shim from such a handle, and the shim,
//! finding itself protected, skips its own re-exec (one program load less per start).
//!
//! The runtime's processes are also non-dumpable while they run in the container,
//! so other container processes cannot open /proc/<pid>/exe at all (see `process`).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::sys::raw;

const SEALS: libc::c_int =
    raw::F_SEAL_SEAL | raw::F_SEAL_SHRINK | raw::F_SEAL_GROW | raw::F_SEAL_WRITE;

/// True if this process's executable cannot be written through /proc/self/exe.
pub fn is_protected() -> bool {
    // The mount the exe link leads to (a read-only bind, or a read-only file system).
    if statvfs("/proc/self/exe").is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY)) {
        return true;
    }
    match File::open("/proc/self/exe") {
        Ok(f) => raw::get_seals(f.as_raw_fd()).is_ok_and(|s| s & SEALS == SEALS),
        Err(_) => false,
    }
}

/// Re-exec the current binary from a copy that cannot be written, unless it
/// already runs from one. `scratch_dir` (the runtime's state root) holds the
/// short-lived bind-mount target. Returns only on failure.
pub fn ensure_sealed(scratch_dir: &Path) -> Result<(), String> {
    if is_protected() {
        return Ok(());
    }
    let (args, env) = argv_envp();
    match readonly_bind(Path::new("/proc/self/exe"), scratch_dir) {
        Ok(fd) => {
            let e = raw::execveat_fd(fd.as_raw_fd(), &args, &env);
            tracing::debug!("execveat of the read-only bind failed ({e}); using a sealed copy");
        }
        Err(e) => tracing::debug!("read-only bind of the runtime binary: {e}; using a sealed copy"),
    }
    let fd = sealed_copy()?;
    let e = raw::execveat_fd(fd.as_raw_fd(), &args, &env);
    Err(format!("sealed re-exec: execveat: {e}"))
}

/// An O_PATH handle on the executable `exe`, through a read-only bind mount that is
/// already detached (step 2 above; `scratch_dir` holds the mount point for a moment).
/// A process started from it (`/proc/self/fd/N`, or execveat) is [`is_protected`].
/// Needs CAP_SYS_ADMIN.
pub fn readonly_handle(exe: &Path, scratch_dir: &Path) -> Result<OwnedFd, String> {
    let fd = readonly_bind(exe, scratch_dir)?;
    // The bind keeps the flags of the mount `exe` is on: from a noexec one, the handle
    // could not be executed.
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match statvfs(path.as_str()) {
        Ok(s) if s.flags().contains(FsFlags::ST_NOEXEC) => {
            Err(format!("{} is on a noexec mount", exe.display()))
        }
        Ok(_) => Ok(fd),
        Err(e) => Err(format!("statvfs {}: {e}", exe.display())),
    }
}

/// Bind `source` read-only onto a fresh file in `dir`, open it O_PATH, then
/// lazily unmount and unlink it: the fd keeps the read-only mount alive, and
/// nothing of it is left in the directory or the mount table.
fn readonly_bind(source: &Path, dir: &Path) -> Result<OwnedFd, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    // Unique per process and call: a daemon may start several containers at once.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let target: PathBuf = dir.join(format!(".coracle-runtime-exe.{}.{n}", std::process::id()));
    let fd = nix::fcntl::open(
        &target,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o500),
    )
    .map(raw::owned_fd)
    .map_err(|e| format!("create {}: {e}", target.display()))?;
    drop(fd);
    let result = (|| {
        let remount = |flags: MsFlags| {
            nix::mount::mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(|e| format!("remount {}: {e}", target.display()))
        };
        nix::mount::mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("mount {} on {}: {e}", source.display(), target.display()))?;
        // A bind mount ignores MS_RDONLY on creation: remount to make it read-only.
        let ro = remount(MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY);
        let fd = ro.and_then(|()| {
            nix::fcntl::open(&target, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .map(raw::owned_fd)
                .map_err(|e| format!("open {}: {e}", target.display()))
        });
        // Always detach, success or not: the open fd keeps the mount alive for us.
        let _ = nix::mount::umount2(&target, MntFlags::MNT_DETACH);
        fd
    })();
    let _ = std::fs::remove_file(&target);
    result
}

fn sealed_copy() -> Result<OwnedFd, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("sealed copy: {what}: {e}");
    let mut exe = File::open("/proc/self/exe").map_err(|e| err("open /proc/self/exe", &e))?;
    let memfd =
        raw::memfd_create_sealable("coracle-runtime").map_err(|e| err("memfd_create", &e))?;
    let mut copy = File::from(memfd);
    // std::io::copy uses copy_file_range/sendfile: the copy stays in the kernel.
    std::io::copy(&mut exe, &mut copy).map_err(|e| err("copy /proc/self/exe", &e))?;
    raw::add_seals(copy.as_raw_fd(), SEALS).map_err(|e| err("F_ADD_SEALS", &e))?;
    Ok(OwnedFd::from(copy))
}

fn argv_envp() -> (Vec<CString>, Vec<CString>) {
    let args = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).expect("argv has no NUL"))
        .collect();
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).expect("environ has no NUL")
        })
        .collect();
    (args, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_copy_refuses_writes() {
        let fd = sealed_copy().expect("sealed copy");
        let seals = raw::get_seals(fd.as_raw_fd()).expect("F_GET_SEALS");
        assert_eq!(seals & SEALS, SEALS);
        let mut f = File::from(fd);
        let e = std::io::Write::write(&mut f, b"x").expect_err("write to a sealed copy");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn readonly_bind_is_read_only_and_leaves_nothing() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // This process's own binary (the runtime's re-exec), and another program's
        // (what the engine does for the shim).
        let other = tempfile::tempdir().unwrap();
        let program = other.path().join("program");
        std::fs::copy("/bin/true", &program).unwrap();
        for exe in [Path::new("/proc/self/exe"), &program] {
            check_readonly_handle(exe, dir.path());
        }
        // The other program runs from its handle.
        let fd = readonly_handle(&program, dir.path()).expect("read-only handle");
        let status = std::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .status()
            .expect("exec through the handle");
        assert!(status.success());
    }

    fn check_readonly_handle(exe: &Path, dir: &Path) {
        let fd = readonly_handle(exe, dir).expect("read-only bind");
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let vfs = statvfs(path.as_str()).expect("statvfs of the bound exe");
        assert!(vfs.flags().contains(FsFlags::ST_RDONLY));
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect_err("write open");
        assert!(
            matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            0,
            "target file left"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(".coracle-runtime-exe"),
            "bind mount left in mountinfo"
        );
    }
}
