//! Typed, one-message-per-datagram channels between the runtime's processes.
//!
//! Wire protocol: an AF_UNIX SOCK_SEQPACKET socketpair, created CLOEXEC before any
//! fork. Each datagram is one JSON-encoded [`Message`]. Message boundaries are kept
//! by SEQPACKET, so no framing is needed. A read of 0 bytes means the peer closed its
//! end — it exited, or (for an exec'd process) its execve succeeded and the CLOEXEC
//! end went away.
//!
//! Each process keeps only its own end and drops the other straight after fork.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::sys::SyscallError;

/// Everything the runtime's processes tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// intermediate → main: I unshared a user namespace; write my id maps.
    UsernsCreated,
    /// main → intermediate: the id maps are written.
    UsernsMapped,
    /// intermediate → main: the pid (in main's pid namespace) of the process I cloned.
    ChildPid(i32),
    /// main → init: your process is in the container's cgroups now.
    CgroupJoined,
    /// init → main: mounts are done, not yet pivoted: run prestart/createRuntime hooks.
    RunCreateRuntimeHooks,
    /// main → init: those hooks ran; the payload is the state JSON (with init's host
    /// pid) for the createContainer and startContainer hooks.
    CreateRuntimeHooksDone(String),
    /// init → main: set up and waiting on exec.fifo for `start`.
    Ready,
    /// any child → main: set-up failed; the text names what failed.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Sys(#[from] SyscallError),
    #[error("channel: peer closed the connection")]
    Closed,
    #[error("channel: undecodable message: {0}")]
    Decode(serde_json::Error),
}

/// One end of a channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (main's end, the child's end).
pub fn pair() -> Result<(Channel, Channel), SyscallError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SyscallError::new("socketpair", "SOCK_SEQPACKET", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg).expect("message serializes");
        loop {
            match nix::unistd::write(&self.fd, &bytes) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(SyscallError::new("write", "channel", e).into()),
            }
        }
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(SyscallError::new("read", "channel", e).into()),
            }
        };
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        serde_json::from_slice(&buf[..n]).map_err(ChannelError::Decode)
    }

    /// Receive, turning an `Error` message into `Err`.
    pub fn expect(&self, want: &Message) -> Result<(), String> {
        match self.recv() {
            Ok(m) if &m == want => Ok(()),
            Ok(Message::Error(e)) => Err(e),
            Ok(other) => Err(format!("protocol error: expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_close_is_seen() {
        let (a, b) = pair().unwrap();
        a.send(&Message::ChildPid(42)).unwrap();
        a.send(&Message::Error("mount /proc: EPERM".into()))
            .unwrap();
        assert_eq!(b.recv().unwrap(), Message::ChildPid(42));
        assert_eq!(b.expect(&Message::Ready).unwrap_err(), "mount /proc: EPERM");
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }
}
