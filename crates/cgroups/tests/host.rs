//! Root-only tests against the real cgroup tree of this host (hybrid on the
//! project's machines; written to pass on pure v1 and pure v2 as well).
//!
//! Each test uses its own cgroup path, `/coracle-test/cg-<pid>-<n>` (or its own
//! parent for the parallel test), kills only the `sleep` children it spawned (by
//! PID), and removes its cgroups even when an assertion fails (see `Guard`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use coracle_cgroups::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use coracle_cgroups::{CgroupError, Layout, Manager};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .expect("effective uid")
}

/// The layout, or None (with the reason printed) when the test cannot run here.
fn host() -> Option<Layout> {
    if euid() != 0 {
        eprintln!("skipped: needs root (euid {}) to create cgroups", euid());
        return None;
    }
    match Layout::detect() {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn unique_path() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!("/coracle-test/cg-{}-{n}", std::process::id()))
}

/// The container directory holding `controller` (v1), or the v2 directory.
fn controller_dir(layout: &Layout, controller: &str, rel: &Path) -> PathBuf {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    match layout {
        Layout::V2 { root } => root.join(rel),
        Layout::V1 { hierarchies } => hierarchies
            .iter()
            .find(|h| !h.unified && h.has_controller(controller))
            .unwrap_or_else(|| panic!("no {controller} hierarchy"))
            .mount_point
            .join(rel),
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn spawn_sleep() -> Child {
    Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep 30")
}

fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // The state follows the parenthesised command name.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    after.chars().next().expect("state")
}

/// Cleans up even when an assertion panics: thaw (a frozen task cannot die),
/// kill our children by PID, reap them, remove the cgroup.
struct Guard {
    manager: Manager,
    children: Vec<Child>,
}

impl Guard {
    fn new(layout: &Layout, path: &Path) -> Guard {
        Guard {
            manager: Manager::new(layout.clone(), path),
            children: Vec::new(),
        }
    }

    fn kill_children(&mut self) {
        let _ = self.manager.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_children();
        if let Err(e) = self.manager.remove() {
            eprintln!("cleanup of {}: {e}", self.manager.path().display());
        }
    }
}

/// The leaf is gone from every hierarchy; its parent is gone too, unless another
/// test running in parallel still has a cgroup under it.
fn assert_removed(layout: &Layout, path: &Path) {
    let rel = path.strip_prefix("/").unwrap();
    for h in layout.hierarchies() {
        let leaf = h.mount_point.join(rel);
        assert!(!leaf.exists(), "{} still exists", leaf.display());
        // Another test may be between its mkdir of the shared parent and of its
        // leaf (or between its rmdirs): give it a moment before judging.
        let parent = leaf.parent().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let lingering = parent.exists()
                && !std::fs::read_dir(parent)
                    .map(|mut d| d.any(|e| e.map(|e| e.path().is_dir()).unwrap_or(false)))
                    .unwrap_or(true);
            if !lingering {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} lingers empty",
                parent.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn memory_and_pids(limit: i64, pids: i64, with_swap: bool) -> LinuxResources {
    let mut mem = LinuxMemoryBuilder::default().limit(limit);
    if with_swap {
        mem = mem.swap(2 * limit);
    }
    LinuxResourcesBuilder::default()
        .memory(mem.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(pids).build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn lifecycle_limits_freeze_remove() {
    let Some(layout) = host() else { return };
    let path = unique_path();
    let mut g = Guard::new(&layout, &path);
    let m = g.manager.clone();
    m.create().unwrap();
    for dir in m.directories().unwrap() {
        assert!(dir.is_dir(), "{} not created", dir.display());
    }

    let mem_dir = controller_dir(&layout, "memory", &path);
    let swap_file = match layout {
        Layout::V1 { .. } => mem_dir.join("memory.memsw.limit_in_bytes"),
        Layout::V2 { .. } => mem_dir.join("memory.swap.max"),
    };
    let with_swap = swap_file.exists();
    m.apply(&memory_and_pids(64 << 20, 32, with_swap)).unwrap();
    let pids_dir = controller_dir(&layout, "pids", &path);
    assert_eq!(read(&pids_dir.join("pids.max")), "32");
    match layout {
        Layout::V1 { .. } => {
            assert_eq!(
                read(&mem_dir.join("memory.limit_in_bytes")),
                (64 << 20).to_string()
            );
            if with_swap {
                assert_eq!(read(&swap_file), (128 << 20).to_string());
            }
        }
        Layout::V2 { .. } => {
            assert_eq!(read(&mem_dir.join("memory.max")), (64 << 20).to_string());
            if with_swap {
                assert_eq!(read(&swap_file), (64 << 20).to_string());
            }
        }
    }

    g.children.push(spawn_sleep());
    let pid = g.children[0].id();
    m.add_task(pid as i32).unwrap();
    assert!(m.pids().unwrap().contains(&(pid as i32)), "{:?}", m.pids());
    for dir in m.directories().unwrap() {
        let procs = read(&dir.join("cgroup.procs"));
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{pid} not in {}",
            dir.display()
        );
    }

    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    let state = proc_state(pid);
    let v1_freezer = matches!(&layout, Layout::V1 { hierarchies } if hierarchies.iter().any(|h| h.has_controller("freezer")));
    if v1_freezer {
        // The v1 freezer parks tasks in the refrigerator: uninterruptible (D) here.
        assert!("DTt".contains(state), "state {state} after freeze");
    }
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());

    g.kill_children();
    m.remove().unwrap();
    assert_removed(&layout, &path);
    m.remove().unwrap(); // idempotent
}

#[test]
fn cpu_cpuset_devices() {
    let Some(layout) = host() else { return };
    let path = unique_path();
    let mut g = Guard::new(&layout, &path);
    let m = g.manager.clone();
    m.create().unwrap();
    let dev = |allow: bool, typ: LinuxDeviceType, major: i64, minor: i64, access: &str| {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .unwrap()
    };
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(20_000i64)
                .period(100_000u64)
                .cpus("0")
                .build()
                .unwrap(),
        )
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            dev(true, LinuxDeviceType::C, 1, 3, "rwm"),
            dev(true, LinuxDeviceType::C, 136, -1, "rw"),
        ])
        .build()
        .unwrap();
    m.apply(&r).unwrap();
    let cpu = controller_dir(&layout, "cpu", &path);
    let cpuset = controller_dir(&layout, "cpuset", &path);
    assert_eq!(read(&cpuset.join("cpuset.cpus")), "0");
    match &layout {
        Layout::V1 { .. } => {
            assert_eq!(read(&cpu.join("cpu.shares")), "512");
            assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "20000");
            assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
            let devices = controller_dir(&layout, "devices", &path);
            assert_eq!(read(&devices.join("devices.list")), "c 1:3 rwm\nc 136:* rw");
        }
        Layout::V2 { .. } => {
            assert_eq!(read(&cpu.join("cpu.weight")), "20");
            assert_eq!(read(&cpu.join("cpu.max")), "20000 100000");
        }
    }
    // The kernel accepts a task: cpuset.mems was inherited on every level.
    g.children.push(spawn_sleep());
    m.add_task(g.children[0].id() as i32).unwrap();

    // An invalid value later changes nothing.
    let before = read(&cpu.join(if matches!(layout, Layout::V1 { .. }) {
        "cpu.shares"
    } else {
        "cpu.weight"
    }));
    let bad = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(4096u64)
                .cpus("0-")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(m.apply(&bad), Err(CgroupError::Invalid { .. })));
    let after = read(&cpu.join(if matches!(layout, Layout::V1 { .. }) {
        "cpu.shares"
    } else {
        "cpu.weight"
    }));
    assert_eq!(before, after);

    g.kill_children();
    m.remove().unwrap();
    assert_removed(&layout, &path);
}

