//! `coracle version`, `info`, `system df|prune` and `stats`, in Docker's shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use coracle_engine::engine::Engine;
use coracle_engine::store::{ContainerRecord, State};

use crate::containers::open_engine;
use crate::format::{self, bytes_size, table};
use crate::networks::{confirm, prune_networks};
use crate::Context;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
    /// Remove unused data.
    Prune(PruneArgs),
    /// Display system-wide information.
    Info,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage (not supported: the summary is shown).
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    volumes: bool,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go
    /// template.
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

pub fn system_command(ctx: &Context, cmd: SystemCommand) -> Result<u8> {
    match cmd {
        SystemCommand::Df(a) => df(ctx, &a),
        SystemCommand::Prune(a) => prune(ctx, &a),
        SystemCommand::Info => info(ctx),
    }
}

/// Bytes of the regular files under `path` (symlinks not followed; hard links counted once).
pub fn dir_size(path: &Path) -> u64 {
    fn walk(path: &Path, seen: &mut BTreeSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            let Ok(entries) = fs::read_dir(path) else {
                return 0;
            };
            entries.flatten().map(|e| walk(&e.path(), seen)).sum()
        } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
            meta.len()
        } else {
            0
        }
    }
    walk(path, &mut BTreeSet::new())
}

// --- version ---------------------------------------------------------------------------

/// The `rustc version …` note the compiler leaves in the executable's `.comment` section.
fn rustc_version() -> Option<String> {
    let mut f = fs::File::open("/proc/self/exe").ok()?;
    let mut hdr = [0u8; 64];
    f.read_exact(&mut hdr).ok()?;
    if &hdr[..4] != b"\x7fELF" || hdr[4] != 2 || hdr[5] != 1 {
        return None; // 64-bit little-endian only
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&hdr, 0x28),
        u16_at(&hdr, 0x3a),
        u16_at(&hdr, 0x3c),
        u16_at(&hdr, 0x3e),
    );
    if shentsize < 64 || shnum == 0 || shnum > 4096 {
        return None;
    }
    let mut table = vec![0u8; (shentsize * shnum) as usize];
    f.seek(SeekFrom::Start(shoff)).ok()?;
    f.read_exact(&mut table).ok()?;
    let section = |i: u64| {
        let b = &table[(i * shentsize) as usize..];
        (u32_at(b, 0), u64_at(b, 0x18), u64_at(b, 0x20))
    };
    let mut read = |off: u64, len: u64| -> Option<Vec<u8>> {
        if len > 1 << 20 {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    let (_, str_off, str_len) = section(shstrndx);
    let names = read(str_off, str_len)?;
    for i in 0..shnum {
        let (name_off, off, len) = section(i);
        let name = names.get(name_off as usize..)?;
        if name.starts_with(b".comment\0") {
            let data = read(off, len)?;
            return data
                .split(|&b| b == 0)
                .filter_map(|s| std::str::from_utf8(s).ok())
                .find_map(|s| s.strip_prefix("rustc version ").map(str::to_string));
        }
    }
    None
}

fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

pub fn version(_ctx: &Context) -> Result<u8> {
    let rust = rustc_version().unwrap_or_else(|| "unknown".into());
    let commit = option_env!("CORACLE_GIT_COMMIT").unwrap_or("unknown");
    let mut out = io::stdout().lock();
    writeln!(out, "Client:")?;
    writeln!(out, " Version:           {VERSION}")?;
    writeln!(out, " API version:       none (the engine runs in-process)")?;
    writeln!(out, " Rust version:      {rust}")?;
    writeln!(out, " Git commit:        {commit}")?;
    writeln!(out, " OS/Arch:           {}", os_arch())?;
    writeln!(out, " Context:           default")?;
    writeln!(out)?;
    writeln!(out, "Server: Coracle Engine")?;
    writeln!(out, " Engine:")?;
    writeln!(out, "  Version:          {VERSION}")?;
    writeln!(out, "  API version:      none (in-process, no daemon)")?;
    writeln!(out, "  Rust version:     {rust}")?;
    writeln!(out, "  Git commit:       {commit}")?;
    writeln!(out, "  OS/Arch:          {}", os_arch())?;
    writeln!(out, "  Experimental:     false")?;
    writeln!(out, " coracle-runtime:")?;
    writeln!(out, "  Version:          {VERSION}")?;
    Ok(0)
}

// --- info --------------------------------------------------------------------------------

/// 2 when /sys/fs/cgroup is the unified hierarchy, 1 on v1 and on the hybrid layout.
pub fn cgroup_version() -> u8 {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        2
    } else {
        1
    }
}

