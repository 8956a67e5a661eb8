//! The bind and volume mounts a container asks for, gathered for the engine to resolve into
//! [`ResolvedMount`](super::ResolvedMount)s: `HostConfig.Binds` (`-v`), `HostConfig.Mounts`
//! of type bind or volume (`--mount`), and `Config.Volumes` that nothing else covers
//! (anonymous volumes, from the user or the image). Tmpfs mounts are not listed: `build_spec`
//! takes them from the configuration directly.

use std::collections::BTreeSet;

use super::config::{ContainerConfig, Mount, MountType};
use super::parse::{parse_volume, validate_mount, volume_spec_to_mount, ParseError};

fn clean(target: &str) -> String {
    let t = target.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

/// Every bind/volume mount `cfg` asks for, targets cleaned of trailing slashes. A volume
/// with an empty `source` is anonymous: the engine creates it. Two mounts on one target are
/// refused as Docker refuses them (`Duplicate mount point: /data`).
pub fn mount_requests(cfg: &ContainerConfig) -> Result<Vec<Mount>, ParseError> {
    let mut out: Vec<Mount> = Vec::new();
    let mut seen: BTreeSet<String> = cfg.host_config.tmpfs.keys().map(|t| clean(t)).collect();
    let mut push = |mut m: Mount, out: &mut Vec<Mount>| -> Result<(), ParseError> {
        m.target = clean(&m.target);
        if !seen.insert(m.target.clone()) {
            return Err(ParseError {
                flag: "--mount",
                message: format!("Duplicate mount point: {}", m.target),
            });
        }
        if m.kind != MountType::Tmpfs {
            out.push(m);
        }
        Ok(())
    };
    for b in &cfg.host_config.binds {
        push(volume_spec_to_mount(&parse_volume(b)?), &mut out)?;
    }
    for m in &cfg.host_config.mounts {
        validate_mount(m)?;
        push(m.clone(), &mut out)?;
    }
    for target in cfg.config.volumes.keys() {
        let t = clean(target);
        if !t.starts_with('/') {
            return Err(ParseError {
                flag: "--volume",
                message: format!("invalid mount path: '{target}' mount path must be absolute"),
            });
        }
        if out.iter().any(|m| m.target == t)
            || cfg.host_config.tmpfs.keys().any(|k| clean(k) == t)
            || cfg.host_config.mounts.iter().any(|m| clean(&m.target) == t)
        {
            continue;
        }
        push(
            Mount {
                kind: MountType::Volume,
                target: t,
                ..Default::default()
            },
            &mut out,
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_mounts_and_anonymous_volumes() {
        let mut c = ContainerConfig::default();
        c.host_config.binds = vec!["/h:/data/:ro".into(), "cache:/cache".into(), "/anon".into()];
        c.host_config.mounts = vec![
            crate::spec::parse::parse_mount("type=bind,src=/s,dst=/s").unwrap(),
            crate::spec::parse::parse_mount("type=tmpfs,dst=/t").unwrap(),
        ];
        c.host_config.tmpfs.insert("/run".into(), String::new());
        for v in ["/data", "/run", "/img", "/t"] {
            c.config.volumes.insert(v.into(), Default::default());
        }
        let m = mount_requests(&c).unwrap();
        let got: Vec<(MountType, &str, &str, bool)> = m
            .iter()
            .map(|m| (m.kind, m.source.as_str(), m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            got,
            [
                (MountType::Bind, "/h", "/data", true),
                (MountType::Volume, "cache", "/cache", false),
                (MountType::Volume, "", "/anon", false),
                (MountType::Bind, "/s", "/s", false),
                (MountType::Volume, "", "/img", false),
            ]
        );
    }

    #[test]
    fn duplicates_and_bad_specs() {
        let mut c = ContainerConfig::default();
        c.host_config.binds = vec!["/a:/x".into(), "/b:/x/".into()];
        assert_eq!(
            mount_requests(&c).unwrap_err().to_string(),
            "Duplicate mount point: /x"
        );
        c.host_config.binds = vec!["/a:/x".into()];
        c.host_config.tmpfs.insert("/x".into(), String::new());
        assert!(mount_requests(&c).is_err());
        let mut c = ContainerConfig::default();
        c.host_config.binds = vec!["/a:rel".into()];
        assert!(mount_requests(&c).is_err());
        let mut c = ContainerConfig::default();
        c.config.volumes.insert("rel".into(), Default::default());
        assert_eq!(
            mount_requests(&c).unwrap_err().to_string(),
            "invalid mount path: 'rel' mount path must be absolute"
        );
    }
}
