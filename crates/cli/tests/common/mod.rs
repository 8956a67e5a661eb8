//! The throwaway host the CLI's end-to-end tests run in: its own network and mount namespace
//! (held by a `sleep` the test starts and kills by PID), roots, bridge, subnet and cgroup
//! parent, with the test image loaded; every container is removed when it is dropped.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// The helper binaries `coracle` starts must sit next to it (cargo builds them with the
/// workspace; scripts/test.sh runs `cargo build --workspace` first).
pub fn check_siblings() {
    let dir = Path::new(env!("CARGO_BIN_EXE_coracle"))
        .parent()
        .unwrap()
        .to_path_buf();
    for bin in ["coracle-shim", "coracle-runtime", "coracle-dns"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: run `cargo build --workspace` first",
            dir.join(bin).display()
        );
    }
}

/// One OCI layout per test binary: `box` = busybox whose default command sleeps.
pub fn layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-containers-layout");
        if !dir.join("index.json").is_file() {
            let _ = fs::remove_dir_all(&dir);
            let out = Command::new(repo_root().join("scripts/mkimage.sh"))
                .arg(&dir)
                .args(["box", "--expose", "80/tcp", "--", "sleep", "3600"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "mkimage.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A throwaway host: its own network and mount namespace, roots, bridge, subnet, cgroup.
pub struct Host {
    holder: Child,
    pub dir: tempfile::TempDir,
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    /// Picks the subnets of user-defined networks ([`Host::net_subnet`]).
    tag: usize,
    n: usize,
    pub cgroup_parent: String,
}

impl Host {
    /// A new throwaway host; `kind` names the test file in its bridge and cgroup names.
    pub fn new(kind: &str) -> Host {
        check_siblings();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = (std::process::id() as usize * 7 + n) % 200 + 20;
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "600",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let host = Host {
            holder,
            dir: tempfile::tempdir().unwrap(),
            bridge: format!("crt{kind}{n}"),
            subnet: format!("10.{tag}.{n}.0/24"),
            gateway: format!("10.{tag}.{n}.1"),
            tag,
            n,
            cgroup_parent: format!("/coracle-test-{kind}-{}-{n}", std::process::id()),
        };
        // Wait until unshare has exec'd sleep in the new namespaces.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::read_link(format!("/proc/{}/ns/net", host.holder.id())).ok()
            == fs::read_link("/proc/self/ns/net").ok()
        {
            assert!(
                Instant::now() < deadline,
                "unshare did not enter a new namespace"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        host.sh("ip link set lo up");
        let out = host.coracle(&["load", "-i", layout().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        host
    }

    pub fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--net", "--mount", "--"]);
        c.stdin(Stdio::null());
        c
    }

    /// A shell command in the throwaway host; returns stdout, insisting on success.
    pub fn sh(&self, script: &str) -> String {
        let out = self.enter().args(["sh", "-c", script]).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn coracle_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.enter();
        c.arg(env!("CARGO_BIN_EXE_coracle"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--run-root")
            .arg(self.dir.path().join("run"))
            .args(["--bridge", &self.bridge, "--default-subnet", &self.subnet])
            .args(["--cgroup-parent", &self.cgroup_parent])
            .args(args);
        c
    }

    pub fn coracle(&self, args: &[&str]) -> Output {
        self.coracle_cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.coracle(args);
        assert!(
            out.status.success(),
            "coracle {args:?} ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.coracle(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "coracle {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// Waits (bounded) until `cond` holds for the container's inspect output.
    pub fn wait_for(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.inspect(name);
            if cond(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Host {
    /// A free /24 for the k-th user-defined network of this host.
    pub fn net_subnet(&self, k: usize) -> String {
        format!("10.{}.{}.0/24", self.tag, 100 + self.n * 4 + k)
    }

    /// Command lines of Coracle's processes (shims, `coracle` commands) running in this
    /// host's network namespace.
    pub fn coracle_processes(&self) -> Vec<String> {
        let Ok(netns) = fs::read_link(format!("/proc/{}/ns/net", self.holder.id())) else {
            return Vec::new();
        };
        pids_in_netns(&netns, self.holder.id())
            .into_iter()
            .filter_map(|pid| fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("coracle"))
            .collect()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// `coracle exec` retried for a while (DNS and ARP may take a moment after start).
    pub fn exec_eventually(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut full = vec!["exec"];
            full.extend_from_slice(args);
            let out = self.coracle(&full);
            if out.status.success() {
                return String::from_utf8(out.stdout).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "coracle exec {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Remove every container (stops their shims), then end the namespace holder.
        if let Ok(out) = self.coracle_cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.coracle_cmd(&["rm", "-f", id]).output();
            }
        }
        // Processes of this host can outlive `rm -f`: a shim's exit command for a container
        // that had just exited on its own. They write to the roots below, so they must be
        // gone before the roots are removed.
        let netns = fs::read_link(format!("/proc/{}/ns/net", self.holder.id())).ok();
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Some(pids) = netns.as_ref().map(|ns| pids_in_netns(ns, self.holder.id())) {
            if pids.is_empty() || Instant::now() >= deadline {
                if !pids.is_empty() {
                    eprintln!("processes of the throwaway host still run: {pids:?}");
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for sub in [
            "memory",
            "pids",
            "cpu,cpuacct",
            "freezer",
            "devices",
            "blkio",
            "cpuset",
            "unified",
        ] {
            let _ = fs::remove_dir(format!("/sys/fs/cgroup/{sub}{}", self.cgroup_parent));
        }
        // TempDir's own drop ignores errors; a root that cannot be removed is a leak to name.
        if let Err(e) = fs::remove_dir_all(self.dir.path()) {
            if !std::thread::panicking() {
                panic!("removing {}: {e}", self.dir.path().display());
            }
        }
    }
}

/// The processes, other than `holder`, whose network namespace is `netns`.
fn pids_in_netns(netns: &Path, holder: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != holder)
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_deref() == Some(netns))
        .collect()
}
