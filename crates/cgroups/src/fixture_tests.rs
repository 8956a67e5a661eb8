//! Writers against tempdir trees shaped like real cgroupfs (no root needed).
//!
//! cgroupfs creates a directory's files itself; a fixture has to create them up
//! front, so `populate` lays out every level of a container path as the kernel
//! would (values as read on this project's hybrid machines and on a v2 host).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

use crate::{fsutil, v1, CgroupError, Hierarchy, Layout, Manager};

const MAX_V1: &str = "9223372036854771712";

fn put(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, value) in files {
        fs::write(dir.join(name), value).unwrap();
    }
}

/// Every file under `root` with its content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// ---------------------------------------------------------------- v1 / hybrid

struct V1Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
}

impl V1Fixture {
    /// Hybrid host with `cpu,cpuacct` co-mounted (as on systemd v1 hosts).
    fn new() -> V1Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let h = |name: &str, ctl: &[&str], unified: bool| Hierarchy {
            mount_point: root.join(name),
            controllers: ctl.iter().map(|s| s.to_string()).collect(),
            unified,
        };
        let hierarchies = vec![
            h("cpu,cpuacct", &["cpu", "cpuacct"], false),
            h("cpuset", &["cpuset"], false),
            h("memory", &["memory"], false),
            h("devices", &["devices"], false),
            h("freezer", &["freezer"], false),
            h("blkio", &["blkio"], false),
            h("pids", &["pids"], false),
            h("systemd", &["name=systemd"], false),
            h("unified", &[], true),
        ];
        let f = V1Fixture {
            _dir: dir,
            root,
            layout: Layout::V1 { hierarchies },
        };
        f.level(&f.root.join("cpu,cpuacct"), true);
        f.level(&f.root.join("cpuset"), true);
        put(
            &f.root.join("cpuset"),
            &[("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")],
        );
        for name in [
            "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified",
        ] {
            f.level(&f.root.join(name), true);
        }
        f
    }

    fn manager(&self, path: &str) -> Manager {
        Manager::new(self.layout.clone(), Path::new(path))
    }

    /// Create the directories and files of every level of `rel` the way the kernel does.
    fn populate(&self, rel: &str) {
        let Layout::V1 { hierarchies } = &self.layout else {
            unreachable!()
        };
        for h in hierarchies {
            for dir in fsutil::path_chain(&h.mount_point, Path::new(rel))
                .iter()
                .skip(1)
            {
                self.level(dir, false);
            }
        }
    }

    fn level(&self, dir: &Path, is_root: bool) {
        let hier = self.hierarchy_of(dir);
        put(dir, &[("cgroup.procs", ""), ("tasks", "")]);
        match hier.as_str() {
            "cpu,cpuacct" => put(
                dir,
                &[
                    ("cpu.shares", "1024\n"),
                    ("cpu.cfs_period_us", "100000\n"),
                    ("cpu.cfs_quota_us", "-1\n"),
                    ("cpu.cfs_burst_us", "0\n"),
                    ("cpu.idle", "0\n"),
                    ("cpu.rt_period_us", "1000000\n"),
                    ("cpu.rt_runtime_us", "0\n"),
                    ("cpuacct.usage", "0\n"),
                ],
            ),
            "cpuset" => put(dir, &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")]),
            "memory" => put(
                dir,
                &[
                    ("memory.limit_in_bytes", MAX_V1),
                    ("memory.memsw.limit_in_bytes", MAX_V1),
                    ("memory.soft_limit_in_bytes", MAX_V1),
                    ("memory.swappiness", "60\n"),
                    ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
                ],
            ),
            "devices" => put(
                dir,
                &[
                    ("devices.allow", ""),
                    ("devices.deny", ""),
                    ("devices.list", "a *:* rwm\n"),
                ],
            ),
            "freezer" if !is_root => put(dir, &[("freezer.state", "THAWED\n")]),
            "blkio" => put(
                dir,
                &[
                    ("blkio.bfq.weight", "default 100\n"),
                    ("blkio.bfq.weight_device", ""),
                    ("blkio.throttle.read_bps_device", ""),
                    ("blkio.throttle.write_bps_device", ""),
                    ("blkio.throttle.read_iops_device", ""),
                    ("blkio.throttle.write_iops_device", ""),
                ],
            ),
            "pids" if !is_root => put(dir, &[("pids.max", "max\n")]),
            "unified" => put(
                dir,
                &[
                    ("cgroup.controllers", "hugetlb\n"),
                    ("cgroup.subtree_control", "\n"),
                    ("cgroup.freeze", "0\n"),
                    ("cgroup.events", "populated 0\nfrozen 0\n"),
                    ("hugetlb.2MB.max", "max\n"),
                    ("hugetlb.1GB.max", "max\n"),
                ],
            ),
            _ => {}
        }
    }

    fn hierarchy_of(&self, dir: &Path) -> String {
        let rel = dir.strip_prefix(&self.root).unwrap();
        rel.components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned()
    }

    fn file(&self, hier: &str, rel: &str, name: &str) -> String {
        read(self.root.join(hier).join(rel).join(name))
    }
}

