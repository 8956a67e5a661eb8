//! Foreground waiting: forward signals to the container process, proxy a terminal,
//! and return the exit code as a shell would report it (128 + signal if killed).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals forwarded to the container process.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGPIPE,
];

/// Exit code of a wait status, as a shell reports it.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Wait for `pid` (our child) to exit, forwarding signals to it and, with a pty
/// `master`, copying our stdin to it and its output to our stdout.
pub fn wait_forwarding(pid: Pid, master: Option<OwnedFd>) -> Result<i32, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(s);
    }
    // Block first, then check for an exit that happened before blocking.
    mask.thread_block()
        .map_err(|e| format!("sigprocmask: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let _raw = master.as_ref().map(|_| RawTerminal::enter());
    if let Some(m) = &master {
        copy_winsize(m.as_fd());
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    loop {
        if let Some(code) = try_reap(pid)? {
            if let Some(m) = &master {
                drain(m.as_fd());
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let Some(m) = &master {
                            copy_winsize(m.as_fd());
                        }
                    }
                    // Our own child, by pid.
                    other => {
                        let _ = kill(pid, other);
                    }
                }
            }
        }
        if let Some(m) = &master {
            if ready.get(1) == Some(&true) && !copy(m.as_fd(), std::io::stdout().as_fd()) {
                // EIO: every slave fd is closed; the process is exiting.
            }
            if ready.get(2) == Some(&true) && !copy(stdin.as_fd(), m.as_fd()) {
                stdin_open = false;
            }
        }
    }
}

fn try_reap(pid: Pid) -> Result<Option<i32>, String> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(Some(code));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Err(format!("waitpid {pid}: not our child")),
            Err(e) => return Err(format!("waitpid {pid}: {e}")),
        }
    }
}

/// Copy what is readable now from `from` to `to`. False on EOF or error.
fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn write_all(to: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Read the rest of the pty's output after the process has exited.
fn drain(master: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while copy(master, std::io::stdout().as_fd()) {}
}

fn copy_winsize(master: BorrowedFd<'_>) {
    crate::sys::raw::copy_winsize(std::io::stdin().as_raw_fd(), master.as_raw_fd());
}

/// Puts our stdin terminal (if it is one) into raw mode, restoring it on drop.
struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}
