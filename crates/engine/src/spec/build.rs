//! `build_spec`: a container's configuration (after the image defaults) and what the engine
//! prepared for it, turned into an OCI runtime spec with Docker's defaults:
//!
//! - namespaces pid, ipc, uts, mount, cgroup, and network per mode;
//! - Docker's default capabilities with `--cap-add`/`--cap-drop`, within the host's
//!   bounding set; Coracle's seccomp profile; masked and read-only `/proc` paths;
//! - the default mounts (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`
//!   read-only, `/sys/fs/cgroup` read-only), then /etc/resolv.conf, /etc/hosts,
//!   /etc/hostname, then the user's mounts, parents before children;
//! - the device cgroup: deny all, mknod of any device, /dev/net/tun, the `--device`s (the
//!   runtime appends its own defaults: null, zero, full, random, urandom, tty, console,
//!   ptmx, pts);
//! - `--privileged`: every capability the bounding set allows, no seccomp, no masked or
//!   read-only paths, every host device, `/sys` and `/sys/fs/cgroup` writable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::caps::{effective_caps, host_bounding_set, CapSet};
use super::config::{ContainerConfig, MountType};
use super::defaults::{command, merge_env, DEFAULT_PATH};
use super::parse::{namespaced_sysctl, security_options, tmpfs_options, SeccompChoice};
use super::seccomp::{default_profile, load_profile};
use super::user::resolve_in_rootfs;
use super::SpecError;

/// The OCI version written into every spec.
pub const OCI_VERSION: &str = "1.0.2-dev";
/// /dev/shm when `ShmSize` is 0.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;
/// Where `--init`'s binary is mounted in the container.
pub const INIT_PATH: &str = "/sbin/coracle-init";
/// The smallest memory limit Docker accepts.
pub const MIN_MEMORY: i64 = 6 << 20;

/// Docker's masked paths (unreadable in the container).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNamespace {
    /// Join this namespace (bridge and none: the one `network` prepared; `container:`: the
    /// other container's).
    Path(PathBuf),
    /// A fresh namespace made by the runtime (only `lo`, down): for tests and tools.
    New,
    /// The host's own (`--network host`): no network namespace in the spec.
    Host,
}

/// A bind or volume mount the engine resolved: `source` is the host path (the bind's
/// source, or the volume's mountpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    pub target: String,
    pub source: PathBuf,
    pub read_only: bool,
    /// `rprivate` when `None`.
    pub propagation: Option<String>,
}

/// What the engine prepared for the container.
#[derive(Debug, Clone)]
pub struct SpecContext {
    /// The 64-hex container id.
    pub id: String,
    pub rootfs: PathBuf,
    /// Hostname when `Config.Hostname` is empty; `None` = the first 12 characters of `id`.
    pub default_hostname: Option<String>,
    pub network: NetNamespace,
    /// Files bind-mounted at /etc/resolv.conf, /etc/hosts and /etc/hostname.
    pub resolv_conf: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub hostname_file: Option<PathBuf>,
    /// Binds and volumes (`Binds`, `Mounts` of type bind/volume, anonymous volumes)
    /// resolved to host paths. Tmpfs mounts come from the configuration itself.
    pub mounts: Vec<ResolvedMount>,
    /// `linux.cgroupsPath`, e.g. `/coracle/<id>`.
    pub cgroups_path: String,
    /// The capability bounding set of the process that will run the runtime.
    pub bounding: CapSet,
    /// The host binary mounted at [`INIT_PATH`] for `--init`.
    pub init_binary: Option<PathBuf>,
    /// Whether the host's memory cgroup can limit swap (`memory.memsw.*` / `memory.swap.max`).
    pub swap_accounting: bool,
    /// The host's /dev, walked for `--privileged`.
    pub host_dev: PathBuf,
}