fn full_resources() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 * 1024 * 1024i64)
                .swap(200 * 1024 * 1024i64)
                .reservation(50 * 1024 * 1024i64)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .cpus("1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64i64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8i64)
                    .minor(0i64)
                    .rate(1_048_576u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(3i64)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(-1i64)
                .minor(-1i64)
                .access("m")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap()
}

#[test]
fn v1_create_inherits_cpuset_along_the_path() {
    let f = V1Fixture::new();
    f.populate("coracle/c1");
    let m = f.manager("/coracle/c1");
    m.create().unwrap();
    for rel in ["coracle", "coracle/c1"] {
        assert_eq!(f.file("cpuset", rel, "cpuset.cpus"), "0-1");
        assert_eq!(f.file("cpuset", rel, "cpuset.mems"), "0");
    }
    // A level that already has values keeps them.
    fs::write(f.root.join("cpuset/coracle/c1/cpuset.cpus"), "1\n").unwrap();
    m.create().unwrap();
    assert_eq!(f.file("cpuset", "coracle/c1", "cpuset.cpus"), "1\n");
    // No controller was enabled in the hybrid's cgroup2 mount just by creating.
    assert_eq!(f.file("unified", "", "cgroup.subtree_control"), "\n");
    assert!(f.root.join("systemd/coracle/c1").is_dir());
}

#[test]
fn v1_apply_writes_every_controller() {
    let f = V1Fixture::new();
    f.populate("coracle/c1");
    let m = f.manager("coracle/c1");
    m.create().unwrap();
    m.apply(&full_resources()).unwrap();
    let c = "coracle/c1";
    assert_eq!(f.file("memory", c, "memory.limit_in_bytes"), "104857600");
    assert_eq!(
        f.file("memory", c, "memory.memsw.limit_in_bytes"),
        "209715200"
    );
    assert_eq!(
        f.file("memory", c, "memory.soft_limit_in_bytes"),
        "52428800"
    );
    assert_eq!(f.file("cpu,cpuacct", c, "cpu.shares"), "512");
    assert_eq!(f.file("cpu,cpuacct", c, "cpu.cfs_quota_us"), "50000");
    assert_eq!(f.file("cpu,cpuacct", c, "cpu.cfs_period_us"), "100000");
    assert_eq!(f.file("cpuset", c, "cpuset.cpus"), "1");
    assert_eq!(f.file("cpuset", c, "cpuset.mems"), "0");
    assert_eq!(f.file("pids", c, "pids.max"), "64");
    // No CFQ blkio.weight in the fixture (as on this host): BFQ's file is used.
    assert_eq!(f.file("blkio", c, "blkio.bfq.weight"), "300");
    assert_eq!(
        f.file("blkio", c, "blkio.throttle.read_bps_device"),
        "8:0 1048576"
    );
    // Each write replaces the file in a fixture: the last deny/allow line remains.
    assert_eq!(f.file("devices", c, "devices.deny"), "a *:* rwm");
    assert_eq!(f.file("devices", c, "devices.allow"), "c *:* m");
    // Untouched files keep their defaults.
    assert_eq!(f.file("memory", c, "memory.swappiness"), "60\n");
}

#[test]
fn v1_write_sequence_order() {
    let f = V1Fixture::new();
    f.populate("c");
    let Layout::V1 { hierarchies } = &f.layout else {
        unreachable!()
    };
    let plan = crate::resources::validate(&full_resources()).unwrap();
    let writes = v1::plan_writes(hierarchies, Path::new("c"), &plan).unwrap();
    let seq: Vec<(String, String)> = writes
        .iter()
        .map(|w| {
            (
                w.path.strip_prefix(&f.root).unwrap().display().to_string(),
                w.value.clone(),
            )
        })
        .collect();
    let expect = [
        ("memory/c/memory.limit_in_bytes", "104857600"),
        ("memory/c/memory.memsw.limit_in_bytes", "209715200"),
        ("memory/c/memory.soft_limit_in_bytes", "52428800"),
        ("cpu,cpuacct/c/cpu.shares", "512"),
        ("cpu,cpuacct/c/cpu.cfs_period_us", "100000"),
        ("cpu,cpuacct/c/cpu.cfs_quota_us", "50000"),
        ("cpuset/c/cpuset.cpus", "1"),
        ("cpuset/c/cpuset.mems", "0"),
        ("pids/c/pids.max", "64"),
        ("blkio/c/blkio.bfq.weight", "300"),
        ("blkio/c/blkio.throttle.read_bps_device", "8:0 1048576"),
        ("devices/c/devices.deny", "a"),
        ("devices/c/devices.deny", "a *:* rwm"),
        ("devices/c/devices.allow", "c 1:3 rwm"),
        ("devices/c/devices.allow", "c *:* m"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(seq, expect);
}

#[test]
fn v1_memory_order_when_raising_limits() {
    let f = V1Fixture::new();
    f.populate("c");
    let Layout::V1 { hierarchies } = &f.layout else {
        unreachable!()
    };
    fs::write(
        f.root.join("memory/c/memory.memsw.limit_in_bytes"),
        "209715200\n",
    )
    .unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(300 << 20i64)
                .swap(400 << 20i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let plan = crate::resources::validate(&r).unwrap();
    let files: Vec<String> = v1::plan_writes(hierarchies, Path::new("c"), &plan)
        .unwrap()
        .iter()
        .map(|w| w.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    );

    // Unlimited memory lifts memsw first.
    let r = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1i64).build().unwrap())
        .build()
        .unwrap();
    let plan = crate::resources::validate(&r).unwrap();
    let writes = v1::plan_writes(hierarchies, Path::new("c"), &plan).unwrap();
    let got: Vec<_> = writes
        .iter()
        .map(|w| {
            (
                w.path.file_name().unwrap().to_string_lossy().into_owned(),
                w.value.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("memory.memsw.limit_in_bytes".to_string(), "-1".to_string()),
            ("memory.limit_in_bytes".into(), "-1".into())
        ]
    );
}

#[test]
fn v1_validation_errors_leave_every_file_untouched() {
    let f = V1Fixture::new();
    f.populate("coracle/c1");
    let m = f.manager("/coracle/c1");
    m.create().unwrap();
    let before = snapshot(&f.root);
    // Valid memory and pids, but an invalid cpuset list at the end.
    let mut r = full_resources();
    r.set_cpu(Some(
        LinuxCpuBuilder::default()
            .shares(512u64)
            .cpus("0-2;4")
            .build()
            .unwrap(),
    ));
    let err = m.apply(&r).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("linux.resources.cpu.cpus") && text.contains("0-2;4"),
        "{text}"
    );
    assert_eq!(snapshot(&f.root), before);

    // A negative memory limit.
    r.set_memory(Some(
        LinuxMemoryBuilder::default().limit(-2i64).build().unwrap(),
    ));
    assert!(matches!(m.apply(&r), Err(CgroupError::Invalid { .. })));
    assert_eq!(snapshot(&f.root), before);

    // Valid values, but a file the host lacks (swap accounting off): still nothing written.
    fs::remove_file(f.root.join("memory/coracle/c1/memory.memsw.limit_in_bytes")).unwrap();
    let before = snapshot(&f.root);
    let err = m.apply(&full_resources()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("memory.memsw.limit_in_bytes") && text.contains("swap"),
        "{text}"
    );
    assert_eq!(snapshot(&f.root), before);

    // A file missing from another controller is caught before the memory writes.
    fs::remove_file(f.root.join("pids/coracle/c1/pids.max")).unwrap();
    let before = snapshot(&f.root);
    let mut r = full_resources();
    r.memory_mut().as_mut().unwrap().set_swap(None);
    let err = m.apply(&r).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Unsupported { field, .. } if field == "pids.max"),
        "{err}"
    );
    assert_eq!(snapshot(&f.root), before);
}

