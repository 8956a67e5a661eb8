//! Errors of registry pulls and logins. Each names the registry (and repository or
//! reference) it failed on, and the HTTP status where there was one.

use std::io;
use std::path::PathBuf;

use crate::content::{ContentError, Digest};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry (or its token service) refused us: no credentials, or wrong ones.
    #[error("unauthorized: authentication required for {registry}/{repository}{}",
        if *had_credentials { " (the stored credentials were refused)" } else { "" })]
    Unauthorized {
        registry: String,
        repository: String,
        had_credentials: bool,
    },
    #[error(
        "login to {registry} failed: unauthorized: incorrect username or password (HTTP {status})"
    )]
    LoginRefused { registry: String, status: u16 },
    #[error("manifest for {reference} not found: manifest unknown")]
    ManifestUnknown { reference: String },
    #[error("repository {registry}/{repository} not found: it does not exist or may require 'docker login'")]
    RepositoryUnknown {
        registry: String,
        repository: String,
    },
    #[error("blob {digest} not found in {registry}/{repository}")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: String,
    },
    /// Any other unexpected HTTP answer.
    #[error("registry {registry}: {what} failed with HTTP {status}: {message}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    /// Connection refused, TLS failure, reset, timeout...
    #[error("registry {registry}: cannot {what}: {message}")]
    Transport {
        registry: String,
        what: String,
        message: String,
    },
    #[error("token service {realm} for {registry}: {message}")]
    Token {
        registry: String,
        realm: String,
        message: String,
    },
    #[error("{reference} uses Docker image manifest schema 1 ({media_type}), which is no longer supported: push it again with a current client")]
    Schema1 {
        reference: String,
        media_type: String,
    },
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    #[error("{reference}: no manifest for platform {platform} in the index (available: {})", available.join(", "))]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: Vec<String>,
    },
    #[error("{reference}: invalid manifest {digest}: {reason}")]
    InvalidManifest {
        reference: String,
        digest: String,
        reason: String,
    },
    #[error("{reference}: manifest digest mismatch: expected {expected}, the registry sent content hashing to {actual}")]
    ManifestDigestMismatch {
        reference: String,
        expected: String,
        actual: Digest,
    },
    #[error("{reference}: unsupported digest {digest:?} (only sha256 is supported)")]
    UnsupportedDigest { reference: String, digest: String },
    /// A blob did not match its descriptor (size or sha256); nothing was committed.
    #[error("blob {digest} from {registry}/{repository} failed verification: {source}")]
    BlobVerification {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: Box<ContentError>,
    },
    #[error("content store: {0}")]
    Content(#[source] Box<ContentError>),
    #[error("credentials file {}: cannot {op}: {source}", path.display())]
    CredentialsIo {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("credentials file {}: {reason}", path.display())]
    CredentialsInvalid { path: PathBuf, reason: String },
    /// Another layer failed, so this one stopped (its partial ingest is kept).
    #[error("download of {digest} stopped because another layer failed")]
    Cancelled { digest: Digest },
    #[error("cannot start a download thread: {0}")]
    Thread(#[source] io::Error),
}

impl From<ContentError> for RegistryError {
    fn from(e: ContentError) -> Self {
        RegistryError::Content(Box::new(e))
    }
}

impl RegistryError {
    /// Whether trying again (after a pause) may succeed: network trouble, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
