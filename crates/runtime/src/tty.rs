//! Terminals: the container's pty and the `--console-socket` protocol.
//!
//! Wire protocol of the console socket (the same as runc's): the runtime connects to
//! the unix stream socket at `--console-socket` and sends ONE message whose payload is
//! the pty's name (e.g. `/dev/pts/0`) and whose ancillary data is an SCM_RIGHTS
//! control message carrying the pty master fd. Then it closes the connection.
//!
//! The pty is created by the container's init after pivot_root, from the container's
//! own devpts instance (`/dev/ptmx -> pts/ptmx`), so the slave is a device the
//! container can see.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::sys::{raw, SyscallError};

/// A new pty: the master and the slave's path in the container.
pub struct Pty {
    pub master: OwnedFd,
    pub slave_path: PathBuf,
}

/// Open a new pty from /dev/ptmx (run inside the container, after pivot_root).
pub fn open_pty() -> Result<Pty, SyscallError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| SyscallError::new("open", "/dev/ptmx", e))?;
    grantpt(&master).map_err(|e| SyscallError::new("grantpt", "/dev/ptmx", e))?;
    unlockpt(&master).map_err(|e| SyscallError::new("unlockpt", "/dev/ptmx", e))?;
    let name = ptsname_r(&master).map_err(|e| SyscallError::new("ptsname", "/dev/ptmx", e))?;
    let fd: OwnedFd = raw::owned_fd(std::os::fd::IntoRawFd::into_raw_fd(master));
    Ok(Pty {
        master: fd,
        slave_path: PathBuf::from(name),
    })
}

/// Make the pty slave at `path` the caller's controlling terminal and stdio.
/// The caller must be a session leader (setsid) without a controlling terminal.
pub fn become_controlling(path: &std::path::Path) -> Result<(), SyscallError> {
    let fd = nix::fcntl::open(path, OFlag::O_RDWR, nix::sys::stat::Mode::empty())
        .map(raw::owned_fd)
        .map_err(|e| SyscallError::new("open", path, e))?;
    for target in 0..=2 {
        nix::unistd::dup2(fd.as_raw_fd(), target)
            .map_err(|e| SyscallError::new("dup2", path, e))?;
    }
    raw::set_controlling_tty(0).map_err(|e| SyscallError::new("ioctl(TIOCSCTTY)", path, e))
}

/// Send `master` over the connected console socket `sock`.
pub fn send_master(sock: RawFd, master: &OwnedFd, name: &str) -> Result<(), SyscallError> {
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)
        .map(drop)
        .map_err(|e| SyscallError::new("sendmsg", "console-socket", e))
}

/// Receive a pty master sent by [`send_master`].
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<OwnedFd, SyscallError> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| SyscallError::new("recvmsg", "console-socket", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| SyscallError::new("recvmsg", "console-socket", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(raw::owned_fd(*fd));
            }
        }
    }
    Err(SyscallError::new(
        "recvmsg",
        "console-socket",
        nix::errno::Errno::EBADMSG,
    ))
}
