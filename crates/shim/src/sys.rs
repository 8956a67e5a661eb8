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

/// Close every fd >= 3 except those in `keep` (inherited from the engine).
pub fn close_inherited(keep: &[Option<RawFd>]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd: &RawFd| *fd >= 3 && !keep.contains(&Some(*fd)))
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

/// Gives back to the kernel the memory start-up used and the idle loop does not: the part of
/// the main thread's stack below the current frame (creating the container runs deep call
/// chains, the loop does not), then the heap pages malloc holds free (malloc_trim). Creating
/// the container parses the spec and compiles seccomp filters; that memory is free once the
/// container runs, but stays resident, and it would count against every idle shim.
pub fn release_free_memory() {
    release_stack_below_here();
    release_code_pages();
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us and
    // the shim is single-threaded.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmaps, from this process only, the pages of executable code it has touched: those of the
/// shim itself and of its libraries. Creating the container runs most of the runtime
/// library, the JSON parser and libseccomp; the idle loop runs a few pages of that. The
/// pages stay in the page cache (other shims and the next start use them), and the loop's
/// own code faults back in from there, so what stays mapped is what the shim still runs.
///
/// Only mappings that are executable and never written (`r-xp`) are touched. A private
/// file mapping that was written (relocated data, `.got`) would lose its writes under
/// MADV_DONTNEED; code is never written, so it reads back the same bytes from the file.
fn release_code_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        // Skip anonymous and special mappings ([vdso], [vsyscall]): keep file-backed code.
        let path = fields.nth(3).unwrap_or("");
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((lo, hi)) = range.split_once('-') else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        else {
            continue;
        };
        // SAFETY: [lo, hi) is a whole read-only, executable, private file mapping of this
        // process, from its own maps. DONTNEED drops this process's page-table entries for
        // it; as its pages were never written, later accesses (including the instructions
        // right after this call) fault in the identical bytes from the file again.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED);
        }
    }
}

/// madvise(MADV_DONTNEED) on the main thread's stack from the bottom of its mapping up to
/// a margin below this frame. Nothing lives below the stack pointer, so those pages are
/// free; the kernel drops them and hands out zeroed pages if the stack grows there again.
/// The margin covers the frames of the madvise call itself. Best effort: on any failure the
/// stack just stays as it is.
fn release_stack_below_here() {
    const MARGIN: usize = 16 * 1024;
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(low) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
    else {
        return;
    };
    drop(maps);
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let page = 4096;
    let high = here.saturating_sub(MARGIN) & !(page - 1);
    if high <= low {
        return;
    }
    // SAFETY: [low, high) is the unused part of this thread's own stack mapping: every live
    // frame is above `here`, and MARGIN more than covers the madvise call's own frames.
    // MADV_DONTNEED on private anonymous memory only replaces pages with zero-fill-on-demand.
    unsafe {
        libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED);
    }
}
