//! Containers end to end, driven through the `coracle` binary as a user drives it, each test in
//! its own throwaway host (network and mount namespace held by a `sleep` we start and kill by
//! PID) with its own roots, bridge, subnet and cgroup parent. What is checked is what the seed
//! article shows: PID 1, the hostname, `eth0` and its default route, the veth on the bridge,
//! PPID 0 for an exec'd process, the shim above the container's PID 1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// The helper binaries `coracle` starts must sit next to it (cargo builds them with the
/// workspace; scripts/test.sh runs `cargo build --workspace` first).
fn check_siblings() {
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
fn layout() -> &'static Path {
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
struct Host {
    holder: Child,
    dir: tempfile::TempDir,
    bridge: String,
    subnet: String,
    gateway: String,
    cgroup_parent: String,
}

impl Host {
    fn new() -> Host {
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
            bridge: format!("crt{}x{n}", std::process::id() % 10000),
            subnet: format!("10.{tag}.{n}.0/24"),
            gateway: format!("10.{tag}.{n}.1"),
            cgroup_parent: format!("/coracle-test-cli-{}-{n}", std::process::id()),
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

    fn enter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--net", "--mount", "--"]);
        c.stdin(Stdio::null());
        c
    }

    /// A shell command in the throwaway host; returns stdout, insisting on success.
    fn sh(&self, script: &str) -> String {
        let out = self.enter().args(["sh", "-c", script]).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn coracle_cmd(&self, args: &[&str]) -> Command {
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

    fn coracle(&self, args: &[&str]) -> Output {
        self.coracle_cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
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

    fn fails(&self, args: &[&str], code: i32) -> String {
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

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// Waits (bounded) until `cond` holds for the container's inspect output.
    fn wait_for(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
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

impl Drop for Host {
    fn drop(&mut self) {
        // Remove every container (stops their shims), then end the namespace holder.
        if let Ok(out) = self.coracle_cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.coracle_cmd(&["rm", "-f", id]).output();
            }
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
    }
}

#[test]
fn the_seed_scenario_pid1_hostname_eth0_route_veth_published_port_and_the_shim_tree() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let id = h
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "box",
            "sh",
            "-c",
            "mkdir -p /www && echo seed-page > /www/index.html && exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let short = &id[..12];

    // PID 1 is the container's process; an exec'd process has PPID 0.
    let ps = h.ok(&["exec", "web", "ps", "-o", "pid,ppid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.iter().any(|r| r[0] == "1" && r[2] == "httpd"), "{ps}");
    assert!(
        rows.iter().any(|r| r[1] == "0" && r[2] == "ps"),
        "exec'd ps has PPID 0: {ps}"
    );
    // The hostname is the short id.
    assert_eq!(h.ok(&["exec", "web", "hostname"]).trim(), short);
    // eth0 has the first free address of the subnet and a default route via the gateway.
    let inspect = h.inspect("web");
    let ip = inspect["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ip.starts_with(h.subnet.rsplit_once('.').unwrap().0),
        "{ip} in {}",
        h.subnet
    );
    let addr = h.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {ip}/24")), "{addr}");
    let route = h.ok(&["exec", "web", "ip", "route"]);
    assert!(
        route.contains(&format!("default via {}", h.gateway)),
        "{route}"
    );
    assert_eq!(inspect["NetworkSettings"]["Gateway"], h.gateway);
    assert!(inspect["NetworkSettings"]["MacAddress"]
        .as_str()
        .unwrap()
        .starts_with("02:42:"));
    // On the host: the bridge and a veth enslaved to it.
    let links = h.sh(&format!("ip -o link show master {}", h.bridge));
    assert!(links.contains(": veth"), "{links}");
    // The published port answers from the host, on loopback and on the bridge address.
    for addr in ["127.0.0.1", h.gateway.as_str()] {
        let page = h.sh(&format!(
            "busybox timeout 5 busybox wget -qO- http://{addr}:8080/"
        ));
        assert_eq!(page, "seed-page\n", "via {addr}");
    }
    let port = h.ok(&["port", "web"]);
    assert_eq!(port.trim(), "80/tcp -> 0.0.0.0:8080");
    // The process tree: the container's PID 1 is a child of its own coracle-shim.
    let pid = inspect["State"]["Pid"].as_i64().unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let parent = fs::read(format!("/proc/{ppid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&parent).contains("coracle-shim"),
        "parent of PID 1: {:?}",
        String::from_utf8_lossy(&parent)
    );

    let ps = h.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(
        ps.contains(short)
            && ps.contains("Up ")
            && ps.contains("0.0.0.0:8080->80/tcp")
            && ps.contains(" web"),
        "{ps}"
    );

    // rm -f removes the container, its veth, netns pin, mount and cgroup.
    assert_eq!(h.ok(&["rm", "-f", "web"]).trim(), "web");
    assert_eq!(h.ok(&["ps", "-aq"]), "");
    let links = h.sh(&format!("ip -o link show master {} || true", h.bridge));
    assert!(!links.contains("veth"), "veth left: {links}");
    let mounts = h.sh("cat /proc/self/mountinfo");
    assert!(!mounts.contains(&id), "mounts left: {mounts}");
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{}/{id}", h.cgroup_parent)).exists());
}

#[test]
fn a_foreground_run_streams_output_returns_the_exit_code_and_rm_removes_it() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let out = h.coracle(&[
        "run",
        "--rm",
        "box",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("to-err\n"));
    assert_eq!(h.ok(&["ps", "-aq"]), "", "--rm left the container");

    // Not found: 127; not executable: 126; both leave a created container behind (as docker).
    let err = h.fails(&["run", "--name", "nf", "box", "no-such-command"], 127);
    assert!(err.contains("no-such-command"), "{err}");
    let err = h.fails(&["run", "--rm", "box", "/etc/passwd"], 126);
    assert!(!err.is_empty());
    h.ok(&["rm", "-f", "nf"]);

    // Logs survive the container's end (and its shim's).
    h.ok(&[
        "run",
        "--name",
        "talker",
        "box",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let out = h.coracle(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    assert_eq!(h.ok(&["logs", "--tail", "1", "talker"]), "");
    let inspect = h.inspect("talker");
    assert_eq!(inspect["State"]["Status"], "exited");
    assert_eq!(inspect["State"]["ExitCode"], 0);
    assert_eq!(h.ok(&["wait", "talker"]).trim(), "0");
}

#[test]
fn attach_streams_live_output_and_stdin() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    h.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "box",
        "sh",
        "-c",
        "while read l; do echo got:$l; echo err:$l >&2; done",
    ]);
    let mut child = h
        .coracle_cmd(&["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\n").unwrap();
    } // EOF on stdin ends the loop, and the container.
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:one\ngot:two\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err:one\nerr:two\n");
    assert_eq!(out.status.code(), Some(0));
    let err = h.fails(&["attach", "echoer"], 1);
    assert!(
        err.contains("cannot attach to a stopped container"),
        "{err}"
    );
}

#[test]
fn network_modes_host_none_and_container() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    // none: only lo.
    let links = h.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "box",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"));
    // host: the throwaway host's own interfaces (its lo, and the bridge once one exists).
    h.ok(&["run", "-d", "--name", "first", "box"]);
    let links = h.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "box",
        "ip",
        "-o",
        "link",
    ]);
    assert!(links.contains(&h.bridge), "{links}");
    // container:<name>: the same eth0 as the other container.
    let theirs = h.ok(&["exec", "first", "ip", "-4", "-o", "addr", "show", "eth0"]);
    let ours = h.ok(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "box",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let addr = |s: &str| s.split_whitespace().nth(3).map(String::from);
    assert_eq!(addr(&ours), addr(&theirs));
    let err = h.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:nobody",
            "box",
            "true",
        ],
        125,
    );
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn limits_are_enforced_inside() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let id = h
        .ok(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "box",
        ])
        .trim()
        .to_string();
    let cg = |ctrl: &str, file: &str| {
        fs::read_to_string(format!(
            "/sys/fs/cgroup/{ctrl}{}/{id}/{file}",
            h.cgroup_parent
        ))
        .unwrap_or_else(|e| panic!("{ctrl}/{file}: {e}"))
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes").trim(),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(cg("pids", "pids.max").trim(), "20");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us").trim(), "50000");
    // Docker's default capabilities: no CAP_SYS_ADMIN, so mounting is refused.
    let out = h.coracle(&["exec", &id, "mount", "-t", "tmpfs", "x", "/mnt"]);
    assert_ne!(out.status.code(), Some(0));
    let status = h.ok(&[
        "exec",
        &id,
        "grep",
        "-E",
        "^(CapEff|Seccomp|NoNewPrivs):",
        "/proc/self/status",
    ]);
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // The pids limit bites: 30 background sleeps cannot all start.
    let out = h.coracle(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 30); do sleep 30 & done 2>&1; wait",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{text}"
    );
}

#[test]
fn restart_on_failure_fires_then_gives_up() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    h.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "box",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    let v = h.wait_for("flaky", "two restarts and a final exit", |v| {
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    assert_eq!(v["State"]["ExitCode"], 1);
    let out = h.coracle(&["logs", "flaky"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run\nrun\nrun\n");
}

#[test]
fn a_killed_shim_leaves_the_container_recorded_and_rm_f_cleans_it() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let id = h.ok(&["run", "-d", "box"]).trim().to_string();
    let shim_pid: i32 = fs::read_to_string(
        h.dir
            .path()
            .join("run/shims")
            .join(&id[..12])
            .join("shim.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::metadata(format!("/proc/{shim_pid}")).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let v = h.inspect(&id);
    assert_eq!(v["State"]["Status"], "dead", "{v:#}");
    let ps = h.ok(&["ps", "-a"]);
    assert!(ps.contains("Dead"), "{ps}");
    h.ok(&["rm", "-f", &id]);
    assert_eq!(h.ok(&["ps", "-aq"]), "");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/pids{}/{id}", h.cgroup_parent)).exists(),
        "cgroup left"
    );
}

#[test]
fn twenty_concurrent_runs_get_twenty_addresses() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let children: Vec<Child> = (0..20)
        .map(|i| {
            h.coracle_cmd(&["run", "-d", "--name", &format!("c{i}"), "box"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ips: Vec<String> = (0..20)
        .map(|i| {
            h.inspect(&format!("c{i}"))["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert_eq!(h.ok(&["ps", "-q"]).lines().count(), 20);
}

#[test]
fn bad_input_gets_the_right_code_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new();
    let err = h.fails(&["run", "--pull", "never", "nosuchimage"], 125);
    assert!(err.contains("No such image: nosuchimage"), "{err}");
    let err = h.fails(&["run", "-p", "99999:80", "box", "true"], 125);
    assert!(err.contains("99999"), "{err}");
    let err = h.fails(&["run", "--memory", "lots", "box", "true"], 125);
    assert!(err.contains("invalid size"), "{err}");
    let err = h.fails(&["run", "--network", "nonet", "box", "true"], 125);
    assert!(err.contains("nonet"), "{err}");
    h.ok(&["create", "--name", "taken", "box"]);
    let err = h.fails(&["run", "--name", "taken", "box", "true"], 125);
    assert!(err.contains("is already in use"), "{err}");
    let err = h.fails(&["rm", "nobody"], 1);
    assert!(err.contains("No such container: nobody"), "{err}");
    let err = h.fails(&["exec", "taken", "true"], 1);
    assert!(err.contains("is not running"), "{err}");
    // Only the created container remains, and no veth was made for the failures.
    let all = h.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "taken");
    let links = h.sh("ip -o link");
    assert!(!links.contains("veth"), "{links}");
}
