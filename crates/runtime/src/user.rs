//! The process's user: additional groups, gid, uid, umask.
//! STUB: interface fixed, implementation in progress.

use oci_spec::runtime::User;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user: {0}")]
    Invalid(String),
}

/// setgroups, setresgid, setresuid (keeping capabilities across the uid change),
/// then umask.
pub fn set_identity(_user: &User) -> Result<(), UserError> {
    Ok(())
}
