//! `-v`, `--mount` and `--tmpfs`, and the daemon's checks of `HostConfig.Mounts`.

use std::collections::BTreeMap;

use super::{err, parse_size, ParseError};
use crate::spec::config::{BindOptions, Mount, MountType, TmpfsOptions, VolumeOptions};

/// What a `-v` spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub kind: MountType,
    /// Host path (bind) or volume name; `None` for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    pub propagation: Option<String>,
    pub no_copy: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn valid_mode(mode: &str) -> bool {
    let (mut rw, mut label, mut prop, mut copy) = (0, 0, 0, 0);
    for m in mode.split(',') {
        match m {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            m if PROPAGATIONS.contains(&m) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1
}

/// A local volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `-v src:dst[:mode]` (an absolute `src` is a bind mount, anything else a named volume)
/// or `-v dst` (an anonymous volume). Also parses `HostConfig.Binds` entries.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, ParseError> {
    let flag = "--volume";
    let invalid = || err(flag, format!("invalid volume specification: '{spec}'"));
    if spec.is_empty() {
        return Err(invalid());
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [dst] => (None, *dst, None),
        [src, dst] => {
            if valid_mode(dst) {
                // `dst:mode`: a volume without a source cannot take a mode.
                return Err(invalid());
            }
            (Some(*src), *dst, None)
        }
        [src, dst, mode] => (Some(*src), *dst, Some(*mode)),
        _ => return Err(invalid()),
    };
    if let Some(m) = mode {
        if !valid_mode(m) {
            return Err(err(flag, format!("invalid mode: {m}")));
        }
    }
    if source == Some("") || target.is_empty() {
        return Err(invalid());
    }
    let kind = match source {
        Some(s) if s.starts_with('/') => MountType::Bind,
        _ => MountType::Volume,
    };
    if !target.starts_with('/') {
        return Err(err(
            flag,
            format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid mount path: '{target}' mount path must be absolute",
                kind.as_str()
            ),
        ));
    }
    if target == "/" {
        return Err(err(
            flag,
            format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid specification: destination can't be '/'",
                kind.as_str()
            ),
        ));
    }
    if let (MountType::Volume, Some(name)) = (kind, source) {
        if !valid_volume_name(name) {
            return Err(err(
                flag,
                format!(
                    "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                ),
            ));
        }
    }
    let modes: Vec<&str> = mode.map(|m| m.split(',').collect()).unwrap_or_default();
    if kind == MountType::Bind && modes.contains(&"nocopy") {
        return Err(err(flag, format!("invalid mode: {}", mode.unwrap_or(""))));
    }
    Ok(VolumeSpec {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: modes.contains(&"ro"),
        propagation: modes
            .iter()
            .find(|m| PROPAGATIONS.contains(m))
            .map(|m| m.to_string()),
        no_copy: modes.contains(&"nocopy"),
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ParseError> {
    match value.to_ascii_lowercase().as_str() {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(err("--mount", format!("invalid value for {key}: {value}"))),
    }
}

/// `--mount type=bind|volume|tmpfs,source=...,target=...,readonly,...` (type defaults to
/// volume). Keys: `type`, `source`/`src`, `target`/`destination`/`dst`, `readonly`/`ro`,
/// `bind-propagation`, `volume-nocopy`, `volume-label`, `tmpfs-size`, `tmpfs-mode`,
/// `consistency` (ignored, as on Linux).
pub fn parse_mount(spec: &str) -> Result<Mount, ParseError> {
    let flag = "--mount";
    let mut m = Mount::default();
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || {
            value.ok_or_else(|| {
                err(
                    flag,
                    format!("invalid field '{field}' must be a key=value pair"),
                )
            })
        };
        match key.as_str() {
            "readonly" | "ro" => m.read_only = parse_bool(&key, value.unwrap_or(""))?,
            "volume-nocopy" => {
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .no_copy = parse_bool(&key, value.unwrap_or(""))?
            }
            "type" => {
                m.kind = match need()? {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => return Err(err(flag, format!("invalid value for type: {other}"))),
                }
            }
            "source" | "src" => m.source = need()?.to_string(),
            "target" | "destination" | "dst" => m.target = need()?.to_string(),
            "bind-propagation" => {
                let p = need()?;
                if !PROPAGATIONS.contains(&p) {
                    return Err(err(flag, format!("invalid value for {key}: {p}")));
                }
                m.bind_options = Some(BindOptions {
                    propagation: Some(p.to_string()),
                });
            }
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                m.volume_options
                    .get_or_insert_with(Default::default)
                    .labels
                    .insert(k.to_string(), v.to_string());
            }
            "tmpfs-size" => {
                let v = need()?;
                let size = parse_size(v)
                    .map_err(|_| err(flag, format!("invalid value for {key}: {v}")))?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .size_bytes = size;
            }
            "tmpfs-mode" => {
                let v = need()?;
                let mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| err(flag, format!("invalid value for {key}: {v}")))?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .mode = mode;
            }
            "consistency" => {
                need()?;
            }
            _ => return Err(err(flag, format!("unexpected key '{key}' in '{spec}'"))),
        }
    }
    if m.target.is_empty() {
        return Err(err(flag, "target is required"));
    }
    validate_mount(&m)?;
    Ok(m)
}