#[test]
fn remove_of_missing_cgroup_is_ok() {
    let Some(layout) = host() else { return };
    let path = unique_path();
    Manager::new(layout.clone(), &path).remove().unwrap();
    assert_removed(&layout, &path);
}

/// Several containers under one fresh parent, created and removed concurrently:
/// creates must survive the parent being rmdir'ed by a finishing sibling, and the
/// parent must be gone afterwards in every hierarchy.
#[test]
fn parallel_siblings_leave_nothing_behind() {
    let Some(layout) = host() else { return };
    let parent = format!("/coracle-test-par-{}", std::process::id());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let layout = layout.clone();
            let parent = parent.clone();
            std::thread::spawn(move || {
                for round in 0..5 {
                    let path = PathBuf::from(format!("{parent}/c{i}-{round}"));
                    let mut g = Guard::new(&layout, &path);
                    let m = g.manager.clone();
                    m.create().unwrap();
                    m.apply(&memory_and_pids(32 << 20, 8, false)).unwrap();
                    g.children.push(spawn_sleep());
                    m.add_task(g.children[0].id() as i32).unwrap();
                    g.kill_children();
                    m.remove().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker panicked");
    }
    let rel = parent.trim_start_matches('/');
    for h in layout.hierarchies() {
        let p = h.mount_point.join(rel);
        assert!(!p.exists(), "{} remains", p.display());
    }
}

#[test]
fn prime_attach_takes_the_attach_lock_and_moves_nothing() {
    let Some(layout) = host() else { return };
    let before = read(Path::new("/proc/self/cgroup"));
    coracle_cgroups::prime_attach(&layout).expect("no-op move into our own cgroup");
    assert_eq!(read(Path::new("/proc/self/cgroup")), before);
}
