//! Parsers for `run`/`create` flags, with Docker's error messages, producing the
//! [`config`](super::config) types. Published ports (`-p`) are parsed by
//! `coracle_network::ports`; [`parse_publish`] only turns its result into `PortBindings`.

use std::collections::BTreeMap;
use std::path::Path;

use coracle_network::ports::{parse_port_spec, PortError};

use super::config::{DeviceMapping, PortBinding, RestartPolicy, Ulimit};

mod security;
mod volumes;

pub use security::{parse_security_opt_flag, security_options, SeccompChoice, SecurityOptions};
pub use volumes::{
    parse_mount, parse_tmpfs, parse_volume, tmpfs_options, valid_volume_name, validate_mount,
    volume_spec_to_mount, VolumeSpec,
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
/// `--expose PORT[/PROTO]` or `START-END[/PROTO]`: the `ExposedPorts` keys (`80/tcp`).
pub fn parse_expose(value: &str) -> Result<Vec<String>, ParseError> {
    let flag = "--expose";
    let (ports, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(err(flag, format!("invalid proto: {proto}")));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| err(flag, format!("invalid range format for --expose: {value}")))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if end < start {
        return Err(err(
            flag,
            format!("invalid range format for --expose: {value}"),
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

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

#[cfg(test)]
mod tests;
