//! Capability sets (bounding, effective, permitted, inheritable, ambient).
//!
//! Two calls, on either side of the uid change in `user::set_identity`:
//! - [`drop_bounding`] while still root (dropping from the bounding set needs
//!   CAP_SETPCAP in the effective set);
//! - [`apply`] after it: setresuid away from 0 clears the effective set (the
//!   permitted set survives thanks to PR_SET_KEEPCAPS), so the container's sets are
//!   written afterwards.
//!
//! A requested capability that the process's bounding set lacks cannot be granted
//! by anyone (on this project's CI machines CAP_SYS_RESOURCE is missing from every
//! bounding set). Like `--privileged` on such hosts, the request is intersected
//! with the bounding set and each capability left out is logged with a warning,
//! rather than failing the container. [`compute`] is the pure part of that logic.

use std::fmt;

use caps::errors::CapsError;
use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("process.capabilities.{set}: {name:?} is not a capability this runtime knows")]
    Unknown { set: &'static str, name: String },
    #[error("capabilities: read the {set} set: {source}")]
    Read {
        set: &'static str,
        source: CapsError,
    },
    #[error("capabilities: {op} {set} {caps}: {source}")]
    Apply {
        op: &'static str,
        set: &'static str,
        caps: Names,
        source: CapsError,
    },
}

/// A set of capabilities displayed in kernel order, e.g. `[CAP_KILL, CAP_NET_BIND_SERVICE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(pub Vec<Cap>);

impl Names {
    fn of(set: &CapsHashSet) -> Self {
        let mut caps: Vec<Cap> = set.iter().copied().collect();
        caps.sort_by_key(|c| c.index());
        Names(caps)
    }
}

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, cap) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{cap}")?;
        }
        f.write_str("]")
    }
}

/// The five sets as the process will get them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// Why a requested capability was left out of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Not in the caller's bounding set: it can never be gained.
    NotInBounding,
    /// An effective capability that is not permitted (the kernel refuses that).
    NotPermitted,
    /// An ambient capability must be both permitted and inheritable.
    NotPermittedAndInheritable,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NotInBounding => "not in this process's bounding set",
            SkipReason::NotPermitted => "not in the permitted set",
            SkipReason::NotPermittedAndInheritable => "not in both permitted and inheritable sets",
        })
    }
}

/// A requested capability that [`compute`] left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub set: &'static str,
    pub cap: Cap,
    pub reason: SkipReason,
}

impl Skipped {
    fn warn(&self) {
        tracing::warn!(
            set = self.set,
            capability = %self.cap,
            "requested capability skipped: {}",
            self.reason
        );
    }
}

/// Convert one OCI set (absent means empty) to the `caps` crate's type, by name.
fn convert(set: &'static str, caps: Option<&Capabilities>) -> Result<CapsHashSet, CapabilityError> {
    caps.into_iter()
        .flatten()
        .map(|c| {
            let name = format!("CAP_{c}");
            name.parse::<Cap>()
                .map_err(|_| CapabilityError::Unknown { set, name })
        })
        .collect()
}

/// Compute the sets to install from the spec and the caller's bounding set
/// (`available`): every set is intersected with `available`, the effective set with
/// the permitted set, and the ambient set with permitted ∩ inheritable. Returns the
/// sets and what was left out, in a stable order.
pub fn compute(
    spec: &LinuxCapabilities,
    available: &CapsHashSet,
) -> Result<(CapSets, Vec<Skipped>), CapabilityError> {
    let mut skipped = Vec::new();
    let mut keep = |set: &'static str, wanted: CapsHashSet, allowed: &CapsHashSet, reason| {
        let mut out = CapsHashSet::new();
        for cap in Names::of(&wanted).0 {
            if allowed.contains(&cap) {
                out.insert(cap);
            } else {
                skipped.push(Skipped { set, cap, reason });
            }
        }
        out
    };
    let in_bounding = SkipReason::NotInBounding;
    let bounding = keep(
        "bounding",
        convert("bounding", spec.bounding().as_ref())?,
        available,
        in_bounding,
    );
    let permitted = keep(
        "permitted",
        convert("permitted", spec.permitted().as_ref())?,
        available,
        in_bounding,
    );
    let inheritable = keep(
        "inheritable",
        convert("inheritable", spec.inheritable().as_ref())?,
        available,
        in_bounding,
    );
    let effective = keep(
        "effective",
        convert("effective", spec.effective().as_ref())?,
        available,
        in_bounding,
    );
    let effective = keep("effective", effective, &permitted, SkipReason::NotPermitted);
    let ambient = keep(
        "ambient",
        convert("ambient", spec.ambient().as_ref())?,
        available,
        in_bounding,
    );
    let both: CapsHashSet = permitted.intersection(&inheritable).copied().collect();
    let ambient = keep(
        "ambient",
        ambient,
        &both,
        SkipReason::NotPermittedAndInheritable,
    );
    Ok((
        CapSets {
            bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        },
        skipped,
    ))
}

