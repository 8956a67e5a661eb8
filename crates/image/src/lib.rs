//! coracle-image: the `image/` layer of ARCHITECTURE.md.
//!
//! - [`reference`]: image references parsed as Docker parses them
//!   (`nginx` -> `docker.io/library/nginx:latest`).
//! - [`content`]: a content-addressed blob store (`blobs/sha256/<hex>`) with an
//!   ingest area for partial writes and digest verification before an atomic commit.
//!
//! - [`unpack`]: layer tarballs (gzip, zstd, plain) unpacked safely into a
//!   directory, whiteouts turned into overlayfs whiteouts.
//!
//! - [`snapshot`]: overlayfs mounts for containers (lower dirs = the layer chain,
//!   a fresh upper and work dir), for chains longer than the mount-option limit.
//!
//! - [`config`]: the image configuration (Entrypoint, Cmd, Env, … Healthcheck).
//! - [`store`]: image records (name → manifest → config → layers), layers unpacked once and
//!   shared, crash-safe updates, `rmi`/`prune`/garbage collection.
//! - [`registry`]: pulls from registries into the content store.
//! - [`archive`]: `docker save` / OCI layout archives, and `import`.
#![deny(unsafe_code)]

pub mod archive;
pub mod config;
pub mod content;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;
