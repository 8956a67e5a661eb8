//! The last steps before the user's program runs, shared by init and exec'd
//! processes: limits, identity, capabilities, seccomp, cwd, fds, execve.
//!
//! Order, and why:
//! 1. rlimits and oom_score_adj first: raising them needs privileges dropped below.
//! 2. Without `noNewPrivileges`, the seccomp filter is loaded BEFORE capabilities
//!    are dropped: installing a filter then requires CAP_SYS_ADMIN. With it, the
//!    filter is loaded as late as possible (step 7), so it need not allow the
//!    runtime's own remaining syscalls.
//! 3. The bounding set is dropped while still privileged (it needs CAP_SETPCAP).
//! 4. groups, gid, uid (PR_SET_KEEPCAPS keeps the permitted set across setuid).
//! 5. effective/permitted/inheritable/ambient set for the new uid.
//! 6. cwd, resolved as the final user; every fd above the preserved ones is marked
//!    close-on-exec so nothing of the host leaks in (CVE-2024-21626).
//! 7. no_new_privs, then seccomp (if deferred), then execve.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::seccomp::Filter;
use crate::sys::raw;

/// A process ready for execve.
pub(super) struct Prepared<'f> {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    no_new_privs: bool,
    deferred_filter: Option<&'f Filter>,
}

pub(super) fn prepare<'f>(
    process: &Process,
    filter: Option<&'f Filter>,
    preserve_fds: u32,
) -> Result<Prepared<'f>, String> {
    let warn_lsm = |what: &str| {
        tracing::warn!("process.{what} is set but this host cannot apply it; ignored");
    };
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        warn_lsm("apparmorProfile");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        warn_lsm("selinuxLabel");
    }
    if let Some(rlimits) = process.rlimits() {
        crate::rlimits::apply(rlimits).map_err(|e| e.to_string())?;
    }
    if let Some(adj) = process.oom_score_adj() {
        crate::rlimits::set_oom_score_adj(adj).map_err(|e| e.to_string())?;
    }
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let mut deferred_filter = None;
    if let Some(f) = filter {
        if no_new_privs {
            deferred_filter = Some(f);
        } else {
            f.load().map_err(|e| e.to_string())?;
        }
    }
    if let Some(caps) = process.capabilities() {
        crate::capabilities::drop_bounding(caps).map_err(|e| e.to_string())?;
    }
    crate::user::set_identity(process.user()).map_err(|e| e.to_string())?;
    if let Some(caps) = process.capabilities() {
        crate::capabilities::apply(caps).map_err(|e| e.to_string())?;
    }
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).map_err(|e| format!("chdir {}: {e} ({})", cwd.display(), e.desc()))?;
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let program = args.first().ok_or("process.args is empty")?;
    let path = resolve_program(program, &env, cwd)?;
    raw::cloexec_from(3 + preserve_fds).map_err(|e| format!("close_range: {e}"))?;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    Ok(Prepared {
        path: CString::new(path.into_os_string().into_encoded_bytes())
            .map_err(|_| "program path contains a NUL byte".to_string())?,
        args: args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cstr(e)).collect::<Result<_, _>>()?,
        no_new_privs,
        deferred_filter,
    })
}

pub(super) fn exec(p: Prepared<'_>) -> Result<std::convert::Infallible, String> {
    if p.no_new_privs {
        raw::set_no_new_privs().map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"))?;
    }
    if let Some(f) = p.deferred_filter {
        f.load().map_err(|e| e.to_string())?;
    }
    let e = nix::unistd::execve(&p.path, &p.args, &p.env).unwrap_err();
    Err(format!("exec {:?}: {e} ({})", p.path, e.desc()))
}

/// Find `program` as execvp would, using the container's PATH (from `env`).
/// The error text follows Docker's ("executable file not found in $PATH"), which
/// engines map to exit code 127.
pub fn resolve_program(program: &str, env: &[String], cwd: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        let p = if Path::new(program).is_absolute() {
            PathBuf::from(program)
        } else {
            cwd.join(program)
        };
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(format!("exec {program:?}: is a directory")),
            Ok(_) => Ok(p),
            Err(e) => Err(format!("exec {program:?}: stat {}: {e}", p.display())),
        };
    }
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "exec {program:?}: executable file not found in $PATH"
    ))
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_through_path_like_execvp() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let p = resolve_program("sh", &env, Path::new("/")).unwrap();
        assert!(p.ends_with("sh"), "{p:?}");
        let e = resolve_program("no-such-program-xyz", &env, Path::new("/")).unwrap_err();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        assert!(resolve_program("/", &env, Path::new("/"))
            .unwrap_err()
            .contains("directory"));
    }
}