#[test]
fn v1_hugetlb_goes_to_the_hybrid_unified_mount() {
    let f = V1Fixture::new();
    f.populate("coracle/c1");
    let m = f.manager("/coracle/c1");
    m.create().unwrap();
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 << 20i64)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    m.apply(&r).unwrap();
    assert_eq!(f.file("unified", "", "cgroup.subtree_control"), "+hugetlb");
    assert_eq!(
        f.file("unified", "coracle", "cgroup.subtree_control"),
        "+hugetlb"
    );
    assert_eq!(
        f.file("unified", "coracle/c1", "cgroup.subtree_control"),
        "\n",
        "leaf untouched"
    );
    assert_eq!(
        f.file("unified", "coracle/c1", "hugetlb.2MB.max"),
        "4194304"
    );
}

#[test]
fn v1_add_task_freeze_and_pids() {
    let f = V1Fixture::new();
    f.populate("c");
    let m = f.manager("c");
    m.create().unwrap();
    m.add_task(4242).unwrap();
    for h in [
        "cpu,cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "systemd",
        "unified",
    ] {
        assert_eq!(f.file(h, "c", "cgroup.procs"), "4242", "{h}");
    }
    assert!(matches!(m.add_task(-3), Err(CgroupError::Invalid { .. })));
    fs::write(f.root.join("pids/c/cgroup.procs"), "4242\n4243\n").unwrap();
    fs::create_dir(f.root.join("pids/c/sub")).unwrap();
    fs::write(f.root.join("pids/c/sub/cgroup.procs"), "5000\n").unwrap();
    assert_eq!(m.pids().unwrap(), vec![4242, 4243, 5000]);

    // The fixture's freezer.state holds what was written, so it "settles" at once.
    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert_eq!(f.file("freezer", "c", "freezer.state"), "FROZEN");
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert_eq!(f.file("freezer", "c", "freezer.state"), "THAWED");
    assert!(!m.is_frozen().unwrap());
}

