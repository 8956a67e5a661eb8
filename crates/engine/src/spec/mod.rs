//! Container configuration and its OCI runtime spec, with Docker's default security.
//!
//! - [`config`]: `ContainerConfig` (Docker's `Config` + `HostConfig` + `NetworkingConfig`),
//!   decoded from the Engine API or filled by the CLI.
//! - [`parse`]: the `run`/`create` flag parsers, with Docker's error messages.
//! - [`defaults`]: the image's configuration applied (Entrypoint/Cmd, Env, WorkingDir, ...).
//! - [`mounts`]: the binds and volumes the engine resolves to host paths before `build_spec`.
//! - [`build`]: `build_spec` — the OCI runtime spec for a container, from its configuration
//!   and what the engine prepared ([`SpecContext`]: rootfs, network namespace, mounts,
//!   cgroup path, the host's capability bounding set).
//! - [`caps`], [`seccomp`], [`user`]: capability sets, Coracle's default seccomp profile,
//!   and `--user` resolved against the rootfs's account databases.

use std::path::PathBuf;

pub mod build;
pub mod caps;
pub mod config;
pub mod defaults;
pub mod mounts;
pub mod parse;
pub mod seccomp;
pub mod user;

pub use build::{build_spec, NetNamespace, ResolvedMount, SpecContext};
pub use config::ContainerConfig;
pub use defaults::{apply_image_defaults, AppliedDefaults};
pub use mounts::mount_requests;
pub use oci_spec;
pub use parse::ParseError;

/// Why a container's configuration cannot become a runtime spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A `--user`/`--group-add` that the rootfs's databases do not resolve.
    #[error("{0}")]
    User(String),
    #[error("seccomp profile: {0}")]
    SeccompProfile(String),
    /// Conflicting or out-of-range resource settings (Docker's wording).
    #[error("{0}")]
    Resources(String),
    #[error("sysctl {key:?}: {reason}")]
    Sysctl { key: String, reason: &'static str },
    #[error("device {path}: {reason}")]
    Device { path: PathBuf, reason: String },
    #[error("--init: no init binary was given to the spec builder")]
    NoInitBinary,
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("/proc/self/status has no CapBnd line")]
    NoCapBnd,
    /// A generated document that oci-spec refuses: a bug in this module.
    #[error("generated spec refused by oci-spec: {0}")]
    Generated(#[source] serde_json::Error),
}
