//! Capability sets (bounding, effective, permitted, inheritable, ambient).
//! STUB: interface fixed, implementation in progress.

use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("capabilities: {op} {set}: {source}")]
    Apply { op: &'static str, set: &'static str, source: std::io::Error },
}

/// Drop every capability not in `caps.bounding` from the bounding set. Runs while
/// still privileged (before the uid change).
pub fn drop_bounding(_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    Ok(())
}

/// Set effective, permitted, inheritable and ambient sets. Runs after the uid change.
pub fn apply(_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    Ok(())
}
