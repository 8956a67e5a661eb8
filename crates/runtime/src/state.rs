//! OCI state. (being written)
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state: {0}")]
    Invalid(String),
}