fn read(set: CapSet, name: &'static str) -> Result<CapsHashSet, CapabilityError> {
    caps::read(None, set).map_err(|source| CapabilityError::Read { set: name, source })
}

/// Drop every capability not in `caps.bounding` from the bounding set. Runs while
/// still privileged (before the uid change).
pub fn drop_bounding(spec: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let current = read(CapSet::Bounding, "bounding")?;
    let (sets, skipped) = compute(spec, &current)?;
    // The other sets' skips are reported by `apply`.
    skipped
        .iter()
        .filter(|s| s.set == "bounding")
        .for_each(Skipped::warn);
    let to_drop: CapsHashSet = current.difference(&sets.bounding).copied().collect();
    tracing::debug!(drop = %Names::of(&to_drop), keep = %Names::of(&sets.bounding), "dropping from bounding set");
    for cap in Names::of(&to_drop).0 {
        caps::drop(None, CapSet::Bounding, cap).map_err(|source| CapabilityError::Apply {
            op: "drop from",
            set: "bounding",
            caps: Names(vec![cap]),
            source,
        })?;
    }
    tracing::debug!("bounding set dropped");
    Ok(())
}

fn set(cset: CapSet, name: &'static str, value: &CapsHashSet) -> Result<(), CapabilityError> {
    tracing::debug!(set = name, caps = %Names::of(value), "capset");
    caps::set(None, cset, value).map_err(|source| CapabilityError::Apply {
        op: "set",
        set: name,
        caps: Names::of(value),
        source,
    })
}

