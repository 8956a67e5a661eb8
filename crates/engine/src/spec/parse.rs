//! Parsers for `run`/`create` flags, with Docker's error messages, producing the
//! [`config`](super::config) types. Published ports (`-p`) are parsed by
//! `coracle_network::ports`; [`parse_publish`] only turns its result into `PortBindings`.

use std::collections::BTreeMap;
use std::path::Path;

use coracle_network::ports::{parse_port_spec, PortError};

use super::config::{
    BindOptions, DeviceMapping, Mount, MountType, PortBinding, RestartPolicy, TmpfsOptions, Ulimit,
    VolumeOptions,
};

/// A flag value that was refused. `Display` is Docker's message for the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The flag the value came from (`--memory`, `-v`, ...).
    pub flag: &'static str,
    pub message: String,
}

fn err(flag: &'static str, message: impl Into<String>) -> ParseError {
    ParseError {
        flag,
        message: message.into(),
    }
}

/// A size with an optional binary unit (`512m`, `1g`, `100k`, `1.5GiB`, plain bytes), as
/// `--memory`, `--memory-swap`, `--shm-size` and `tmpfs-size` take it. `-1` is not a size
/// here; the callers that allow it check for it first.
pub fn parse_size(value: &str) -> Result<i64, ParseError> {
    let bad = || err("size", format!("invalid size: '{value}'"));
    let s = value.trim_end();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, mut unit) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let number: f64 = num.parse().map_err(|_| bad())?;
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let mut chars = unit.chars();
    let mult: f64 = match chars.next().map(|c| c.to_ascii_lowercase()) {
        None => 1.0,
        Some('b') if unit.len() == 1 => 1.0,
        Some(c) => {
            let power = match c {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                'p' => 5,
                _ => return Err(bad()),
            };
            let rest = chars.as_str().to_ascii_lowercase();
            if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
                return Err(bad());
            }
            1024f64.powi(power)
        }
    };
    let bytes = number * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn parse_memory_swap(value: &str) -> Result<i64, ParseError> {
    if value == "-1" {
        return Ok(-1);
    }
    parse_size(value)
}

/// `--cpus 1.5` → `NanoCpus` (1_500_000_000).
pub fn parse_cpus(value: &str) -> Result<i64, ParseError> {
    let bad = || {
        err(
            "--cpus",
            format!("failed to parse {value} as a rational number"),
        )
    };
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let (neg, int) = match int.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, int),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(err("--cpus", "value is too precise"));
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(bad)?;
    Ok(if neg { -nanos } else { nanos })
}

