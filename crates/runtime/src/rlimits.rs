//! rlimits and oom_score_adj of the container process.
//!
//! Both run in the container's init before the uid change. Raising a hard rlimit,
//! or lowering oom_score_adj below the value the process started from, needs
//! CAP_SYS_RESOURCE; on hosts whose bounding set lacks it (as on this project's CI
//! machines) those requests fail with EPERM/EACCES, and the errors say so instead of
//! printing a bare errno.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::resource::Resource;
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("process.rlimits: {name} is listed twice")]
    Duplicate { name: &'static str },
    #[error("process.rlimits: {name} soft={soft} is above hard={hard}")]
    SoftAboveHard {
        name: &'static str,
        soft: u64,
        hard: u64,
    },
    #[error("setrlimit {name} soft={soft} hard={hard}: {errno}{hint}", hint = Hint(*errno, *current_hard))]
    Set {
        name: &'static str,
        soft: u64,
        hard: u64,
        current_hard: Option<u64>,
        errno: Errno,
    },
    #[error("process.oomScoreAdj {value}: out of range -1000..=1000")]
    OomScoreRange { value: i32 },
    #[error("write {value} to {path}: {source}{hint}", hint = OomHint(source.raw_os_error(), current))]
    OomScoreAdj {
        path: PathBuf,
        value: i32,
        current: Option<i32>,
        source: std::io::Error,
    },
}

/// Explains an EPERM from setrlimit.
struct Hint(Errno, Option<u64>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint(Errno::EPERM, current) => {
                write!(
                    f,
                    " — raising a hard limit needs CAP_SYS_RESOURCE, {}",
                    lacks()
                )?;
                if let Some(hard) = current {
                    write!(f, " (current hard limit {})", Limit(*hard))?;
                }
                Ok(())
            }
            // nix's Errno already displays as "EINVAL: Invalid argument".
            Hint(_, _) => Ok(()),
        }
    }
}

/// Explains an EPERM/EACCES from writing oom_score_adj.
struct OomHint<'a>(Option<i32>, &'a Option<i32>);

impl fmt::Display for OomHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !matches!(self.0, Some(libc::EPERM) | Some(libc::EACCES)) {
            return Ok(());
        }
        write!(
            f,
            " — lowering oom_score_adj below the value inherited from the parent"
        )?;
        if let Some(current) = self.1 {
            write!(f, " ({current})")?;
        }
        write!(f, " needs CAP_SYS_RESOURCE, {}", lacks())
    }
}

/// Which of the two reasons for lacking CAP_SYS_RESOURCE applies here.
fn lacks() -> &'static str {
    match caps::has_cap(
        None,
        caps::CapSet::Bounding,
        caps::Capability::CAP_SYS_RESOURCE,
    ) {
        Ok(false) => "which this host's bounding set lacks",
        _ => "which this process lacks",
    }
}