/// Set effective, permitted, inheritable and ambient sets. Runs after the uid change.
pub fn apply(spec: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let bounding = read(CapSet::Bounding, "bounding")?;
    let (sets, skipped) = compute(spec, &bounding)?;
    skipped
        .iter()
        .filter(|s| s.set != "bounding")
        .for_each(Skipped::warn);

    // Each capset(2) call keeps the two other sets, and the kernel checks the
    // result, so the order matters:
    // 1. inheritable first, while the permitted (and, for root, effective) set is
    //    still wide: new inheritable caps must come from the old permitted set
    //    (or the bounding set with CAP_SETPCAP effective).
    set(CapSet::Inheritable, "inheritable", &sets.inheritable)?;
    // 2. effective next: it must stay within the permitted set, which is still
    //    the old, larger one.
    set(CapSet::Effective, "effective", &sets.effective)?;
    // 3. permitted last of the three: shrinking it is always allowed, and the new
    //    effective set is already a subset of it.
    set(CapSet::Permitted, "permitted", &sets.permitted)?;
    // 4. ambient: each raised cap must be in permitted ∩ inheritable, which now
    //    hold their final values. Clear first so nothing inherited remains.
    tracing::debug!(caps = %Names::of(&sets.ambient), "setting ambient set");
    caps::clear(None, CapSet::Ambient).map_err(|source| CapabilityError::Apply {
        op: "clear",
        set: "ambient",
        caps: Names(Vec::new()),
        source,
    })?;
    for cap in Names::of(&sets.ambient).0 {
        caps::raise(None, CapSet::Ambient, cap).map_err(|source| CapabilityError::Apply {
            op: "raise in",
            set: "ambient",
            caps: Names(vec![cap]),
            source,
        })?;
    }
    tracing::debug!("capabilities set");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::test_support::{proc_status, require_root, run_in_child};
    use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, UserBuilder};

    fn oci(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    fn set_of(caps: &[Cap]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    /// This project's CI hosts: every capability but CAP_SYS_RESOURCE.
    fn host_bounding() -> CapsHashSet {
        let mut all = caps::all();
        all.remove(&Cap::CAP_SYS_RESOURCE);
        all
    }

    #[test]
    fn caps_absent_from_bounding_are_skipped_not_fatal() {
        let wanted = oci(&[Capability::Kill, Capability::SysResource]);
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(wanted.clone())
            .effective(wanted.clone())
            .permitted(wanted.clone())
            .inheritable(wanted.clone())
            .ambient(wanted)
            .build()
            .unwrap();
        let (sets, skipped) = compute(&spec, &host_bounding()).unwrap();
        let kill = set_of(&[Cap::CAP_KILL]);
        assert_eq!(sets.bounding, kill);
        assert_eq!(sets.effective, kill);
        assert_eq!(sets.permitted, kill);
        assert_eq!(sets.inheritable, kill);
        assert_eq!(sets.ambient, kill);
        let sets_skipped: Vec<&str> = skipped.iter().map(|s| s.set).collect();
        assert_eq!(
            sets_skipped,
            [
                "bounding",
                "permitted",
                "inheritable",
                "effective",
                "ambient"
            ]
        );
        assert!(skipped
            .iter()
            .all(|s| s.cap == Cap::CAP_SYS_RESOURCE && s.reason == SkipReason::NotInBounding));
    }

    #[test]
    fn effective_and_ambient_are_limited_by_permitted_and_inheritable() {
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(oci(&[
                Capability::Kill,
                Capability::Chown,
                Capability::NetRaw,
            ]))
            .permitted(oci(&[Capability::Kill, Capability::NetRaw]))
            .inheritable(oci(&[Capability::NetRaw]))
            .effective(oci(&[Capability::Kill, Capability::Chown]))
            .ambient(oci(&[Capability::Kill, Capability::NetRaw]))
            .build()
            .unwrap();
        let (sets, skipped) = compute(&spec, &host_bounding()).unwrap();
        assert_eq!(sets.effective, set_of(&[Cap::CAP_KILL]));
        assert_eq!(sets.ambient, set_of(&[Cap::CAP_NET_RAW]));
        assert_eq!(
            skipped,
            [
                Skipped {
                    set: "effective",
                    cap: Cap::CAP_CHOWN,
                    reason: SkipReason::NotPermitted
                },
                Skipped {
                    set: "ambient",
                    cap: Cap::CAP_KILL,
                    reason: SkipReason::NotPermittedAndInheritable
                },
            ]
        );
    }

    #[test]
    fn absent_sets_are_empty_and_default_converts_by_name() {
        // Sets absent from config.json are empty (the builder would fill in defaults).
        let spec: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({ "bounding": ["CAP_KILL"] })).unwrap();
        let (sets, skipped) = compute(&spec, &host_bounding()).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(sets.bounding, set_of(&[Cap::CAP_KILL]));
        assert!(sets.effective.is_empty() && sets.ambient.is_empty());

        let (sets, _) = compute(&LinuxCapabilities::default(), &host_bounding()).unwrap();
        let want = set_of(&[
            Cap::CAP_AUDIT_WRITE,
            Cap::CAP_KILL,
            Cap::CAP_NET_BIND_SERVICE,
        ]);
        assert_eq!(sets.permitted, want);
        assert_eq!(
            Names::of(&want).to_string(),
            "[CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE]"
        );
    }

    #[test]
    fn every_oci_capability_converts() {
        let all: Vec<Capability> = serde_json::from_value(serde_json::json!([
            "CAP_CHOWN",
            "CAP_SYS_ADMIN",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_CHECKPOINT_RESTORE",
            "CAP_AUDIT_READ",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_MAC_ADMIN"
        ]))
        .unwrap();
        let set = convert("effective", Some(&all.iter().copied().collect())).unwrap();
        assert_eq!(set.len(), all.len());
    }

    /// (bounding, effective/permitted/inheritable, ambient) masks read back from
    /// /proc/self/status after the full sequence, as a child exit code.
    #[test]
    fn drop_setuid_and_apply_in_forked_child() {
        if !require_root("capabilities::drop_setuid_and_apply_in_forked_child") {
            return;
        }
        let keep = oci(&[Capability::Kill, Capability::NetBindService]);
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(keep.clone())
            .effective(keep.clone())
            .permitted(keep.clone())
            .inheritable(keep)
            // Requested but absent from the bounding set after the drop: skipped.
            .ambient(oci(&[Capability::NetBindService, Capability::SysResource]))
            .build()
            .unwrap();
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .unwrap();
        // CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10.
        let both = format!("{:016x}", (1u64 << 5) | (1 << 10));
        let nbs = format!("{:016x}", 1u64 << 10);
        let code = run_in_child(|| {
            if drop_bounding(&spec).is_err() {
                return 1;
            }
            if crate::user::set_identity(&user).is_err() {
                return 2;
            }
            if apply(&spec).is_err() {
                return 3;
            }
            for (key, want, code) in [
                ("CapBnd", &both, 4),
                ("CapEff", &both, 5),
                ("CapPrm", &both, 6),
                ("CapInh", &both, 7),
                ("CapAmb", &nbs, 8),
                ("Uid", &"1000 1000 1000 1000".to_string(), 9),
            ] {
                if proc_status(key).as_ref() != Some(want) {
                    return code;
                }
            }
            0
        });
        let what = [
            "ok",
            "drop_bounding",
            "set_identity",
            "apply",
            "CapBnd",
            "CapEff",
            "CapPrm",
        ];
        let what = what
            .get(code as usize)
            .copied()
            .unwrap_or("CapInh/CapAmb/Uid");
        assert_eq!(code, 0, "child failed at {what} (exit code {code})");
    }

    #[test]
    fn apply_as_root_keeps_only_requested_caps() {
        if !require_root("capabilities::apply_as_root_keeps_only_requested_caps") {
            return;
        }
        // Without a uid change: the effective set starts full and must shrink.
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(oci(&[Capability::Chown]))
            .effective(oci(&[Capability::Chown]))
            .permitted(oci(&[Capability::Chown]))
            .build()
            .unwrap();
        let code = run_in_child(|| {
            if drop_bounding(&spec).is_err() || apply(&spec).is_err() {
                return 1;
            }
            let chown = format!("{:016x}", 1u64);
            let zero = format!("{:016x}", 0);
            match (
                proc_status("CapEff"),
                proc_status("CapInh"),
                proc_status("CapAmb"),
            ) {
                (Some(e), Some(i), Some(a)) if e == chown && i == zero && a == zero => 0,
                _ => 2,
            }
        });
        assert_eq!(code, 0, "child exit code {code}");
    }
}
