//! The runtime's top-level error: one variant per module error, plus the few
//! failures that belong to no module. Each carries the id, path or field it is about.

use std::path::PathBuf;

use crate::sys::SyscallError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Syscall(#[from] SyscallError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Cgroup(#[from] coracle_cgroups::CgroupError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Capability(#[from] crate::capabilities::CapabilityError),
    #[error(transparent)]
    Rlimit(#[from] crate::rlimits::RlimitError),
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::SysctlError),
    #[error(transparent)]
    User(#[from] crate::user::UserError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: {reason}")]
    Container { id: String, reason: String },
    /// A failure reported by the container's init or intermediate process.
    #[error("container init: {0}")]
    Init(String),
    /// The first error, and the errors of the clean-up that followed it.
    #[error("{first}; clean-up also failed: {}", cleanup.join("; "))]
    WithCleanup {
        first: Box<RuntimeError>,
        cleanup: Vec<String>,
    },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub fn container(id: &str, reason: impl Into<String>) -> Self {
        RuntimeError::Container {
            id: id.to_string(),
            reason: reason.into(),
        }
    }
}
