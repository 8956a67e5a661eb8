//! coracle-engine: the `engine/` layer of ARCHITECTURE.md.
//!
//! - [`store`]: the metadata database (SQLite, WAL): containers, networks' address
//!   allocations, volumes, exec sessions; the container lifecycle state machine.
//! - [`spec`]: a container's configuration (Docker's Config/HostConfig) and the image's
//!   defaults turned into an OCI runtime spec with Docker's default security.
//! - [`engine`]: create/start/stop/kill/remove/pause over the store, images, network,
//!   runtime and one `coracle-shim` per container.
#![deny(unsafe_code)]

pub mod engine;
pub mod spec;
pub mod store;