fn os_name() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

/// MemTotal of /proc/meminfo, in bytes.
pub fn total_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn info(ctx: &Context) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let containers = engine.list(true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = |f: &dyn Fn(State) -> bool| containers.iter().filter(|c| f(c.state)).count();
    let running = count(&|s| matches!(s, State::Running | State::Restarting));
    let paused = count(&|s| s == State::Paused);
    let stopped = containers.len() - running - paused;
    let images = engine.images().list().map(|l| l.len()).unwrap_or(0);
    let uts = nix::sys::utsname::uname()?;
    let networks = {
        let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
        mgr.networks().map(|n| n.len()).unwrap_or(0)
    };
    let mut out = io::stdout().lock();
    writeln!(out, "Client:")?;
    writeln!(out, " Version:    {VERSION}")?;
    writeln!(out, " Context:    default")?;
    writeln!(out, " Debug Mode: false")?;
    writeln!(out)?;
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", containers.len())?;
    writeln!(out, "  Running: {running}")?;
    writeln!(out, "  Paused: {paused}")?;
    writeln!(out, "  Stopped: {stopped}")?;
    writeln!(out, " Images: {images}")?;
    writeln!(out, " Server Version: {VERSION}")?;
    writeln!(out, " Storage Driver: overlay")?;
    writeln!(out, "  Backing Filesystem: {}", backing_fs(&ctx.root))?;
    writeln!(out, " Logging Driver: json-file")?;
    writeln!(out, " Cgroup Driver: cgroupfs")?;
    writeln!(out, " Cgroup Version: {}", cgroup_version())?;
    writeln!(out, " Plugins:")?;
    writeln!(out, "  Volume: local")?;
    writeln!(out, "  Network: bridge host null")?;
    writeln!(out, "  Log: json-file")?;
    writeln!(out, " Networks: {}", networks.max(1) + 2)?;
    writeln!(out, " Default Runtime: coracle-runtime")?;
    writeln!(out, " Kernel Version: {}", uts.release().to_string_lossy())?;
    writeln!(out, " Operating System: {}", os_name())?;
    writeln!(out, " OSType: {}", std::env::consts::OS)?;
    writeln!(out, " Architecture: {}", uts.machine().to_string_lossy())?;
    writeln!(out, " CPUs: {}", cpus())?;
    writeln!(out, " Total Memory: {}", bytes_size(total_memory()))?;
    writeln!(out, " Name: {}", uts.nodename().to_string_lossy())?;
    writeln!(out, " Docker Root Dir: {}", ctx.root.display())?;
    writeln!(out, " Debug Mode: false")?;
    writeln!(out, " Experimental: false")?;
    writeln!(out, " Live Restore Enabled: false")?;
    Ok(0)
}

/// The file system type under `path`, from /proc/self/mountinfo (longest matching mount).
fn backing_fs(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mnt), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        if path.starts_with(mnt) && best.as_ref().is_none_or(|(l, _)| mnt.len() >= *l) {
            best = Some((mnt.len(), fstype.to_string()));
        }
    }
    best.map(|(_, t)| t).unwrap_or_else(|| "unknown".into())
}

// --- system df ---------------------------------------------------------------------------

fn upper_dir(engine: &Engine, id: &str) -> Option<PathBuf> {
    engine
        .images()
        .snapshotter()
        .dir(id)
        .ok()
        .map(|d| d.join("upper"))
}

fn reclaimable(size: u64, reclaim: u64) -> String {
    if size == 0 {
        return format::human_size(reclaim);
    }
    format!(
        "{} ({}%)",
        format::human_size(reclaim),
        reclaim * 100 / size
    )
}

