//! The shim's few raw system calls, each with its safety argument: signal handlers
//! that only write to a pipe, the detaching fork, fd adoption and TIOCSWINSZ.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Write end of the SIGCHLD self-pipe (-1 until installed).
static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
        // A full pipe (EAGAIN) is fine: one pending byte already wakes the loop.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

extern "C" fn on_sigpipe(_: libc::c_int) {}

/// SIGCHLD wakes the poll loop through a self-pipe, and SIGPIPE gets an empty handler
/// (so a write to a closed pipe fails with EPIPE instead of killing the shim).
///
/// Handlers, unlike an ignored disposition or a blocked mask, are reset by execve:
/// the container's processes start with default SIGPIPE and SIGCHLD behaviour and an
/// unchanged signal mask. Returns the read end (non-blocking, close-on-exec).
pub fn install_signal_handlers() -> Result<OwnedFd, Errno> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    SIGCHLD_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    // The write end lives as long as the process.
    std::mem::forget(w);
    let chld = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    let pipe = SigAction::new(
        SigHandler::Handler(on_sigpipe),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: both handlers only call async-signal-safe functions (write) or nothing.
    unsafe {
        sigaction(Signal::SIGCHLD, &chld)?;
        sigaction(Signal::SIGPIPE, &pipe)?;
    }
    Ok(r)
}

/// Fork; the parent exits at once with status 0, the child returns. Called while
/// the process is single-threaded (no thread is ever created by the shim).
pub fn fork_and_leave_parent() -> Result<(), Errno> {
    // SAFETY: the process is single-threaded, so the child may run any code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => {
            // SAFETY: _exit never returns; the parent owns nothing that needs flushing.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Child => Ok(()),
    }
}

/// Take ownership of an fd number inherited from the engine (`--ready-fd`).
/// Fails with EBADF when the number is not an open fd.
pub fn adopt_fd(fd: RawFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    // SAFETY: the fd is open (checked above) and nothing else in this process owns
    // it: it was inherited, and every other inherited fd was closed.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Close every fd >= 3 except `keep` (inherited from the engine).
pub fn close_inherited(keep: Option<RawFd>) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd: &RawFd| *fd >= 3 && Some(*fd) != keep)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // SAFETY: at start-up no Rust object owns these inherited fds (the directory
        // walk's own fd is already closed; EBADF is ignored).
        unsafe { libc::close(fd) };
    }
}

/// ioctl(TIOCSWINSZ) on a pty master.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize that TIOCSWINSZ only reads.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Gives the heap pages freed after start-up back to the kernel (malloc_trim). Creating the
/// container parses the spec and compiles seccomp filters; that memory is free once the
/// container runs, but glibc keeps it mapped, and it would count against every idle shim.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us and
    // the shim is single-threaded.
    unsafe {
        libc::malloc_trim(0);
    }
}