#[test]
fn v1_missing_controller_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::V1 {
        hierarchies: vec![Hierarchy {
            mount_point: dir.path().join("pids"),
            controllers: vec!["pids".into()],
            unified: false,
        }],
    };
    fs::create_dir_all(dir.path().join("pids/c")).unwrap();
    let m = Manager::new(layout, Path::new("c"));
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1i64 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.contains("linux.resources.memory") && err.contains("memory controller"),
        "{err}"
    );
    assert!(m.freeze().unwrap_err().to_string().contains("freezer"));
}

#[test]
fn v1_remove_all_hierarchies_and_empty_parent() {
    let f = V1Fixture::new();
    // Directories only (cgroupfs lets rmdir ignore the control files; a tempdir does not).
    let Layout::V1 { hierarchies } = &f.layout else {
        unreachable!()
    };
    for h in hierarchies {
        fs::create_dir_all(h.mount_point.join("coracle/a")).unwrap();
        fs::create_dir_all(h.mount_point.join("coracle/b")).unwrap();
    }
    let a = f.manager("/coracle/a");
    let b = f.manager("/coracle/b");
    a.remove().unwrap();
    a.remove().unwrap();
    for h in hierarchies {
        assert!(!h.mount_point.join("coracle/a").exists());
        assert!(h.mount_point.join("coracle/b").exists());
    }
    b.remove().unwrap();
    for h in hierarchies {
        assert!(
            !h.mount_point.join("coracle").exists(),
            "{}",
            h.mount_point.display()
        );
        assert!(h.mount_point.exists());
    }
}

