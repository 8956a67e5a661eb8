//! Container operations, one file each: every operation loads and refreshes the
//! saved state, checks the status allows it, acts, and saves atomically.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod start;

use std::path::{Path, PathBuf};

pub use create::{create, CreateOptions};
pub use delete::delete;
pub use exec::{exec, ExecOptions};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use start::start;

use crate::error::{Result, RuntimeError};
use crate::state::{ContainerState, StateDir};

/// A container known to the runtime: where its state lives, and the state.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: StateDir,
    pub state: ContainerState,
}

impl Container {
    /// Load `<root>/<id>` and refresh its live status.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let dir = StateDir::new(root, id)?;
        let state = dir.load_live()?;
        Ok(Container { dir, state })
    }

    pub fn save(&self) -> Result<()> {
        Ok(self.dir.save(&self.state)?)
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match self.state.cgroup() {
            Some(cg) => Ok(cg.pids()?),
            None => Ok(self.state.pid.into_iter().collect()),
        }
    }
}

/// Write `pid` to `path` atomically (a pid file read half-written is a classic race).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path: PathBuf =
        std::path::absolute(path).map_err(|e| RuntimeError::io("resolve", path, e))?;
    crate::state::write_atomic(&path, pid.to_string().as_bytes())?;
    Ok(())
}
