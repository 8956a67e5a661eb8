//! seccomp filters from the OCI spec via libseccomp.
//!
//! [`compile`] validates `linux.seccomp` and builds a libseccomp filter context in
//! memory (nothing is filtered yet, and it needs no privilege, so `spec` calls it
//! when loading a bundle to report profile errors early); [`Filter::load`] installs
//! it in the calling process.
//!
//! Choices:
//! - Syscall names are resolved by libseccomp, which knows every architecture's
//!   table. A name it does not know at all (a syscall newer than the host's
//!   libseccomp, or a typo) is skipped with a warning, as runc does, so that one
//!   profile works across hosts; [`Filter::skipped_syscalls`] lists them. A
//!   malformed profile (argument index above 5, `errnoRet` on an action that has no
//!   return value, a `valueTwo` on an operator that ignores it, an empty `names`)
//!   is an error naming the field and its value.
//! - `SCMP_ACT_NOTIFY`, `listenerPath` and `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
//!   need a seccomp agent, which Coracle does not have: they are refused.
//! - A rule whose action equals the default action is dropped (libseccomp refuses
//!   it, and it changes nothing).
//! - libseccomp's "set no_new_privs on load" attribute is turned off: the init
//!   process sets no_new_privs itself from `process.noNewPrivileges`. Ordering
//!   constraint for the caller: without no_new_privs, loading a filter needs
//!   CAP_SYS_ADMIN, so the filter must be loaded before capabilities are dropped,
//!   and must then allow the syscalls init still makes (capset, setresuid, execve).

use libseccomp::error::SeccompError as LibError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {field} = {value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error("seccomp: {field} = {value}: not supported: {reason}")]
    Unsupported {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error("seccomp: {field} = {value}: libseccomp refused it: {source}")]
    Build {
        field: String,
        value: String,
        source: LibError,
    },
    #[error("seccomp: load the filter: {source}{hint}")]
    Load {
        source: LibError,
        hint: &'static str,
    },
}

fn invalid(
    field: impl Into<String>,
    value: impl ToString,
    reason: impl Into<String>,
) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn build(field: impl Into<String>, value: impl ToString) -> impl FnOnce(LibError) -> SeccompError {
    let (field, value) = (field.into(), value.to_string());
    move |source| SeccompError::Build {
        field,
        value,
        source,
    }
}

const NOTIFY_REASON: &str =
    "SCMP_ACT_NOTIFY needs a seccomp agent listening on listenerPath, which Coracle does not have";

/// Largest errno the kernel passes through SECCOMP_RET_ERRNO (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;

/// A compiled, not yet loaded filter.
#[derive(Debug)]
pub struct Filter {
    ctx: ScmpFilterContext,
    skipped: Vec<String>,
}

/// The libseccomp action for an OCI action and its `errnoRet` (`field` names the
/// action's field in error messages, e.g. `syscalls[3].action`).
fn action(
    field: &str,
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    use LinuxSeccompAction as A;
    let errno_field = || match field.strip_suffix("action") {
        Some(prefix) if prefix.ends_with('.') => format!("{prefix}errnoRet"),
        _ => "defaultErrnoRet".to_owned(),
    };
    if let Some(ret) = errno_ret {
        if !matches!(act, A::ScmpActErrno | A::ScmpActTrace) {
            return Err(invalid(
                errno_field(),
                ret,
                format!("only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {act}"),
            ));
        }
        if ret > MAX_ERRNO {
            return Err(invalid(
                errno_field(),
                ret,
                format!("above the largest errno ({MAX_ERRNO})"),
            ));
        }
    }
    let ret = errno_ret.unwrap_or(libc::EPERM as u32);
    Ok(match act {
        // SCMP_ACT_KILL is the historical name of SCMP_ACT_KILL_THREAD.
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(ret as i32),
        A::ScmpActTrace => ScmpAction::Trace(ret as u16),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                field: field.to_owned(),
                value: act.to_string(),
                reason: NOTIFY_REASON,
            })
        }
    })
}