/// The resource names `--ulimit` knows.
pub const ULIMIT_NAMES: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit nofile=1024[:2048]` (a missing hard limit equals the soft one; -1 = unlimited).
pub fn parse_ulimit(value: &str) -> Result<Ulimit, ParseError> {
    let flag = "--ulimit";
    let Some((name, limits)) = value.split_once('=') else {
        return Err(err(flag, format!("invalid ulimit argument: {value}")));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(err(flag, format!("invalid ulimit type: {name}")));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    if parts.len() > 2 {
        return Err(err(
            flag,
            format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ),
        ));
    }
    let num = |s: &str| {
        s.parse::<i64>().map_err(|_| {
            err(
                flag,
                format!("invalid ulimit value {s:?} in {value}: not an integer"),
            )
        })
    };
    let soft = num(parts[0])?;
    let hard = match parts.get(1) {
        Some(h) => num(h)?,
        None => soft,
    };
    if soft > hard {
        return Err(err(
            flag,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `-e KEY=value`, or `-e KEY`: the value of KEY in `lookup` (the caller's environment);
/// a KEY that is not set there is kept bare (it then removes the image's KEY).
pub fn parse_env(
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ParseError> {
    let (key, has_value) = match value.split_once('=') {
        Some((k, _)) => (k, true),
        None => (value, false),
    };
    if key.is_empty() {
        return Err(err(
            "--env",
            format!("invalid environment variable: {value}"),
        ));
    }
    if has_value {
        return Ok(value.to_string());
    }
    Ok(match lookup(key) {
        Some(v) => format!("{key}={v}"),
        None => value.to_string(),
    })
}

/// The lines of an `--env-file`: `KEY=value`, or `KEY` (taken from `lookup`, dropped when
/// unset); blank lines and lines starting with `#` are skipped.
pub fn parse_env_file_text(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ParseError> {
    let flag = "--env-file";
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_start(), Some(v)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            return Err(err(flag, format!("no variable name on line '{line}'")));
        }
        if key.contains(char::is_whitespace) {
            return Err(err(
                flag,
                format!("poorly formatted environment: variable '{key}' contains whitespaces"),
            ));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = lookup(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// Reads and parses an `--env-file`.
pub fn parse_env_file(
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ParseError> {
    let flag = "--env-file";
    let bytes =
        std::fs::read(path).map_err(|e| err(flag, format!("open {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        err(
            flag,
            format!(
                "env file {} contains invalid utf8 bytes at line {line}",
                path.display()
            ),
        )
    })?;
    parse_env_file_text(&text, lookup)
}

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

fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty() && mode.len() <= 3 && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) && {
        let mut seen = mode.chars().collect::<Vec<_>>();
        seen.sort();
        seen.dedup();
        seen.len() == mode.len()
    }
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(value: &str) -> Result<DeviceMapping, ParseError> {
    let flag = "--device";
    let invalid = || err(flag, format!("invalid device specification: {value}"));
    let parts: Vec<&str> = value.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, x] if valid_device_mode(x) => (*src, *src, *x),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, perms] => {
            if !valid_device_mode(perms) {
                return Err(invalid());
            }
            (*src, *dst, *perms)
        }
        _ => return Err(invalid()),
    };
    for p in [src, dst] {
        if !p.starts_with('/') {
            return Err(err(flag, format!("{p} is not an absolute path")));
        }
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(value: &str) -> Result<RestartPolicy, ParseError> {
    let flag = "--restart";
    let (name, count) = match value.split_once(':') {
        Some(("", _)) => {
            return Err(err(
                flag,
                "invalid restart policy format: no policy provided before colon",
            ))
        }
        Some((n, c)) => (n, Some(c)),
        None => (value, None),
    };
    let mut policy = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: 0,
    };
    if let Some(c) = count.filter(|c| !c.is_empty()) {
        policy.maximum_retry_count = c.parse().map_err(|_| {
            err(
                flag,
                "invalid restart policy format: maximum retry count must be an integer",
            )
        })?;
    }
    validate_restart(&policy)?;
    Ok(policy)
}

/// The daemon's checks of a `RestartPolicy`.
pub fn validate_restart(p: &RestartPolicy) -> Result<(), ParseError> {
    let flag = "--restart";
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(err(
                    flag,
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(err(
                    flag,
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
        }
        other => {
            return Err(err(
                flag,
                format!("invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
            ))
        }
    }
    Ok(())
}

/// `--add-host name:ip` (or `name=ip`; IPv6 may be bracketed) → `name:ip` for
/// `HostConfig.ExtraHosts`. `host-gateway` is kept for the engine to resolve.
pub fn parse_add_host(value: &str) -> Result<String, ParseError> {
    let flag = "--add-host";
    let split = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .filter(|(name, _)| !name.is_empty());
    let Some((name, ip)) = split else {
        return Err(err(flag, format!("bad format for add-host: {value:?}")));
    };
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(err(flag, format!("invalid IP address in add-host: {ip:?}")));
    }
    Ok(format!("{name}:{ip}"))
}

/// How `seccomp=` chose the filter.
#[derive(Debug, Clone, PartialEq)]
pub enum SeccompChoice {
    /// Coracle's default profile.
    Default,
    Unconfined,
    /// A profile (Docker's format or OCI `LinuxSeccomp` JSON), as text.
    Profile(String),
}

/// What `HostConfig.SecurityOpt` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
}

/// `--security-opt` as the CLI takes it: `seccomp=<file>` is read and its JSON inlined
/// (`seccomp=<json>`), as Docker's CLI sends it to the daemon; the rest is checked and kept.
pub fn parse_security_opt_flag(value: &str) -> Result<String, ParseError> {
    let flag = "--security-opt";
    if let Some(path) = value
        .strip_prefix("seccomp=")
        .or_else(|| value.strip_prefix("seccomp:"))
    {
        if path == "unconfined" {
            return Ok("seccomp=unconfined".into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                flag,
                format!("opening seccomp profile ({path}) failed: {e}"),
            )
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            err(
                flag,
                format!("compacting json for seccomp profile ({path}) failed: {e}"),
            )
        })?;
        return Ok(format!("seccomp={json}"));
    }
    security_options(&[value.to_string()])?;
    Ok(value.to_string())
}

/// `HostConfig.SecurityOpt` entries: `no-new-privileges[:|=true|false]`,
/// `seccomp=unconfined|<profile JSON>`; `apparmor=` and `label=` are accepted and ignored
/// (no LSM support yet).
pub fn security_options(opts: &[String]) -> Result<SecurityOptions, ParseError> {
    let flag = "--security-opt";
    let mut out = SecurityOptions {
        no_new_privileges: false,
        seccomp: SeccompChoice::Default,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(err(flag, format!("invalid --security-opt: {opt:?}")));
        };
        match key {
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(err(
                            flag,
                            format!("invalid --security-opt 2: {opt:?}"),
                        ))
                    }
                }
            }
            "seccomp" if value == "unconfined" => out.seccomp = SeccompChoice::Unconfined,
            "seccomp" if value.trim_start().starts_with('{') => {
                out.seccomp = SeccompChoice::Profile(value.to_string())
            }
            "seccomp" => {
                return Err(err(
                    flag,
                    format!("invalid --security-opt: seccomp expects 'unconfined' or a profile, got {value:?}"),
                ))
            }
            "apparmor" | "label" => {}
            _ => return Err(err(flag, format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(out)
}

const SIGNALS: [(&str, i32); 33] = [
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
];

/// `--stop-signal` (and image `StopSignal`): `SIGTERM`, `term`, `15`, `RTMIN+3`, ...
pub fn parse_signal(value: &str) -> Result<i32, ParseError> {
    let flag = "--stop-signal";
    let invalid = || err(flag, format!("Invalid signal: {value}"));
    if let Ok(n) = value.parse::<i32>() {
        return if n <= 0 || n > 64 {
            Err(invalid())
        } else {
            Ok(n)
        };
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if name == "XFSZ" {
        return Ok(25);
    }
    if let Some((_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    const RTMIN: i32 = 34;
    const RTMAX: i32 = 64;
    let rt = if name == "RTMIN" {
        Some(RTMIN)
    } else if name == "RTMAX" {
        Some(RTMAX)
    } else if let Some(n) = name.strip_prefix("RTMIN+") {
        n.parse::<i32>()
            .ok()
            .filter(|n| (1..=15).contains(n))
            .map(|n| RTMIN + n)
    } else if let Some(n) = name.strip_prefix("RTMAX-") {
        n.parse::<i32>()
            .ok()
            .filter(|n| (1..=14).contains(n))
            .map(|n| RTMAX - n)
    } else {
        None
    };
    rt.ok_or_else(invalid)
}

/// `-u user[:group]`: a name or a numeric id on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

pub fn parse_user(value: &str) -> Result<UserSpec, ParseError> {
    let bad = || err("--user", format!("invalid user specification: '{value}'"));
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    let ok = |s: &str| {
        !s.is_empty() && !s.contains([':', '/', '\n']) && !s.chars().any(char::is_whitespace)
    };
    if !ok(user) || group.is_some_and(|g| !ok(g)) {
        return Err(bad());
    }
    Ok(UserSpec {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}

/// The sysctls a container may set: those of the namespaces it owns.
pub fn namespaced_sysctl(key: &str) -> bool {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    IPC.contains(&key) || key.starts_with("fs.mqueue.") || key.starts_with("net.")
}

/// `--sysctl key=value`.
pub fn parse_sysctl(value: &str) -> Result<(String, String), ParseError> {
    let denied = || err("--sysctl", format!("sysctl '{value}' is not allowed"));
    let (key, val) = value.split_once('=').ok_or_else(denied)?;
    if !namespaced_sysctl(key) {
        return Err(denied());
    }
    Ok((key.to_string(), val.to_string()))
}

/// `-p` through `coracle_network::ports::parse_port_spec`, as `PortBindings` entries:
/// one `"80/tcp"` key per container port (a range is expanded).
pub fn parse_publish(value: &str) -> Result<Vec<(String, PortBinding)>, PortError> {
    let m = parse_port_spec(value)?;
    let host_ip = m.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
    let mut out = Vec::new();
    for (i, port) in (m.container_port_start..=m.container_port_end).enumerate() {
        let host_port = if m.host_port_chosen() {
            (m.host_port_start as usize + i).to_string()
        } else {
            String::new()
        };
        out.push((
            format!("{port}/{}", m.protocol),
            PortBinding {
                host_ip: host_ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// Adds `-p` results to `HostConfig.PortBindings` and `Config.ExposedPorts`.
pub fn add_publish(
    bindings: &mut BTreeMap<String, Vec<PortBinding>>,
    exposed: &mut BTreeMap<String, super::config::Empty>,
    value: &str,
) -> Result<(), PortError> {
    for (key, b) in parse_publish(value)? {
        exposed.insert(key.clone(), Default::default());
        bindings.entry(key).or_default().push(b);
    }
    Ok(())
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
