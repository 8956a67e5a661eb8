//! `pause` / `resume`: the freezer cgroup.

use std::path::Path;

use super::Container;
use crate::error::{Result, RuntimeError};
use crate::state::Status;

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let mut c = Container::load(root, id)?;
    c.state.require(c.state.status.can_pause(), "pause")?;
    let cg = c
        .state
        .cgroup()
        .ok_or_else(|| RuntimeError::container(id, "no cgroup hierarchy found"))?;
    cg.freeze()?;
    c.state.status = Status::Paused;
    c.save()
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let mut c = Container::load(root, id)?;
    c.state.require(c.state.status.can_resume(), "resume")?;
    let cg = c
        .state
        .cgroup()
        .ok_or_else(|| RuntimeError::container(id, "no cgroup hierarchy found"))?;
    cg.thaw()?;
    c.state.status = Status::Running;
    c.save()
}