/// An rlimit value, with RLIM_INFINITY spelled out.
struct Limit(u64);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == libc::RLIM_INFINITY {
            f.write_str("unlimited")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The kernel resource and its `RLIMIT_*` name for an OCI rlimit type.
pub fn resource(typ: PosixRlimitType) -> (Resource, &'static str) {
    use PosixRlimitType as T;
    match typ {
        T::RlimitCpu => (Resource::RLIMIT_CPU, "RLIMIT_CPU"),
        T::RlimitFsize => (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        T::RlimitData => (Resource::RLIMIT_DATA, "RLIMIT_DATA"),
        T::RlimitStack => (Resource::RLIMIT_STACK, "RLIMIT_STACK"),
        T::RlimitCore => (Resource::RLIMIT_CORE, "RLIMIT_CORE"),
        T::RlimitRss => (Resource::RLIMIT_RSS, "RLIMIT_RSS"),
        T::RlimitNproc => (Resource::RLIMIT_NPROC, "RLIMIT_NPROC"),
        T::RlimitNofile => (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        T::RlimitMemlock => (Resource::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        T::RlimitAs => (Resource::RLIMIT_AS, "RLIMIT_AS"),
        T::RlimitLocks => (Resource::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        T::RlimitSigpending => (Resource::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        T::RlimitMsgqueue => (Resource::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        T::RlimitNice => (Resource::RLIMIT_NICE, "RLIMIT_NICE"),
        T::RlimitRtprio => (Resource::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        T::RlimitRttime => (Resource::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Check the whole list (no duplicates, soft <= hard) without touching the process.
pub fn validate(rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    let mut seen = Vec::with_capacity(rlimits.len());
    for rlimit in rlimits {
        let (_, name) = resource(rlimit.typ());
        if seen.contains(&name) {
            return Err(RlimitError::Duplicate { name });
        }
        seen.push(name);
        if rlimit.soft() > rlimit.hard() {
            return Err(RlimitError::SoftAboveHard {
                name,
                soft: rlimit.soft(),
                hard: rlimit.hard(),
            });
        }
    }
    Ok(())
}

/// Validate the list, then setrlimit each entry in order.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    validate(rlimits)?;
    for rlimit in rlimits {
        let (resource, name) = resource(rlimit.typ());
        let (soft, hard) = (rlimit.soft(), rlimit.hard());
        tracing::debug!(name, soft, hard, "setrlimit");
        if let Err(errno) = nix::sys::resource::setrlimit(resource, soft, hard) {
            let current_hard = nix::sys::resource::getrlimit(resource).ok().map(|(_, h)| h);
            return Err(RlimitError::Set {
                name,
                soft,
                hard,
                current_hard,
                errno,
            });
        }
    }
    Ok(())
}

const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// Write `value` to /proc/self/oom_score_adj.
pub fn set_oom_score_adj(value: i32) -> Result<(), RlimitError> {
    write_oom_score_adj(Path::new(OOM_SCORE_ADJ), value)
}

fn write_oom_score_adj(path: &Path, value: i32) -> Result<(), RlimitError> {
    if !(-1000..=1000).contains(&value) {
        return Err(RlimitError::OomScoreRange { value });
    }
    tracing::debug!(value, path = %path.display(), "writing oom_score_adj");
    if let Err(source) = std::fs::write(path, value.to_string()) {
        let current = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        return Err(RlimitError::OomScoreAdj {
            path: path.to_owned(),
            value,
            current,
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::test_support::{require_root, run_in_child};
    use oci_spec::runtime::PosixRlimitBuilder;

    fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    #[test]
    fn names_match_the_kernel_resources() {
        assert_eq!(
            resource(PosixRlimitType::RlimitNofile),
            (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE")
        );
        assert_eq!(resource(PosixRlimitType::RlimitAs).1, "RLIMIT_AS");
        assert_eq!(
            resource(PosixRlimitType::RlimitRttime).0,
            Resource::RLIMIT_RTTIME
        );
        // The name is the OCI spelling of the type.
        for typ in [PosixRlimitType::RlimitCpu, PosixRlimitType::RlimitMsgqueue] {
            let json = serde_json::to_string(&typ).unwrap();
            assert_eq!(json.trim_matches('"'), resource(typ).1);
        }
    }

    #[test]
    fn validate_refuses_duplicates_and_soft_above_hard() {
        let err = validate(&[
            rlimit(PosixRlimitType::RlimitNofile, 10, 10),
            rlimit(PosixRlimitType::RlimitNofile, 20, 20),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.rlimits: RLIMIT_NOFILE is listed twice"
        );
        let err = validate(&[rlimit(PosixRlimitType::RlimitCore, 2, 1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.rlimits: RLIMIT_CORE soft=2 is above hard=1"
        );
    }

    #[test]
    fn eperm_message_explains_cap_sys_resource() {
        let err = RlimitError::Set {
            name: "RLIMIT_NOFILE",
            soft: 1,
            hard: 30000,
            current_hard: Some(20000),
            errno: Errno::EPERM,
        };
        let msg = err.to_string();
        assert!(
            msg.starts_with("setrlimit RLIMIT_NOFILE soft=1 hard=30000: EPERM"),
            "{msg}"
        );
        assert!(
            msg.contains("CAP_SYS_RESOURCE") && msg.ends_with("(current hard limit 20000)"),
            "{msg}"
        );
    }

    #[test]
    fn oom_score_adj_range_and_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oom_score_adj");
        assert!(matches!(
            write_oom_score_adj(&path, 1001),
            Err(RlimitError::OomScoreRange { .. })
        ));
        write_oom_score_adj(&path, -5).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "-5");
        let err = write_oom_score_adj(&dir.path().join("no/such"), 3).unwrap_err();
        assert!(err.to_string().starts_with("write 3 to "), "{err}");
    }

    #[test]
    fn nofile_lowered_then_raise_above_hard_is_explained() {
        if !require_root("rlimits::nofile_lowered_then_raise_above_hard_is_explained") {
            return;
        }
        let lower = [rlimit(PosixRlimitType::RlimitNofile, 100, 200)];
        let raise = [rlimit(PosixRlimitType::RlimitNofile, 100, 300)];
        let code = run_in_child(|| {
            if apply(&lower).is_err() {
                return 1;
            }
            if nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE) != Ok((100, 200)) {
                return 2;
            }
            // Raising the hard limit needs CAP_SYS_RESOURCE in the effective set:
            // drop it from there (it may not even be in the bounding set).
            let _ = caps::drop(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            );
            match apply(&raise) {
                Err(
                    e @ RlimitError::Set {
                        errno: Errno::EPERM,
                        current_hard: Some(200),
                        ..
                    },
                ) => {
                    let msg = e.to_string();
                    if msg.contains("CAP_SYS_RESOURCE") && msg.contains("current hard limit 200") {
                        0
                    } else {
                        4
                    }
                }
                _ => 3,
            }
        });
        assert_eq!(code, 0, "child exit code {code}");
    }

    #[test]
    fn oom_score_adj_lowering_is_explained() {
        if !require_root("rlimits::oom_score_adj_lowering_is_explained") {
            return;
        }
        // The kernel refuses values below the minimum recorded when a process with
        // CAP_SYS_RESOURCE last wrote it (normally 0, inherited), unless the writer
        // has CAP_SYS_RESOURCE in its effective set.
        let code = run_in_child(|| {
            let _ = caps::drop(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            );
            match set_oom_score_adj(-1000) {
                Err(e @ RlimitError::OomScoreAdj { .. }) => {
                    if e.to_string().contains("needs CAP_SYS_RESOURCE") {
                        0
                    } else {
                        3
                    }
                }
                Ok(()) => 10,
                Err(_) => 2,
            }
        });
        if code == 10 {
            eprintln!(
                "oom_score_adj_lowering_is_explained: the inherited minimum is already -1000"
            );
            return;
        }
        assert_eq!(code, 0, "child exit code {code}");
    }
}
