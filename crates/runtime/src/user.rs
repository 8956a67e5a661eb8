//! The process's user: additional groups, gid, uid, umask.
//!
//! Ordering (see [`set_identity`]): supplementary groups, then gid, then uid. Both
//! setgroups(2) and setresgid(2) need CAP_SETGID in the effective set, and the
//! change away from uid 0 clears the effective set; after setresuid the process can
//! no longer change its groups. PR_SET_KEEPCAPS is set before the uid change so the
//! permitted set survives it and `capabilities::apply` can raise the container's
//! effective set afterwards.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::User;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{syscall}({id}): {errno}")]
    Syscall {
        syscall: &'static str,
        id: String,
        errno: Errno,
    },
    #[error("read {path}: {source}")]
    ReadSetgroups {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process.user.umask {umask:#o}: not a file mode mask (at most 0o777)")]
    InvalidUmask { umask: u32 },
}

const SETGROUPS: &str = "/proc/self/setgroups";

/// Whether setgroups(2) is allowed: in a user namespace whose
/// `/proc/<pid>/setgroups` says `deny` (set before an unprivileged gid_map was
/// written), it fails with EPERM whatever the capabilities. A missing file (kernels
/// before 3.19) means allowed.
pub fn setgroups_allowed(path: &Path) -> Result<bool, UserError> {
    match std::fs::read_to_string(path) {
        Ok(content) => Ok(content.trim() != "deny"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(UserError::ReadSetgroups {
            path: path.to_owned(),
            source,
        }),
    }
}

fn syscall_err(syscall: &'static str, id: String) -> impl FnOnce(Errno) -> UserError {
    move |errno| UserError::Syscall { syscall, id, errno }
}

/// setgroups, setresgid, setresuid (keeping capabilities across the uid change),
/// then umask.
pub fn set_identity(user: &User) -> Result<(), UserError> {
    if let Some(umask) = user.umask() {
        if umask > 0o777 {
            return Err(UserError::InvalidUmask { umask });
        }
    }
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .copied()
        .map(Gid::from_raw)
        .collect();

    // 1. Supplementary groups, while CAP_SETGID is still effective. An empty list
    //    is still set: it clears the groups inherited from the runtime.
    if setgroups_allowed(Path::new(SETGROUPS))? {
        tracing::debug!(groups = ?gids, "setgroups");
        nix::unistd::setgroups(&gids).map_err(syscall_err("setgroups", format!("{gids:?}")))?;
    } else if gids.is_empty() {
        tracing::debug!("setgroups denied in this user namespace; nothing to set");
    } else {
        tracing::warn!(
            groups = ?gids,
            "{SETGROUPS} is \"deny\" in this user namespace: additionalGids are not applied"
        );
    }

    // 2. The gid, also before the uid: it needs CAP_SETGID too.
    let gid = Gid::from_raw(user.gid());
    tracing::debug!(gid = gid.as_raw(), "setresgid");
    nix::unistd::setresgid(gid, gid, gid).map_err(syscall_err("setresgid", gid.to_string()))?;

    // 3. Keep the permitted set across the uid change (the kernel clears it when
    //    all uids leave 0); the effective set is cleared either way and is raised
    //    again by capabilities::apply.
    tracing::debug!("prctl(PR_SET_KEEPCAPS, 1)");
    crate::sys::raw::set_keep_caps().map_err(syscall_err(
        "prctl(PR_SET_KEEPCAPS)",
        user.uid().to_string(),
    ))?;

    // 4. The uid, last of the ids: afterwards groups and gid can no longer change.
    let uid = Uid::from_raw(user.uid());
    tracing::debug!(uid = uid.as_raw(), "setresuid");
    nix::unistd::setresuid(uid, uid, uid).map_err(syscall_err("setresuid", uid.to_string()))?;

    // 5. umask needs no privilege and cannot fail.
    if let Some(umask) = user.umask() {
        tracing::debug!(umask = format!("{umask:#o}"), "umask");
        nix::sys::stat::umask(Mode::from_bits_truncate(umask as libc::mode_t));
    }
    tracing::debug!(uid = uid.as_raw(), gid = gid.as_raw(), "identity set");
    Ok(())
}

/// Helpers for tests that must do something irreversible (drop privileges, load a
/// seccomp filter) in a forked child, shared by this crate's privileged tests.
#[cfg(test)]
pub(crate) mod test_support {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;

    /// True when the test may run; otherwise prints why it is skipped.
    pub(crate) fn require_root(test: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("skipping {test}: needs root (euid 0) to change credentials");
        false
    }

    /// Run `child` in a forked child process and return its exit code. The child
    /// should only make simple syscalls: everything it needs is prepared by the
    /// caller before the fork.
    #[allow(unsafe_code)]
    pub(crate) fn run_in_child(child: impl FnOnce() -> i32) -> i32 {
        // SAFETY: glibc's fork resets its own locks (malloc, stdio) in the child;
        // the child only runs `child` (simple syscalls, small allocations) and then
        // leaves with _exit, never returning into the multi-threaded test harness.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                let code =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(120);
                // SAFETY: _exit ends the child at once, without running the parent's
                // atexit handlers or flushing buffers it shares with the parent.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("forked child did not exit normally: {other:?}"),
            },
        }
    }

    /// The value of a `Key:` line of /proc/self/status (tab-separated fields joined
    /// by a single space).
    pub(crate) fn proc_status(key: &str) -> Option<String> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            Some(rest.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{proc_status, require_root, run_in_child};
    use super::*;
    use oci_spec::runtime::UserBuilder;

    #[test]
    fn setgroups_file_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("setgroups");
        assert!(
            setgroups_allowed(&path).unwrap(),
            "missing file means allowed"
        );
        std::fs::write(&path, "allow\n").unwrap();
        assert!(setgroups_allowed(&path).unwrap());
        std::fs::write(&path, "deny\n").unwrap();
        assert!(!setgroups_allowed(&path).unwrap());
    }

    #[test]
    fn errors_name_syscall_id_and_errno() {
        let err = syscall_err("setresuid", "1000".into())(Errno::EPERM);
        let msg = err.to_string();
        assert!(msg.starts_with("setresuid(1000): EPERM"), "{msg}");
    }

    #[test]
    fn invalid_umask_is_refused_before_any_change() {
        let user = UserBuilder::default()
            .uid(0u32)
            .gid(0u32)
            .umask(0o1777u32)
            .build()
            .unwrap();
        let err = set_identity(&user).unwrap_err();
        assert!(err.to_string().contains("umask 0o1777"), "{err}");
    }

    #[test]
    fn set_identity_in_forked_child() {
        if !require_root("user::set_identity_in_forked_child") {
            return;
        }
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .additional_gids(vec![1000u32, 2000])
            .umask(0o027u32)
            .build()
            .unwrap();
        let code = run_in_child(|| {
            if set_identity(&user).is_err() {
                return 1;
            }
            if proc_status("Uid").as_deref() != Some("1000 1000 1000 1000") {
                return 2;
            }
            if proc_status("Gid").as_deref() != Some("1000 1000 1000 1000") {
                return 3;
            }
            if proc_status("Groups").as_deref() != Some("1000 2000") {
                return 4;
            }
            if proc_status("Umask").as_deref() != Some("0027") {
                return 5;
            }
            // KEEPCAPS: the permitted set survived the uid change, the effective
            // set did not.
            if proc_status("CapPrm").as_deref() == Some("0000000000000000") {
                return 6;
            }
            if proc_status("CapEff").as_deref() != Some("0000000000000000") {
                return 7;
            }
            0
        });
        let what = [
            "ok",
            "set_identity failed",
            "Uid",
            "Gid",
            "Groups",
            "Umask",
            "CapPrm empty",
            "CapEff not empty",
        ];
        assert_eq!(
            code,
            0,
            "child failed: {}",
            what.get(code as usize).unwrap_or(&"?")
        );
    }

    #[test]
    fn set_identity_error_names_the_syscall() {
        if !require_root("user::set_identity_error_names_the_syscall") {
            return;
        }
        // After becoming uid 1000 without capabilities, going back to 0 must fail
        // with an error naming setgroups (the first call) and EPERM.
        let unprivileged = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .unwrap();
        let root = UserBuilder::default().uid(0u32).gid(0u32).build().unwrap();
        let code = run_in_child(|| {
            if set_identity(&unprivileged).is_err() {
                return 1;
            }
            match set_identity(&root) {
                Ok(()) => 2,
                Err(UserError::Syscall {
                    syscall: "setgroups",
                    errno: Errno::EPERM,
                    ..
                }) => 0,
                Err(_) => 3,
            }
        });
        assert_eq!(code, 0, "child exit code {code}");
    }
}