impl SpecContext {
    /// A context with the defaults: cgroups path `/coracle/<id>`, this process's bounding
    /// set (every capability if it cannot be read), the host's swap accounting, no files
    /// for /etc, no mounts, no init.
    pub fn new(id: &str, rootfs: impl Into<PathBuf>, network: NetNamespace) -> SpecContext {
        SpecContext {
            id: id.to_string(),
            rootfs: rootfs.into(),
            default_hostname: None,
            network,
            resolv_conf: None,
            hosts: None,
            hostname_file: None,
            mounts: Vec::new(),
            cgroups_path: format!("/coracle/{id}"),
            bounding: host_bounding_set().unwrap_or_else(|e| {
                tracing::warn!("{e}; assuming every capability is in the bounding set");
                CapSet::all()
            }),
            init_binary: None,
            swap_accounting: swap_accounting_supported(Path::new("/sys/fs/cgroup")),
            host_dev: PathBuf::from("/dev"),
        }
    }

    fn hostname(&self, cfg: &ContainerConfig) -> String {
        if !cfg.config.hostname.is_empty() {
            return cfg.config.hostname.clone();
        }
        self.default_hostname
            .clone()
            .unwrap_or_else(|| self.id.chars().take(12).collect())
    }
}

/// Whether the memory cgroup under `cgroup_root` can limit swap (v1 `memory.memsw.*`, v2
/// `memory.swap.max`).
pub fn swap_accounting_supported(cgroup_root: &Path) -> bool {
    cgroup_root
        .join("memory/memory.memsw.limit_in_bytes")
        .exists()
        || cgroup_root.join("memory.swap.max").exists()
        || cgroup_root.join("user.slice/memory.swap.max").exists()
        || cgroup_root.join("system.slice/memory.swap.max").exists()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": typ, "source": source, "options": options })
}

fn bind(dest: &str, source: &Path, read_only: bool, propagation: Option<&str>) -> Value {
    let mut options = vec!["rbind", propagation.unwrap_or("rprivate")];
    if read_only {
        options.push("ro");
    }
    json!({ "destination": dest, "type": "bind", "source": source, "options": options })
}

