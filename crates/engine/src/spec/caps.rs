//! Capabilities: names and numbers, the host's bounding set, Docker's default set and
//! `--cap-add`/`--cap-drop`/`--privileged` combined into the set a container gets.

use std::fmt;

use super::SpecError;

/// Kernel capability names by number (`CAP_` left off), 0 to 40.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set for a container.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capabilities as a bit mask (bit n = capability n), like `/proc/*/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Every capability this table knows.
    pub fn all() -> CapSet {
        CapSet((1u64 << NAMES.len()) - 1)
    }

    pub fn docker_default() -> CapSet {
        DOCKER_DEFAULT
            .iter()
            .map(|n| number(n).expect("known name"))
            .collect()
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn insert(&mut self, cap: u32) {
        self.0 |= 1 << cap;
    }

    pub fn remove(&mut self, cap: u32) {
        self.0 &= !(1 << cap);
    }

    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// `CAP_`-prefixed names in number order (capabilities above 40 are left out).
    pub fn names(self) -> Vec<String> {
        (0..NAMES.len() as u32)
            .filter(|c| self.contains(*c))
            .map(|c| format!("CAP_{}", NAMES[c as usize]))
            .collect()
    }
}

impl FromIterator<u32> for CapSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut s = CapSet::default();
        for c in iter {
            s.insert(c);
        }
        s
    }
}

impl fmt::Display for CapSet {
    /// The `/proc/*/status` form: 16 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The number of a capability name without `CAP_` (upper case).
fn number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// A user-typed capability name: case-insensitive, with or without `CAP_`; `ALL` kept.
/// Returns `"ALL"` or the name without prefix.
pub fn normalize(name: &str) -> Result<String, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    match number(bare) {
        Some(_) => Ok(bare.to_string()),
        None => Err(SpecError::UnknownCapability(format!("CAP_{bare}"))),
    }
}

/// The `CapBnd:` line of a `/proc/<pid>/status` text.
pub fn parse_cap_bnd(status: &str) -> Option<CapSet> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .map(CapSet)
}

/// The calling process's bounding set (what `--privileged` can grant at most).
pub fn host_bounding_set() -> Result<CapSet, SpecError> {
    let path = "/proc/self/status";
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        what: "read the capability bounding set",
        path: path.into(),
        source,
    })?;
    parse_cap_bnd(&text).ok_or(SpecError::NoCapBnd)
}

/// What the container gets: the privileged set, or Docker's defaults with `adds` and
/// `drops` applied (`ALL` in adds = every capability except the drops; `ALL` in drops = only
/// the adds), always within `bounding`. The second value lists what was asked for but left
/// out because the bounding set lacks it.
pub fn effective_caps(
    privileged: bool,
    adds: &[String],
    drops: &[String],
    bounding: CapSet,
) -> Result<(CapSet, CapSet), SpecError> {
    let adds: Vec<String> = adds
        .iter()
        .map(|n| normalize(n))
        .collect::<Result<_, _>>()?;
    let drops: Vec<String> = drops
        .iter()
        .map(|n| normalize(n))
        .collect::<Result<_, _>>()?;
    let set_of =
        |names: &[String]| -> CapSet { names.iter().filter_map(|n| number(n)).collect::<CapSet>() };
    let wanted = if privileged {
        CapSet::all()
    } else if adds.iter().any(|a| a == "ALL") {
        CapSet(CapSet::all().0 & !set_of(&drops).0)
    } else if drops.iter().any(|d| d == "ALL") {
        set_of(&adds)
    } else {
        let mut s = CapSet(CapSet::docker_default().0 & !set_of(&drops).0);
        s.0 |= set_of(&adds).0;
        s
    };
    let granted = wanted.intersect(bounding);
    let left_out = CapSet(wanted.0 & !bounding.0);
    // Asking for everything (privileged, ALL) is not a request for a specific capability.
    let left_out = if privileged || adds.iter().any(|a| a == "ALL") {
        CapSet::default()
    } else {
        left_out
    };
    Ok((granted, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const HOST: CapSet = CapSet(0x0000_01ff_feff_ffff);

    #[test]
    fn default_set_is_dockers() {
        assert_eq!(CapSet::docker_default().to_string(), "00000000a80425fb");
        let (g, out) = effective_caps(false, &[], &[], HOST).unwrap();
        assert_eq!(g, CapSet::docker_default());
        assert_eq!(out, CapSet::default());
    }

    #[test]
    fn add_and_drop_any_spelling() {
        let (g, _) = effective_caps(
            false,
            &s(&["net_admin", "CAP_SYS_PTRACE"]),
            &s(&["cap_chown", "Kill"]),
            HOST,
        )
        .unwrap();
        assert!(g.contains(12) && g.contains(19));
        assert!(!g.contains(0) && !g.contains(5));
        assert!(g.contains(1));
    }

    #[test]
    fn all_forms() {
        let (g, _) = effective_caps(false, &s(&["ALL"]), &s(&["NET_ADMIN"]), HOST).unwrap();
        assert_eq!(g, CapSet(HOST.0 & !(1 << 12)));
        let (g, _) = effective_caps(false, &s(&["KILL"]), &s(&["all"]), HOST).unwrap();
        assert_eq!(g.names(), ["CAP_KILL"]);
        let (g, _) = effective_caps(false, &[], &s(&["ALL"]), HOST).unwrap();
        assert_eq!(g, CapSet::default());
    }

    #[test]
    fn privileged_is_the_bounding_set() {
        let (g, out) = effective_caps(true, &[], &[], HOST).unwrap();
        assert_eq!(g, HOST);
        assert!(!g.contains(24), "no CAP_SYS_RESOURCE here");
        assert_eq!(out, CapSet::default());
    }

    #[test]
    fn a_capability_the_host_lacks_is_reported() {
        let (g, out) = effective_caps(false, &s(&["SYS_RESOURCE"]), &[], HOST).unwrap();
        assert!(!g.contains(24));
        assert_eq!(out.names(), ["CAP_SYS_RESOURCE"]);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = effective_caps(false, &s(&["FLY"]), &[], HOST).unwrap_err();
        assert_eq!(e.to_string(), "unknown capability: \"CAP_FLY\"");
    }

    #[test]
    fn cap_bnd_from_status() {
        let st = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(parse_cap_bnd(st), Some(HOST));
        assert_eq!(parse_cap_bnd("Name: x\n"), None);
    }
}