// ---------------------------------------------------------------------- v2

struct V2Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl V2Fixture {
    fn new() -> V2Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        put(
            &root,
            &[
                (
                    "cgroup.controllers",
                    "cpuset cpu io memory hugetlb pids rdma misc\n",
                ),
                ("cgroup.subtree_control", "memory pids\n"),
                ("cgroup.procs", "1\n"),
            ],
        );
        V2Fixture { _dir: dir, root }
    }

    /// Levels of `rel`, each offering `offered` (what the parent enabled).
    fn populate(&self, rel: &str, offered: &str) {
        for dir in fsutil::path_chain(&self.root, Path::new(rel))
            .iter()
            .skip(1)
        {
            put(
                dir,
                &[
                    ("cgroup.controllers", offered),
                    ("cgroup.subtree_control", ""),
                    ("cgroup.procs", ""),
                    ("cgroup.freeze", "0\n"),
                    ("cgroup.events", "populated 0\nfrozen 0\n"),
                    ("cpu.weight", "100\n"),
                    ("cpu.max", "max 100000\n"),
                    ("cpu.max.burst", "0\n"),
                    ("cpuset.cpus", "\n"),
                    ("cpuset.mems", "\n"),
                    ("io.weight", "default 100\n"),
                    ("io.max", ""),
                    ("memory.max", "max\n"),
                    ("memory.swap.max", "max\n"),
                    ("memory.low", "0\n"),
                    ("pids.max", "max\n"),
                    ("hugetlb.2MB.max", "max\n"),
                ],
            );
        }
    }

    fn manager(&self, path: &str) -> Manager {
        Manager::new(
            Layout::V2 {
                root: self.root.clone(),
            },
            Path::new(path),
        )
    }

    fn file(&self, rel: &str, name: &str) -> String {
        read(self.root.join(rel).join(name))
    }
}

#[test]
fn v2_create_enables_controllers_in_ancestors_only() {
    let f = V2Fixture::new();
    f.populate("coracle/c1", "cpuset cpu io memory pids\n");
    let m = f.manager("/coracle/c1");
    m.create().unwrap();
    // Root already had memory and pids; hugetlb is offered by the root only.
    assert_eq!(
        f.file("", "cgroup.subtree_control"),
        "+cpuset +cpu +io +hugetlb"
    );
    assert_eq!(
        f.file("coracle", "cgroup.subtree_control"),
        "+cpuset +cpu +io +memory +pids"
    );
    assert_eq!(f.file("coracle/c1", "cgroup.subtree_control"), "");
}

