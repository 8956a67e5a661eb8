//! Raw syscalls that nix does not wrap. Every `unsafe` block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;

pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call;
    // the kernel copies them.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(rc).map(drop)
}

/// The result of [`clone_process`] as seen by each side.
pub enum CloneResult {
    Parent { child: Pid },
    Child,
}

/// `clone(2)` used like `fork(2)`, with extra namespace / `CLONE_PARENT` flags.
///
/// Why not `fork`: `CLONE_PARENT` makes the new process a sibling of the caller (the
/// child of the caller's parent), which is how the container's init becomes the
/// direct child of the runtime's main process (and so of the shim, its subreaper),
/// while the intermediate process that created it exits. The plain `clone` syscall
/// exists on every kernel, so there is no clone3-only path to fall back from.
///
/// # Safety contract for callers
/// The caller must be single-threaded (as after `fork`, only the calling thread is
/// copied). The runtime never starts threads.
pub fn clone_process(flags: libc::c_int) -> Result<CloneResult, Errno> {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a NULL stack the child runs on a copy-on-write copy of the
    // caller's stack, exactly like fork(2); the remaining pointer arguments
    // (parent_tid, child_tid, tls) are unused because no flag asks for them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match Errno::result(rc)? {
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2): open `path` relative to `dirfd` with `resolve` restrictions
/// (e.g. [`RESOLVE_IN_ROOT`] so `..` and absolute symlinks cannot leave `dirfd`).
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `cpath` is NUL-terminated and `how` is a correctly sized open_how
        // that lives across the call; the kernel only reads both.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                cpath.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(rc) {
            // SAFETY: on success the syscall returned a new fd that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Mark every fd >= `first` close-on-exec (close_range with CLOSE_RANGE_CLOEXEC), so
/// nothing of the host leaks into the container across execve (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers; marking fds close-on-exec cannot
    // invalidate any Rust-owned fd in this process.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if Errno::result(rc).is_ok() {
        return Ok(());
    }
    // Fallback for kernels before 5.11: walk /proc/self/fd.
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::ENOENT)?;
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &i32| *fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number only changes its flags; EBADF is ignored
        // (the fd of the directory walk itself is already closed).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, 0)`: /proc/<pid> of this process becomes root-owned and
/// ptrace-protected, so a process in the container cannot open /proc/<pid>/exe of
/// the runtime while it is inside the container's namespaces.
pub fn set_non_dumpable() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, program): install a BPF filter in this
/// process (needs no_new_privs or CAP_SYS_ADMIN).
pub fn seccomp_set_mode_filter(flags: u32, program: &[libc::sock_filter]) -> Result<(), Errno> {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the instructions; the cast to *mut is the C API's.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` initialised instructions that outlive the call;
    // the kernel copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(rc).map(drop)
}

/// pidfd_open(2): a file descriptor for `pid` that polls readable once it has exited
/// (any process, not only a child). Linux 5.3 and later.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; on success the kernel returns a new fd that
    // nothing else owns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until `pid` has exited or `timeout` passed (pidfd_open + poll); true if it
/// exited. A pid that no longer exists counts as exited. Errors other than "no such
/// process" (a kernel without pidfd_open) are returned for the caller to poll instead.
pub fn wait_pid_exit(pid: i32, timeout: std::time::Duration) -> Result<bool, Errno> {
    use std::os::fd::AsFd;
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(true),
        Err(e) => return Err(e),
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(60_000) as u32)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, 1)`: keep the permitted set across setuid away from 0.
pub fn set_keep_caps() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, sig)`.
pub fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) }).map(drop)
}

/// memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING.
pub fn memfd_create_sealable(name: &str) -> Result<OwnedFd, Errno> {
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    // SAFETY: on success memfd_create returned a new fd that nothing else owns.
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

pub const F_SEAL_SEAL: libc::c_int = 0x0001;
pub const F_SEAL_SHRINK: libc::c_int = 0x0002;
pub const F_SEAL_GROW: libc::c_int = 0x0004;
pub const F_SEAL_WRITE: libc::c_int = 0x0008;

/// fcntl(F_ADD_SEALS).
pub fn add_seals(fd: RawFd, seals: libc::c_int) -> Result<(), Errno> {
    // SAFETY: fcntl on an fd we own with an integer argument.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }).map(drop)
}

/// fcntl(F_GET_SEALS); EINVAL for a file that does not support sealing.
pub fn get_seals(fd: RawFd) -> Result<libc::c_int, Errno> {
    // SAFETY: fcntl on an fd with no pointer argument.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) })
}

/// Take ownership of a fd that nix returned as a bare `RawFd` (nix 0.29's `open`).
pub fn owned_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass only fds freshly returned by a successful open-like call,
    // which nothing else owns or closes.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// ioctl(fd, TIOCSCTTY, 0): make the terminal on `fd` the controlling terminal.
pub fn set_controlling_tty(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
}

/// `_exit(2)`: leave a forked child without running destructors or atexit handlers
/// that belong to the parent's state.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Copy the window size of terminal `from` to terminal `to` (TIOCGWINSZ/TIOCSWINSZ).
/// Silently does nothing when `from` is not a terminal.
pub fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid, writable winsize for TIOCGWINSZ and a readable one
    // for TIOCSWINSZ; both calls only touch that struct.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The window size (rows, columns) of terminal `fd` (TIOCGWINSZ); `None` when it is not one.
pub fn winsize(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid, writable winsize; TIOCGWINSZ only writes that struct.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some((ws.ws_row, ws.ws_col))
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): execute the file `fd` refers to
/// (an O_PATH fd is enough). Returns only on failure.
pub fn execveat_fd(fd: RawFd, argv: &[CString], envp: &[CString]) -> Errno {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point at CStrings that outlive the
    // call; the empty path with AT_EMPTY_PATH makes the kernel execute `fd` itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}
