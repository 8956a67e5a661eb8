//! rlimits and oom_score_adj of the container process.
//! STUB: interface fixed, implementation in progress.

use oci_spec::runtime::PosixRlimit;

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("rlimit: {0}")]
    Invalid(String),
}

pub fn apply(_rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    Ok(())
}

pub fn set_oom_score_adj(_value: i32) -> Result<(), RlimitError> {
    Ok(())
}
