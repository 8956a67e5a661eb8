//! seccomp filters from the OCI spec via libseccomp.
//!
//! [`compile`] validates `linux.seccomp`, builds a libseccomp filter context and
//! has libseccomp generate the BPF program from it (nothing is filtered yet, and it
//! needs no privilege, so `spec` calls it when loading a bundle to report profile
//! errors early); [`Filter::load`] installs that program in the calling process with
//! seccomp(2). [`cache`] keeps generated programs on disk, so that starting another
//! container with the same profile does not run libseccomp at all: building and
//! generating Docker's default profile took about 13% of the CPU time of a whole
//! `coracle run --rm` (perf record).
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

pub mod cache;
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
    #[error("seccomp: generate the BPF program: {0}")]
    Export(String),
    #[error(
        "seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}, {len} instructions): {source}{hint}"
    )]
    Load {
        flags: u32,
        len: usize,
        source: nix::errno::Errno,
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

/// A compiled, not yet loaded filter: the BPF program and the seccomp(2) flags.
#[derive(Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* from the profile's `flags`.
    flags: u32,
    skipped: Vec<String>,
}

// The kernel's SECCOMP_FILTER_FLAG_* values (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
/// BPF_MAXINSNS: the kernel refuses longer programs.
const MAX_INSNS: usize = 4096;

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

/// Validate the profile and compile it to a BPF program (no syscall is filtered yet).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let (ctx, flags, skipped) = context(seccomp)?;
    let program = export(&ctx)?;
    Ok(Filter {
        program,
        flags,
        skipped,
    })
}

/// The libseccomp filter context for a profile, its seccomp(2) flags, and the syscall
/// names libseccomp does not know.
fn context(seccomp: &LinuxSeccomp) -> Result<(ScmpFilterContext, u32, Vec<String>), SeccompError> {
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

    let mut flags = 0;
    for (i, flag) in seccomp.flags().iter().flatten().enumerate() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    field: format!("flags[{i}]"),
                    value: flag.to_string(),
                    reason: "only meaningful with SCMP_ACT_NOTIFY, which Coracle does not support",
                });
            }
        };
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
    Ok((ctx, flags, skipped))
}

/// libseccomp's BPF program for `ctx`, as the kernel's instructions. libseccomp 2.5 (this
/// machine's) exports only to a file descriptor: a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    use std::io::{Read, Seek};
    let err = |what: &str, e: &dyn std::fmt::Display| SeccompError::Export(format!("{what}: {e}"));
    let fd = crate::sys::raw::memfd_create_sealable("coracle-seccomp")
        .map_err(|e| err("memfd_create", &e))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file)
        .map_err(|e| err("seccomp_export_bpf", &e))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| err("reading the exported program", &e))?;
    program_from_bytes(&bytes).ok_or_else(|| {
        SeccompError::Export(format!(
            "libseccomp exported {} bytes, not 1 to {MAX_INSNS} instructions of 8 bytes",
            bytes.len()
        ))
    })
}

/// Instructions from their in-memory form (code: u16, jt: u8, jf: u8, k: u32, native
/// byte order); `None` unless it is 1 to [`MAX_INSNS`] whole instructions.
fn program_from_bytes(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) || bytes.len() / 8 > MAX_INSNS {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|b| libc::sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect(),
    )
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Filter {
    /// Syscall names that were skipped because libseccomp does not know them.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// Load the filter into the calling process (seccomp(2), SECCOMP_SET_MODE_FILTER).
    pub fn load(&self) -> Result<(), SeccompError> {
        tracing::debug!(instructions = self.program.len(), "loading seccomp filter");
        crate::sys::raw::seccomp_set_mode_filter(self.flags, &self.program).map_err(|source| {
            SeccompError::Load {
                flags: self.flags,
                len: self.program.len(),
                source,
                hint: load_hint(),
            }
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
