//! Pulling from registries (OCI distribution spec): manifests and indexes with platform
//! selection, blobs fetched in parallel, resumed and verified into the content store,
//! anonymous, basic and bearer-token auth, credentials in Docker's `config.json`.
//!
//! - [`fetch_image`]: resolve a reference, store the top-level manifest or index, the
//!   platform's manifest, the config and every layer in a
//!   [`ContentStore`](crate::content::ContentStore).
//! - [`login`] / [`logout`]: check credentials against `/v2/` and keep them in `config.json`.
//! - [`ProgressRenderer`]: `docker pull`-style progress for a terminal or a log.
//!
//! The HTTP client is a small blocking one (`client.rs`) on `ureq`: the caller is
//! synchronous, layers are fetched on a bounded set of threads, and a resumed ingest asks
//! for `Range: bytes=<offset>-` and checks that the server answered 206 from that offset
//! (any other answer restarts the blob from zero).
//!
//! Plain HTTP is used only for loopback registries (as Docker allows) and registries listed
//! in [`PullOptions::insecure_registries`]; every other registry is reached over HTTPS.

mod auth;
mod client;
mod credentials;
mod error;
mod platform;
mod progress;
mod pull;

pub use credentials::{
    default_config_path, load_credentials, login, logout, store_credentials, Credentials,
};
pub use error::RegistryError;
pub use platform::Platform;
pub use progress::{NoProgress, ProgressRenderer, PullEvent, PullObserver};
pub use pull::{fetch_image, Fetched, PullOptions};

/// Re-exported because [`Fetched`] carries its manifest and descriptor types.
pub use oci_spec;
