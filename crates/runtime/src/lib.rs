//! coracle-runtime: turns an OCI runtime bundle (`config.json` + root file system)
//! into a process that is PID 1 in its own namespaces, confined by cgroups,
//! capabilities and seccomp.
//!
//! The library is used in-process by `coracle-shim`; the `coracle-runtime` binary
//! wraps it in runc's command line.
//!
//! Process model (see `process`): the caller ("main") forks an intermediate process
//! (`coracle:[1:INTER]`) that joins/creates the namespaces, which clones the
//! container's init (`coracle:[2:INIT]`) as main's direct child and exits. init
//! builds the root file system, waits for `start`, and execs the user's process.
#![deny(unsafe_code)]

pub use coracle_cgroups as cgroups;
pub use oci_spec;

pub mod capabilities;
pub mod container;
pub mod devices;
pub mod error;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod sysctl;
pub mod tty;
pub mod user;

pub use error::{Result, RuntimeError};
