//! `kill`: send a signal to the container's init, or to every process in it.

use std::path::Path;
use std::str::FromStr;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Container;
use crate::error::{Result, RuntimeError};

/// Parse `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("invalid signal number {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| format!("unknown signal {s:?}"))
}

pub fn kill(root: &Path, id: &str, signal: Signal, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    c.state.require(c.state.status.can_kill(), "kill")?;
    let pids = if all {
        c.pids()?
    } else {
        c.state.pid.into_iter().collect()
    };
    for pid in pids {
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(RuntimeError::container(
                    id,
                    format!("kill({pid}, {signal}): {e} ({})", e.desc()),
                ))
            }
        }
    }
    Ok(())
}