fn arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// One argument comparison (`field` is e.g. `syscalls[3].args[0]`).
fn comparison(field: &str, arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    use LinuxSeccompOperator as O;
    if arg.index() > 5 {
        return Err(invalid(
            format!("{field}.index"),
            arg.index(),
            "syscalls have 6 arguments: 0..=5",
        ));
    }
    let op = match arg.op() {
        O::ScmpCmpNe => ScmpCompareOp::NotEqual,
        O::ScmpCmpLt => ScmpCompareOp::Less,
        O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        O::ScmpCmpEq => ScmpCompareOp::Equal,
        O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        O::ScmpCmpGt => ScmpCompareOp::Greater,
        // (argument & value) == valueTwo; a missing valueTwo is 0, as in runc.
        O::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            return Ok(ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                datum,
            ));
        }
    };
    // Profiles generated by Docker write "valueTwo": 0 everywhere; only a value
    // that would be silently ignored is an error.
    if let Some(two) = arg.value_two().filter(|v| *v != 0) {
        return Err(invalid(
            format!("{field}.valueTwo"),
            two,
            format!("only used with SCMP_CMP_MASKED_EQ, not {}", arg.op()),
        ));
    }
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

/// Validate the spec and build the filter (no syscall is filtered yet).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    if let Some(path) = seccomp.listener_path() {
        return Err(SeccompError::Unsupported {
            field: "listenerPath".into(),
            value: path.display().to_string(),
            reason: NOTIFY_REASON,
        });
    }
    let default = action(
        "defaultAction",
        seccomp.default_action(),
        seccomp.default_errno_ret(),
    )?;
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(build("defaultAction", seccomp.default_action()))?;
    // See the module comment: init sets no_new_privs itself.
    ctx.set_ctl_nnp(false)
        .map_err(build("no_new_privs attribute", false))?;
    // Report the kernel's errno when loading fails, not libseccomp's ECANCELED
    // (best effort: older libseccomp lacks the attribute).
    let _ = ctx.set_api_sysrawrc(true);

    for (i, a) in seccomp.architectures().iter().flatten().enumerate() {
        let token = arch(*a);
        let field = format!("architectures[{i}]");
        if !ctx
            .is_arch_present(token)
            .map_err(build(field.clone(), a))?
        {
            ctx.add_arch(token).map_err(build(field, a))?;
        }
    }

    for (i, flag) in seccomp.flags().iter().flatten().enumerate() {
        let field = format!("flags[{i}]");
        let set = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    field,
                    value: flag.to_string(),
                    reason: "only meaningful with SCMP_ACT_NOTIFY, which Coracle does not support",
                });
            }
        };
        set.map_err(build(field, flag))?;
    }

    let mut skipped = Vec::new();
    let mut rules = 0usize;
    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        if rule.names().is_empty() {
            return Err(invalid(format!("{field}.names"), "[]", "lists no syscall"));
        }
        let act = action(&format!("{field}.action"), rule.action(), rule.errno_ret())?;
        let cmps = rule
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, arg)| comparison(&format!("{field}.args[{j}]"), arg))
            .collect::<Result<Vec<_>, _>>()?;
        if act == default {
            tracing::debug!(rule = i, names = ?rule.names(), "seccomp rule has the default action; dropped");
            continue;
        }
        for (j, name) in rule.names().iter().enumerate() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                tracing::warn!(
                    syscall = %name,
                    rule = i,
                    "seccomp: syscall name unknown to this host's libseccomp on every architecture; skipped"
                );
                skipped.push(name.clone());
                continue;
            };
            ctx.add_rule_conditional(act, syscall, &cmps)
                .map_err(build(format!("{field}.names[{j}]"), name))?;
            rules += 1;
        }
    }
    tracing::debug!(rules, skipped = skipped.len(), "seccomp filter compiled");
    Ok(Filter { ctx, skipped })
}

impl Filter {
    /// Syscall names that were skipped because libseccomp does not know them.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// Load the filter into the calling process.
    pub fn load(&self) -> Result<(), SeccompError> {
        tracing::debug!("loading seccomp filter");
        self.ctx.load().map_err(|source| SeccompError::Load {
            source,
            hint: load_hint(),
        })?;
        tracing::debug!("seccomp filter loaded");
        Ok(())
    }
}

/// Why loading may have failed, when the usual cause applies.
fn load_hint() -> &'static str {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let nnp = status
        .lines()
        .any(|l| l.strip_prefix("NoNewPrivs:").map(str::trim) == Some("1"));
    let sys_admin = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(true);
    if nnp || sys_admin {
        ""
    } else {
        " (without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before \
         dropping capabilities, or set process.noNewPrivileges)"
    }
}
