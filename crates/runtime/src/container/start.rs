//! `start`: release the waiting init by reading exec.fifo.

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::Container;
use crate::error::{Result, RuntimeError};
use crate::state::{Status, EXEC_FIFO};
use crate::sys::{raw, SyscallError};

pub fn start(root: &Path, id: &str) -> Result<Container> {
    let mut c = Container::load(root, id)?;
    c.state.require(c.state.status.can_start(), "start")?;
    let fifo = c.dir.dir.join(EXEC_FIFO);
    // Non-blocking open so a dead init cannot hang us; init, blocked opening the
    // write end, is woken by this open and writes one byte.
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(raw::owned_fd)
    .map_err(|e| SyscallError::new("open", &fifo, e))?;
    let pid = c.state.pid.unwrap_or(0);
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {
                if crate::state::process_start_time(pid).is_none() {
                    return Err(RuntimeError::container(id, "init exited before start"));
                }
            }
            Err(e) => return Err(SyscallError::new("poll", &fifo, e).into()),
        }
    }
    let mut byte = [0u8; 1];
    match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut byte) {
        Ok(1) => {}
        _ => return Err(RuntimeError::container(id, "init exited before start")),
    }
    std::fs::remove_file(&fifo).map_err(|e| RuntimeError::io("remove", &fifo, e))?;
    c.state.status = Status::Running;
    c.save()?;
    if let Some(hooks) = c.state.config.as_ref().and_then(|s| s.hooks().clone()) {
        // The spec: a failing poststart hook is logged; the container keeps running.
        if let Err(e) = crate::hooks::run(
            "poststart",
            hooks.poststart().as_deref().unwrap_or(&[]),
            &c.state.public_json(),
        ) {
            tracing::warn!("{e}");
        }
    }
    Ok(c)
}
