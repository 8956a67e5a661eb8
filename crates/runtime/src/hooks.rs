//! OCI hooks. (being written)
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {path}: {reason}")]
    Failed { path: String, reason: String },
}
