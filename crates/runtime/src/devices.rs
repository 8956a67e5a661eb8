//! The device cgroup allowlist the runtime adds after the spec's own rules: the
//! default devices every container gets (/dev/null, zero, full, random, urandom,
//! tty, ptmx and the pty slaves), and the spec's `linux.devices`. Without these a
//! spec that denies all devices (as `runc spec` writes) would leave the container
//! unable to open /dev/null or a terminal.

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources, Spec,
};

/// (type, major, minor) of the default devices; minor None = every minor.
const DEFAULTS: [(LinuxDeviceType, i64, Option<i64>); 9] = [
    (LinuxDeviceType::C, 1, Some(3)), // null
    (LinuxDeviceType::C, 1, Some(5)), // zero
    (LinuxDeviceType::C, 1, Some(7)), // full
    (LinuxDeviceType::C, 1, Some(8)), // random
    (LinuxDeviceType::C, 1, Some(9)), // urandom
    (LinuxDeviceType::C, 5, Some(0)), // tty
    (LinuxDeviceType::C, 5, Some(1)), // console
    (LinuxDeviceType::C, 5, Some(2)), // ptmx
    (LinuxDeviceType::C, 136, None),  // pts/*
];

fn allow(typ: LinuxDeviceType, major: i64, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .major(major)
        .access("rwm");
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().expect("all fields set")
}

/// `resources` with the default devices and the spec's devices appended to the
/// device rules (later rules win in the kernel's evaluation).
pub fn with_default_devices(spec: &Spec, resources: &LinuxResources) -> LinuxResources {
    let mut rules = resources.devices().clone().unwrap_or_default();
    rules.extend(DEFAULTS.iter().map(|(t, maj, min)| allow(*t, *maj, *min)));
    let spec_devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for d in spec_devices {
        rules.push(allow(d.typ(), d.major(), Some(d.minor())));
    }
    let mut out = resources.clone();
    out.set_devices(Some(rules));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec_rules() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let mut r = LinuxResources::default();
        r.set_devices(Some(vec![deny_all.clone()]));
        let out = with_default_devices(&Spec::default(), &r);
        let rules = out.devices().clone().unwrap();
        assert_eq!(rules[0], deny_all, "the spec's rules come first");
        assert!(rules
            .iter()
            .any(|d| d.major() == Some(5) && d.minor() == Some(2) && d.allow()));
        assert!(rules
            .iter()
            .any(|d| d.major() == Some(136) && d.minor().is_none()));
    }
}
