//! Loading and validating config.json. (being written)
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("config.json: {0}")]
    Invalid(String),
}