/// Docker's default mounts.
fn default_mounts(privileged: bool, shm_size: i64) -> Vec<Value> {
    let shm = format!("size={}k", shm_size / 1024);
    let ro_unless_privileged = |rest: &[&'static str]| {
        let mut o = rest.to_vec();
        if !privileged {
            o.push("ro");
        }
        o
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &ro_unless_privileged(&["nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &ro_unless_privileged(&["nosuid", "noexec", "nodev", "relatime"]),
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        ),
    ]
}

fn clean_target(t: &str) -> String {
    let c = t.trim_end_matches('/');
    if c.is_empty() {
        "/".into()
    } else {
        c.to_string()
    }
}

/// Every mount of the spec, in mount order.
fn mounts(cfg: &ContainerConfig, ctx: &SpecContext) -> Result<Vec<Value>, SpecError> {
    let h = &cfg.host_config;
    let mut user: Vec<(String, Value)> = Vec::new();
    for m in &ctx.mounts {
        let t = clean_target(&m.target);
        user.push((
            t.clone(),
            bind(&t, &m.source, m.read_only, m.propagation.as_deref()),
        ));
    }
    for (target, opts) in &h.tmpfs {
        let t = clean_target(target);
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(tmpfs_options(opts)?);
        user.push((
            t.clone(),
            json!({ "destination": t, "type": "tmpfs", "source": "tmpfs", "options": o }),
        ));
    }
    for m in h.mounts.iter().filter(|m| m.kind == MountType::Tmpfs) {
        let t = clean_target(&m.target);
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        if let Some(t) = &m.tmpfs_options {
            if t.size_bytes > 0 {
                o.push(format!("size={}", t.size_bytes));
            }
            if t.mode != 0 {
                o.push(format!("mode={:o}", t.mode));
            }
        }
        if m.read_only {
            o.push("ro".into());
        }
        user.push((
            t.clone(),
            json!({ "destination": t, "type": "tmpfs", "source": "tmpfs", "options": o }),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (t, _) in &user {
        if !seen.insert(t.clone()) {
            return Err(SpecError::Parse(super::ParseError {
                flag: "--mount",
                message: format!("Duplicate mount point: {t}"),
            }));
        }
    }
    let shm = if h.shm_size > 0 {
        h.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let mut out: Vec<Value> = default_mounts(h.privileged, shm)
        .into_iter()
        .filter(|m| !seen.contains(m["destination"].as_str().unwrap_or_default()))
        .collect();
    for (dest, file) in [
        ("/etc/resolv.conf", &ctx.resolv_conf),
        ("/etc/hostname", &ctx.hostname_file),
        ("/etc/hosts", &ctx.hosts),
    ] {
        if let Some(f) = file {
            if !seen.contains(dest) {
                out.push(bind(dest, f, false, None));
            }
        }
    }
    if h.init == Some(true) {
        let bin = ctx.init_binary.as_ref().ok_or(SpecError::NoInitBinary)?;
        out.push(bind(INIT_PATH, bin, true, None));
    }
    // Parents before children; a stable sort keeps the order of equals.
    user.sort_by_key(|(t, _)| Path::new(t).components().count());
    out.extend(user.into_iter().map(|(_, v)| v));
    Ok(out)
}

fn device_rule(
    allow: bool,
    typ: Option<&str>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Value {
    let mut r = json!({ "allow": allow, "access": access });
    if let Some(t) = typ {
        r["type"] = json!(t);
    }
    if let Some(m) = major {
        r["major"] = json!(m);
    }
    if let Some(m) = minor {
        r["minor"] = json!(m);
    }
    r
}

/// A device node on the host as a `linux.devices` entry at `dest`.
fn device_entry(
    host: &Path,
    dest: &str,
) -> Result<Option<(Value, &'static str, i64, i64)>, SpecError> {
    let st = nix::sys::stat::stat(host).map_err(|e| SpecError::Device {
        path: host.to_path_buf(),
        reason: e.to_string(),
    })?;
    let typ = match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        _ => return Ok(None),
    };
    let major = nix::sys::stat::major(st.st_rdev) as i64;
    let minor = nix::sys::stat::minor(st.st_rdev) as i64;
    let entry = json!({
        "path": dest, "type": typ, "major": major, "minor": minor,
        "fileMode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid,
    });
    Ok(Some((entry, typ, major, minor)))
}

/// Device nodes under `dir` (recursively; symlinks, pts, shm, mqueue and fd skipped).
fn walk_devices(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        if ft.is_dir() {
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "mqueue" | "fd" | ".lxc" | ".udev")
            ) {
                walk_devices(&e.path(), out);
            }
        } else if !ft.is_symlink() {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() || ft.is_block_device() {
                out.push(e.path());
            }
        }
    }
}

/// `linux.devices` and the device cgroup rules.
fn devices(
    cfg: &ContainerConfig,
    ctx: &SpecContext,
) -> Result<(Vec<Value>, Vec<Value>), SpecError> {
    let h = &cfg.host_config;
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    if h.privileged {
        rules.push(device_rule(true, None, None, None, "rwm"));
        let mut found = Vec::new();
        walk_devices(&ctx.host_dev, &mut found);
        for p in found {
            let rel = p.strip_prefix(&ctx.host_dev).unwrap_or(&p);
            let dest = Path::new("/dev").join(rel);
            // Nodes the runtime makes itself, and the console, are left to it.
            let d = dest.to_string_lossy().into_owned();
            if matches!(
                d.as_str(),
                "/dev/null"
                    | "/dev/zero"
                    | "/dev/full"
                    | "/dev/random"
                    | "/dev/urandom"
                    | "/dev/tty"
                    | "/dev/console"
                    | "/dev/ptmx"
            ) {
                continue;
            }
            if let Ok(Some((entry, ..))) = device_entry(&p, &d) {
                nodes.push(entry);
            }
        }
    } else {
        rules.push(device_rule(false, None, None, None, "rwm"));
        rules.push(device_rule(true, Some("c"), None, None, "m"));
        rules.push(device_rule(true, Some("b"), None, None, "m"));
        rules.push(device_rule(true, Some("c"), Some(10), Some(200), "rwm")); // /dev/net/tun
    }
    for d in &h.devices {
        let host = PathBuf::from(&d.path_on_host);
        let dest = if d.path_in_container.is_empty() {
            d.path_on_host.clone()
        } else {
            d.path_in_container.clone()
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        let mut found = Vec::new();
        if host.is_dir() {
            walk_devices(&host, &mut found);
        } else {
            found.push(host.clone());
        }
        let mut any = false;
        for p in found {
            let rel = p.strip_prefix(&host).unwrap_or(Path::new(""));
            let target = if rel.as_os_str().is_empty() {
                dest.clone()
            } else {
                Path::new(&dest).join(rel).to_string_lossy().into_owned()
            };
            if let Some((entry, typ, major, minor)) = device_entry(&p, &target)? {
                nodes.retain(|n: &Value| n["path"] != json!(target));
                nodes.push(entry);
                rules.push(device_rule(
                    true,
                    Some(typ),
                    Some(major),
                    Some(minor),
                    perms,
                ));
                any = true;
            }
        }
        if !any {
            return Err(SpecError::Device {
                path: host,
                reason: "not a device node (nor a directory holding any)".into(),
            });
        }
    }
    Ok((nodes, rules))
}

/// `linux.resources` with Docker's checks.
fn resources(
    cfg: &ContainerConfig,
    ctx: &SpecContext,
    device_rules: Vec<Value>,
) -> Result<Value, SpecError> {
    let h = &cfg.host_config;
    let bad = |m: &str| Err(SpecError::Resources(m.to_string()));
    let mut r = json!({ "devices": device_rules });
    let mut memory = serde_json::Map::new();
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB");
    }
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
    }
    if h.memory_swap > 0 && h.memory == 0 {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        );
    }
    if h.memory > 0 && h.memory_swap > 0 && h.memory_swap < h.memory {
        return bad("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if h.memory > 0 && h.memory_reservation > 0 && h.memory < h.memory_reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        );
    }
    if h.memory > 0 && ctx.swap_accounting {
        let swap = match h.memory_swap {
            0 => h.memory.saturating_mul(2),
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    } else if h.memory_swap != 0 && !ctx.swap_accounting {
        tracing::warn!("this host's memory cgroup cannot limit swap: --memory-swap is ignored");
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus != 0 {
        if h.cpu_period != 0 {
            return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
        if h.cpu_quota != 0 {
            return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        }
        if h.nano_cpus < 0 {
            return bad("Range of CPUs is from 0.01 to the number of CPUs available");
        }
        let period: i64 = 100_000;
        let quota = h.nano_cpus * period / 1_000_000_000;
        if quota < 1000 {
            return bad("Range of CPUs is from 0.01 to the number of CPUs available");
        }
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(quota));
    }
    if h.cpu_period != 0 {
        if !(1000..=1_000_000).contains(&h.cpu_period) {
            return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        }
        cpu.insert("period".into(), json!(h.cpu_period));
    }
    if h.cpu_quota != 0 {
        if h.cpu_quota > 0 && h.cpu_quota < 1000 {
            return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)");
        }
        cpu.insert("quota".into(), json!(h.cpu_quota));
    }
    if h.cpu_shares < 0 {
        return bad("shares: invalid argument");
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares.clamp(2, 262_144)));
    }
    if !h.cpuset_cpus.is_empty() {
        let ok = h.cpuset_cpus.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|x| x.parse::<u32>().ok());
            match (a, it.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
                _ => false,
            }
        });
        if !ok {
            return Err(SpecError::Resources(format!(
                "Invalid value {} for cpuset cpus",
                h.cpuset_cpus
            )));
        }
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        r["pids"] = json!({ "limit": p });
    }
    Ok(r)
}

