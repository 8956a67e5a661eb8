//! `linux.sysctl`: written under /proc/sys of the container.
//! STUB: interface fixed, implementation in progress.

use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl: {0}")]
    Invalid(String),
}

/// Validate every key first, then write each under `proc_sys` (normally `/proc/sys`).
pub fn apply(_proc_sys: &Path, _sysctl: &HashMap<String, String>) -> Result<(), SysctlError> {
    Ok(())
}