pub fn df(ctx: &Context, _args: &DfArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let containers = engine.list(true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let images = engine.images().list()?;
    // Images: each unpacked layer counted once; reclaimable what no container's image uses.
    let used_images: BTreeSet<String> = containers.iter().map(|c| c.image_id.clone()).collect();
    let is_used = |id: &str| {
        used_images
            .iter()
            .any(|u| u == id || u.trim_start_matches("sha256:") == id.trim_start_matches("sha256:"))
    };
    let mut layer_sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut active_layers: BTreeSet<String> = BTreeSet::new();
    let mut active_images = 0;
    for img in &images {
        let used = is_used(&img.id.to_string());
        active_images += usize::from(used);
        for l in &img.layers {
            let key = l.diff_id.to_string();
            if !layer_sizes.contains_key(&key) {
                let size = dir_size(&engine.images().layer_dir(&l.diff_id));
                layer_sizes.insert(key.clone(), size);
            }
            if used {
                active_layers.insert(key);
            }
        }
    }
    let images_size: u64 = layer_sizes.values().sum();
    let images_active_size: u64 = active_layers.iter().map(|k| layer_sizes[k]).sum();
    // Containers: their writable layers.
    let mut c_size = 0;
    let mut c_reclaim = 0;
    let mut c_active = 0;
    for c in &containers {
        let size = upper_dir(&engine, &c.id).map(|p| dir_size(&p)).unwrap_or(0);
        c_size += size;
        if c.state.is_active() {
            c_active += 1;
        } else {
            c_reclaim += size;
        }
    }
    // Volumes.
    let store = engine.store();
    let volumes = store.list_volumes().map_err(|e| anyhow::anyhow!("{e}"))?;
    let unused: BTreeSet<String> = store
        .unused_volumes()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .collect();
    let mut v_size = 0;
    let mut v_reclaim = 0;
    for v in &volumes {
        let size = dir_size(&v.mountpoint);
        v_size += size;
        if unused.contains(&v.name) {
            v_reclaim += size;
        }
    }
    let rows = vec![
        vec![
            "TYPE".to_string(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ],
        vec![
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            format::human_size(images_size),
            reclaimable(images_size, images_size - images_active_size),
        ],
        vec![
            "Containers".into(),
            containers.len().to_string(),
            c_active.to_string(),
            format::human_size(c_size),
            reclaimable(c_size, c_reclaim),
        ],
        vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            (volumes.len() - unused.len().min(volumes.len())).to_string(),
            format::human_size(v_size),
            reclaimable(v_size, v_reclaim),
        ],
        vec![
            "Build Cache".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    print!("{}", table(&rows));
    Ok(0)
}

// --- system prune ------------------------------------------------------------------------

pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<u8> {
    if !args.force {
        let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if args.volumes {
            warning.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        warning.push_str(if args.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        if !confirm(&warning) {
            return Ok(0);
        }
    }
    let engine = open_engine(ctx)?;
    let mut out = io::stdout().lock();
    let mut reclaimed = 0u64;
    // Stopped containers.
    let mut removed = Vec::new();
    let mut code = 0;
    for c in engine.list(true).map_err(|e| anyhow::anyhow!("{e}"))? {
        if c.state.is_active() {
            continue;
        }
        let size = upper_dir(&engine, &c.id).map(|p| dir_size(&p)).unwrap_or(0);
        match engine.remove(&c.id, false, false) {
            Ok(()) => {
                reclaimed += size;
                removed.push(c.id);
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    format::write_deleted(&mut out, "Deleted Containers:", "", &removed)?;
    // Networks.
    let nets = prune_networks(ctx, &engine)?;
    format::write_deleted(&mut out, "Deleted Networks:", "", &nets)?;
    // Volumes, when asked.
    if args.volumes {
        let (vols, size) = crate::volumes::prune_volumes(&engine, false)?;
        reclaimed += size;
        format::write_deleted(&mut out, "Deleted Volumes:", "", &vols)?;
    }
    // Images.
    let (deleted, size) = engine.images().prune(args.all)?;
    reclaimed += size;
    format::write_deleted(&mut out, "Deleted Images:", "deleted: ", &deleted)?;
    format::write_reclaimed(&mut out, reclaimed)?;
    Ok(code)
}

// --- stats --no-stream -------------------------------------------------------------------

/// One sample of a container's counters.
#[derive(Debug, Default, Clone)]
struct Sample {
    cpu_ns: u64,
    mem_usage: u64,
    mem_limit: Option<u64>,
    pids: u64,
    block_read: u64,
    block_write: u64,
    net_rx: u64,
    net_tx: u64,
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn sample(cgroup: &str, pid: i32) -> Sample {
    let rel = cgroup.trim_start_matches('/');
    let mut s = Sample::default();
    if cgroup_version() == 2 {
        let dir = Path::new("/sys/fs/cgroup").join(rel);
        let cpu = fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
        s.cpu_ns = stat_field(&cpu, "usage_usec").unwrap_or(0) * 1000;
        let usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
        let stat = fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
        let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
        s.mem_usage = usage.saturating_sub(inactive);
        s.mem_limit = read_u64(&dir.join("memory.max"));
        s.pids = read_u64(&dir.join("pids.current")).unwrap_or(0);
        for line in fs::read_to_string(dir.join("io.stat"))
            .unwrap_or_default()
            .lines()
        {
            for field in line.split_whitespace().skip(1) {
                if let Some(v) = field.strip_prefix("rbytes=") {
                    s.block_read += v.parse().unwrap_or(0);
                } else if let Some(v) = field.strip_prefix("wbytes=") {
                    s.block_write += v.parse().unwrap_or(0);
                }
            }
        }
    } else {
        let root = Path::new("/sys/fs/cgroup");
        s.cpu_ns = read_u64(&root.join("cpuacct").join(rel).join("cpuacct.usage")).unwrap_or(0);
        let mem = root.join("memory").join(rel);
        let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
        let stat = fs::read_to_string(mem.join("memory.stat")).unwrap_or_default();
        let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
        s.mem_usage = usage.saturating_sub(inactive);
        // v1 reports "no limit" as a huge page-rounded number.
        s.mem_limit = read_u64(&mem.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
        s.pids = read_u64(&root.join("pids").join(rel).join("pids.current")).unwrap_or(0);
        let blkio = root.join("blkio").join(rel);
        for file in [
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
        ] {
            let Ok(text) = fs::read_to_string(blkio.join(file)) else {
                continue;
            };
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 3 {
                    match f[1] {
                        "Read" => s.block_read += f[2].parse::<u64>().unwrap_or(0),
                        "Write" => s.block_write += f[2].parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            break;
        }
    }
    // /proc/<pid>/net/dev shows the network namespace of that process.
    if pid > 0 {
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/dev")) {
            for line in text.lines().skip(2) {
                let Some((iface, rest)) = line.split_once(':') else {
                    continue;
                };
                if iface.trim() == "lo" {
                    continue;
                }
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if f.len() >= 9 {
                    s.net_rx += f[0];
                    s.net_tx += f[8];
                }
            }
        }
    }
    s
}

/// `docker stats`: a table of every running container's (or the named ones') usage, CPU
/// measured between two samples. Streaming (the default) redraws it every second, clearing
/// the screen first as Docker does, until interrupted; `--no-stream` prints it once.
/// Without names the set of containers is listed again for every table, so containers that
/// start or stop come and go.
pub fn stats(ctx: &Context, args: &StatsArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut code = 0;
    let mut named: Vec<ContainerRecord> = Vec::new();
    for name in &args.containers {
        match engine.container(name) {
            Ok(c) => named.push(c),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    if !args.containers.is_empty() && named.is_empty() {
        return Ok(code);
    }
    let targets = |named: &[ContainerRecord]| -> Result<Vec<ContainerRecord>> {
        if args.containers.is_empty() {
            return engine.list(args.all).map_err(|e| anyhow::anyhow!("{e}"));
        }
        // Named containers stay in the table; their state and pid are read afresh.
        Ok(named
            .iter()
            .map(|c| engine.container(&c.id).unwrap_or_else(|_| c.clone()))
            .collect())
    };
    let cgroup =
        |c: &ContainerRecord| format!("{}/{}", ctx.cgroup_parent.trim_end_matches('/'), c.id);
    let running = |c: &ContainerRecord| c.state == State::Running || c.state == State::Paused;
    let host_mem = total_memory();

    // The first sample, and a short first interval so that the first table comes quickly.
    let mut previous: BTreeMap<String, (Sample, Instant)> = BTreeMap::new();
    let mut current = targets(&named)?;
    for c in current.iter().filter(|c| running(c)) {
        previous.insert(c.id.clone(), (sample(&cgroup(c), c.pid), Instant::now()));
    }
    if !previous.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut out = io::stdout().lock();
    loop {
        let mut rows = Vec::new();
        let mut next = BTreeMap::new();
        for c in &current {
            let now = running(c).then(|| (sample(&cgroup(c), c.pid), Instant::now()));
            let cpu = match (&now, previous.get(&c.id)) {
                (Some((s, t)), Some((before, t0))) => {
                    let wall = t.duration_since(*t0).as_nanos().max(1) as f64;
                    s.cpu_ns.saturating_sub(before.cpu_ns) as f64 / wall * 100.0
                }
                _ => 0.0,
            };
            let shown = args
                .containers
                .iter()
                .find(|n| engine.container(n).is_ok_and(|r| r.id == c.id))
                .cloned();
            rows.push(stats_row(
                c,
                now.as_ref().map(|n| &n.0),
                cpu,
                host_mem,
                shown,
                args.no_trunc,
            ));
            if let Some(n) = now {
                next.insert(c.id.clone(), n);
            }
        }
        previous = next;
        let text = match args.format.as_deref() {
            None => table(&stats_table(&rows)),
            Some(f) => format::render_rows(f, &format::STATS_COLUMNS, &rows)?,
        };
        if args.no_stream {
            out.write_all(text.as_bytes())?;
            return Ok(code);
        }
        // Clear the screen and go home, then the table: Docker's redraw.
        write!(out, "\x1b[2J\x1b[H{text}")?;
        out.flush()?;
        std::thread::sleep(Duration::from_secs(1));
        current = targets(&named)?;
    }
}

/// One row of `stats` in the shape of Docker's stats `--format` fields. `shown` is the
/// name or id the user gave for the container (`.Container`).
fn stats_row(
    c: &ContainerRecord,
    now: Option<&Sample>,
    cpu: f64,
    host_mem: u64,
    shown: Option<String>,
    no_trunc: bool,
) -> serde_json::Value {
    let id = if no_trunc {
        c.id.clone()
    } else {
        c.short_id().to_string()
    };
    let container = shown.unwrap_or_else(|| id.clone());
    let Some(now) = now else {
        return serde_json::json!({
            "BlockIO": "0B / 0B", "CPUPerc": "0.00%", "Container": container, "ID": id,
            "MemPerc": "0.00%", "MemUsage": "0B / 0B", "Name": c.name, "NetIO": "0B / 0B",
            "PIDs": "0",
        });
    };
    let limit = now.mem_limit.unwrap_or(host_mem).min(host_mem.max(1));
    let mem_pct = if limit > 0 {
        now.mem_usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let pair = |a: u64, b: u64| {
        format!(
            "{} / {}",
            format::human_size_precision(a, 3),
            format::human_size_precision(b, 3)
        )
    };
    serde_json::json!({
        "BlockIO": pair(now.block_read, now.block_write),
        "CPUPerc": format!("{cpu:.2}%"),
        "Container": container,
        "ID": id,
        "MemPerc": format!("{mem_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(now.mem_usage), bytes_size(limit)),
        "Name": c.name,
        "NetIO": pair(now.net_rx, now.net_tx),
        "PIDs": now.pids.to_string(),
    })
}

/// Docker's default stats table.
fn stats_table(rows: &[serde_json::Value]) -> Vec<Vec<String>> {
    const COLUMNS: [(&str, &str); 8] = [
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ];
    let mut out = vec![COLUMNS.iter().map(|(_, h)| h.to_string()).collect()];
    for r in rows {
        out.push(
            COLUMNS
                .iter()
                .map(|(k, _)| r[*k].as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_like_docker() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(2_062_548_992), "1.921GiB");
        assert_eq!(bytes_size(1023), "1023B");
    }

    #[test]
    fn this_executable_names_its_compiler() {
        let v = rustc_version().expect("a .comment section");
        assert!(v.starts_with("1."), "{v}");
    }
}