/// The checks the daemon makes on a `HostConfig.Mounts` entry.
pub fn validate_mount(m: &Mount) -> Result<(), ParseError> {
    let flag = "--mount";
    let kind = m.kind.as_str();
    let invalid = |reason: String| {
        err(
            flag,
            format!("invalid mount config for type \"{kind}\": {reason}"),
        )
    };
    if !m.target.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount path: '{}' mount path must be absolute",
            m.target
        )));
    }
    match m.kind {
        MountType::Bind => {
            if m.source.is_empty() {
                return Err(invalid("field Source must not be empty".into()));
            }
            if !m.source.starts_with('/') {
                return Err(invalid(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if m.volume_options.is_some() {
                return Err(invalid("field VolumeOptions must not be specified".into()));
            }
            if m.tmpfs_options.is_some() {
                return Err(invalid("field TmpfsOptions must not be specified".into()));
            }
        }
        MountType::Volume => {
            if !m.source.is_empty() && !valid_volume_name(&m.source) {
                return Err(invalid(format!(
                    "\"{}\" includes invalid characters for a local volume name",
                    m.source
                )));
            }
            if m.bind_options.is_some() {
                return Err(invalid("field BindOptions must not be specified".into()));
            }
            if m.tmpfs_options.is_some() {
                return Err(invalid("field TmpfsOptions must not be specified".into()));
            }
        }
        MountType::Tmpfs => {
            if !m.source.is_empty() {
                return Err(invalid("field Source must not be specified".into()));
            }
            if m.bind_options.is_some() {
                return Err(invalid("field BindOptions must not be specified".into()));
            }
            if m.volume_options.is_some() {
                return Err(invalid("field VolumeOptions must not be specified".into()));
            }
        }
    }
    Ok(())
}

/// `--tmpfs /run[:options]` → (target, options) for `HostConfig.Tmpfs`.
pub fn parse_tmpfs(value: &str) -> Result<(String, String), ParseError> {
    let (target, options) = value.split_once(':').unwrap_or((value, ""));
    if !target.starts_with('/') {
        return Err(err(
            "--tmpfs",
            format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    tmpfs_options(options)?;
    Ok((target.to_string(), options.to_string()))
}

/// The option words allowed in a `--tmpfs` option list, checked and normalised
/// (`size=64m` stays as the kernel accepts it).
pub fn tmpfs_options(options: &str) -> Result<Vec<String>, ParseError> {
    const FLAGS: [&str; 14] = [
        "rw",
        "ro",
        "exec",
        "noexec",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "atime",
        "noatime",
        "relatime",
        "strictatime",
        "diratime",
        "nodiratime",
    ];
    let mut out = Vec::new();
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        let ok = match opt.split_once('=') {
            None => FLAGS.contains(&opt),
            Some(("size", v)) => v.ends_with('%') || parse_size(v).is_ok(),
            Some(("mode", v)) => u32::from_str_radix(v, 8).is_ok(),
            Some(("uid" | "gid" | "nr_inodes" | "nr_blocks", v)) => {
                v.parse::<u64>().is_ok() || parse_size(v).is_ok()
            }
            Some(_) => false,
        };
        if !ok {
            return Err(err("--tmpfs", format!("invalid tmpfs option {opt:?}")));
        }
        out.push(opt.to_string());
    }
    Ok(out)
}

/// A `Mount` for a `-v` spec (what the engine resolves next to `HostConfig.Mounts`).
pub fn volume_spec_to_mount(v: &VolumeSpec) -> Mount {
    Mount {
        kind: v.kind,
        source: v.source.clone().unwrap_or_default(),
        target: v.target.clone(),
        read_only: v.read_only,
        bind_options: v.propagation.as_ref().map(|p| BindOptions {
            propagation: Some(p.clone()),
        }),
        volume_options: v.no_copy.then(|| VolumeOptions {
            no_copy: true,
            labels: BTreeMap::new(),
        }),
        tmpfs_options: None,
    }
}