#[test]
fn v2_apply_writes_converted_values() {
    let f = V2Fixture::new();
    f.populate("coracle/c1", "cpuset cpu io memory hugetlb pids\n");
    // Simulate an earlier create: everything already enabled, so apply writes only leaf files.
    fs::write(
        f.root.join("cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    fs::write(
        f.root.join("coracle/cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    let m = f.manager("coracle/c1");
    let mut r = full_resources();
    r.set_hugepage_limits(Some(vec![LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(-1i64)
        .build()
        .unwrap()]));
    m.apply(&r).unwrap();
    let c = "coracle/c1";
    assert_eq!(f.file(c, "memory.max"), "104857600");
    assert_eq!(
        f.file(c, "memory.swap.max"),
        "104857600",
        "swap = (memory+swap) - memory"
    );
    assert_eq!(f.file(c, "memory.low"), "52428800");
    assert_eq!(f.file(c, "cpu.weight"), "20", "1 + ((512-2)*9999)/262142");
    assert_eq!(f.file(c, "cpu.max"), "50000 100000");
    assert_eq!(f.file(c, "cpuset.cpus"), "1");
    assert_eq!(f.file(c, "cpuset.mems"), "0");
    assert_eq!(f.file(c, "pids.max"), "64");
    assert_eq!(f.file(c, "io.weight"), "2930", "1 + ((300-10)*9999)/990");
    assert_eq!(f.file(c, "io.max"), "8:0 rbps=1048576");
    assert_eq!(f.file(c, "hugetlb.2MB.max"), "max");
    // Device rules are not written anywhere on v2 (warned about instead).
    assert_eq!(
        f.file("", "cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids\n"
    );
}

#[test]
fn v2_apply_enables_what_it_needs_and_uses_bfq() {
    let f = V2Fixture::new();
    f.populate("c", "memory pids\n");
    fs::write(f.root.join("c/io.bfq.weight"), "default 100\n").unwrap();
    let m = f.manager("c");
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
        .memory(LinuxMemoryBuilder::default().limit(-1i64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.apply(&r).unwrap();
    assert_eq!(f.file("", "cgroup.subtree_control"), "+cpu +io");
    assert_eq!(
        f.file("c", "cpu.max"),
        "max 50000",
        "period alone keeps the quota"
    );
    assert_eq!(f.file("c", "pids.max"), "max");
    assert_eq!(f.file("c", "memory.max"), "max");
    assert_eq!(f.file("c", "memory.swap.max"), "max");
    assert_eq!(f.file("c", "io.bfq.weight"), "300");
    assert_eq!(f.file("c", "io.weight"), "default 100\n");
}

#[test]
fn v2_errors_before_any_write() {
    let f = V2Fixture::new();
    f.populate("c", "cpuset cpu io memory pids\n");
    let m = f.manager("c");
    let before = snapshot(&f.root);
    let mut r = full_resources();
    r.set_pids(Some(
        LinuxPidsBuilder::default().limit(5i64).build().unwrap(),
    ));
    r.set_cpu(Some(
        LinuxCpuBuilder::default().quota(10i64).build().unwrap(),
    ));
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.contains("linux.resources.cpu.quota") && err.contains("10"),
        "{err}"
    );
    assert_eq!(snapshot(&f.root), before);

    // A controller nobody offers: a clear error, nothing written.
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(0i64)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    fs::write(f.root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let before = snapshot(&f.root);
    let err = m.apply(&r).unwrap_err().to_string();
    assert!(
        err.contains("hugetlb controller") && err.contains("cgroup.controllers"),
        "{err}"
    );
    assert_eq!(snapshot(&f.root), before);

    // Realtime limits do not exist on v2.
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(m.apply(&r), Err(CgroupError::Unsupported { .. })));
    assert_eq!(snapshot(&f.root), before);
}

#[test]
fn v2_freeze_add_task_pids_remove() {
    let f = V2Fixture::new();
    f.populate("coracle/c1", "memory pids\n");
    let m = f.manager("/coracle/c1");
    m.add_task(0).unwrap();
    assert_eq!(
        f.file("coracle/c1", "cgroup.procs"),
        "0",
        "0 = the writer itself"
    );
    m.add_task(77).unwrap();
    assert_eq!(f.file("coracle/c1", "cgroup.procs"), "77");
    assert_eq!(m.pids().unwrap(), vec![77]);
    // The kernel would update cgroup.events; the fixture is preset to the outcome.
    fs::write(
        f.root.join("coracle/c1/cgroup.events"),
        "populated 1\nfrozen 1\n",
    )
    .unwrap();
    m.freeze().unwrap();
    assert_eq!(f.file("coracle/c1", "cgroup.freeze"), "1");
    assert!(m.is_frozen().unwrap());
    fs::write(
        f.root.join("coracle/c1/cgroup.events"),
        "populated 1\nfrozen 0\n",
    )
    .unwrap();
    m.thaw().unwrap();
    assert_eq!(f.file("coracle/c1", "cgroup.freeze"), "0");
    assert!(!m.is_frozen().unwrap());
}