fn rlimits(cfg: &ContainerConfig) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    for u in &cfg.host_config.ulimits {
        if !super::parse::ULIMIT_NAMES.contains(&u.name.as_str()) {
            return Err(SpecError::Parse(super::ParseError {
                flag: "--ulimit",
                message: format!("invalid ulimit type: {}", u.name),
            }));
        }
        let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
        out.push(json!({
            "type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
            "soft": v(u.soft), "hard": v(u.hard),
        }));
    }
    Ok(out)
}

fn sysctls(
    cfg: &ContainerConfig,
    ctx: &SpecContext,
) -> Result<BTreeMap<String, String>, SpecError> {
    for key in cfg.host_config.sysctls.keys() {
        if !namespaced_sysctl(key) {
            return Err(SpecError::Sysctl {
                key: key.clone(),
                reason: "not allowed in a container (not namespaced)",
            });
        }
        if key.starts_with("net.") && ctx.network == NetNamespace::Host {
            return Err(SpecError::Sysctl {
                key: key.clone(),
                reason: "not allowed with the host's network namespace",
            });
        }
    }
    Ok(cfg.host_config.sysctls.clone())
}

/// The OCI runtime spec for a container: `cfg` after `apply_image_defaults`, `ctx` from
/// the engine.
pub fn build_spec(cfg: &ContainerConfig, ctx: &SpecContext) -> Result<Spec, SpecError> {
    let h = &cfg.host_config;
    let c = &cfg.config;

    let mut args = command(cfg);
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    if h.init == Some(true) {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }

    let (caps, left_out) = effective_caps(h.privileged, &h.cap_add, &h.cap_drop, ctx.bounding)?;
    if left_out != CapSet::default() {
        tracing::warn!(
            id = %ctx.id,
            "capabilities {:?} are not in this host's bounding set and are not granted",
            left_out.names()
        );
    }
    let sec = security_options(&h.security_opt)?;
    let seccomp = if h.privileged {
        None
    } else {
        match &sec.seccomp {
            SeccompChoice::Unconfined => None,
            SeccompChoice::Default => Some(default_profile(caps)),
            SeccompChoice::Profile(text) => Some(load_profile(text, caps)?),
        }
    };

    let identity = resolve_in_rootfs(&ctx.rootfs, &c.user, &h.group_add)?;
    let hostname = ctx.hostname(cfg);
    let mut base_env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if c.tty {
        base_env.push("TERM=xterm".into());
    }
    let mut env = merge_env(&base_env, &c.env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", identity.home));
    }

    let mut process = json!({
        "terminal": c.tty,
        "user": { "uid": identity.uid, "gid": identity.gid },
        "args": args,
        "env": env,
        "cwd": if c.working_dir.is_empty() { "/" } else { c.working_dir.as_str() },
        "capabilities": {
            "bounding": caps.names(), "effective": caps.names(), "permitted": caps.names(),
            "inheritable": [], "ambient": [],
        },
        "rlimits": rlimits(cfg)?,
        "noNewPrivileges": sec.no_new_privileges,
    });
    if !identity.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(identity.additional_gids);
    }
    if h.oom_score_adj != 0 {
        if !(-1000..=1000).contains(&h.oom_score_adj) {
            return Err(SpecError::Resources(format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                h.oom_score_adj
            )));
        }
        process["oomScoreAdj"] = json!(h.oom_score_adj);
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &ctx.network {
        NetNamespace::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
        NetNamespace::New => namespaces.push(json!({"type": "network"})),
        NetNamespace::Host => {}
    }
    namespaces.push(json!({"type": "cgroup"}));

    let (device_nodes, device_rules) = devices(cfg, ctx)?;
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": ctx.cgroups_path,
        "resources": resources(cfg, ctx, device_rules)?,
        "devices": device_nodes,
        "sysctl": sysctls(cfg, ctx)?,
    });
    if !h.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(s) = seccomp {
        linux["seccomp"] = serde_json::to_value(s).map_err(SpecError::Generated)?;
    }

    let mut spec = json!({
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": { "path": ctx.rootfs, "readonly": h.readonly_rootfs },
        "hostname": hostname,
        "mounts": mounts(cfg, ctx)?,
        "linux": linux,
    });
    if !c.domainname.is_empty() {
        spec["domainname"] = json!(c.domainname);
    }
    serde_json::from_value(spec).map_err(SpecError::Generated)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
