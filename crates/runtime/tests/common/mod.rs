//! Harness shared by the CLI integration tests of `coracle-runtime`.
//!
//! The tests drive the runtime only through its runc-compatible command line, so the same suite
//! runs against runc (`CORACLE_TEST_RUNTIME=/usr/sbin/runc`) to prove the tests right, and
//! against Coracle's binary (the default) to check the runtime.
//!
//! Isolation, per test:
//! - its own `--root` state directory, container id `ct-<test>-<pid>`, bundle directory and
//!   cgroup path `/coracle-test/<id>`;
//! - every runtime invocation runs inside a throwaway "host" network and mount namespace
//!   (`unshare --net --mount --propagation private --`), so nothing a runtime mounts or
//!   configures can reach the real host;
//! - the [`Ct`] guard force-deletes the container, kills helper processes it started, and checks
//!   that the container's cgroup directories are gone.
//!
//! The base root filesystem (static busybox) is built once and shared read-only by every test of
//! a test binary that is running at the same time; it is removed when the last test using it
//! finishes (a `static OnceLock<TempDir>` would never be dropped and would leak a directory in
//! /tmp for every test binary). Tests that need to write to `/` take a private copy.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

/// Parent of every test container's cgroup, in every v1 hierarchy (and in v2 on pure-v2 hosts).
pub const CGROUP_PARENT: &str = "coracle-test";
/// Upper bound for one runtime invocation. Not a timing assertion: it only stops a hung runtime
/// from hanging the suite.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound when polling for a state change (status, process exit, cgroup removal).
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The runtime under test: `$CORACLE_TEST_RUNTIME` if set, else the crate's own binary.
pub fn runtime() -> PathBuf {
    match std::env::var_os("CORACLE_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_coracle-runtime")),
    }
}

/// True when the runtime under test is Coracle's; gates assertions on Coracle's own error
/// messages and on refusals that runc does not make.
pub fn is_coracle() -> bool {
    runtime()
        .file_name()
        .map(|n| n.to_string_lossy().contains("coracle"))
        .unwrap_or(false)
}

/// Returns true (and says why) when the test must be skipped because it is not running as root.
pub fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        false
    } else {
        eprintln!("skipped: needs root");
        true
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub what: String,
    /// Exit code; `None` when killed by a signal or timed out.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the full output unless the command exited 0.
    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok(), "expected success:\n{self}");
        self
    }

    /// Panics with the full output unless the command exited non-zero (a timeout or a kill by
    /// signal is not a refusal and also panics).
    #[track_caller]
    pub fn expect_fail(self) -> Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a non-zero exit:\n{self}"
        );
        self
    }

    /// stdout with surrounding whitespace removed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// stdout and stderr together, for messages that may go to either.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "`{}`: exit code {:?}, signal {:?}, timed out {}",
            self.what, self.code, self.signal, self.timed_out
        )?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}

/// Runs `cmd` to completion (stdin closed) with stdout and stderr captured in anonymous files,
/// not pipes: a detached container inherits the runtime's stdio and would hold a pipe open long
/// after the runtime exits. A command still running at `timeout` is killed by its PID.
pub fn run_command(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut out = tempfile::tempfile().expect("anonymous file for stdout");
    let mut err = tempfile::tempfile().expect("anonymous file for stderr");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("waitpid after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |f: &mut File| {
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).expect("seek captured output");
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).expect("read captured output");
        s.push_str(&String::from_utf8_lossy(&bytes));
        s
    };
    use std::os::unix::process::ExitStatusExt;
    Output {
        what,
        code: if timed_out { None } else { status.code() },
        signal: status.signal(),
        timed_out,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// A command that runs `program` in a fresh, throwaway network and mount namespace.
pub fn host_ns_command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(program);
    c
}

/// The namespace link (`pid:[4026531836]`) of one of this test process's namespaces.
pub fn own_ns(kind: &str) -> String {
    ns_of("self", kind)
}

/// The namespace link of process `pid` (or "self").
pub fn ns_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Polls `f` until it returns true or [`POLL_DEADLINE`] passes; returns the last result.
pub fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + POLL_DEADLINE;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if `pid` no longer exists or is a zombie (it has exited and waits to be reaped by
/// whichever process inherited it).
pub fn pid_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// Bit number of a capability name (`CAP_CHOWN` -> 0), for computing expected CapEff masks.
pub fn cap_bit(name: &str) -> u32 {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The value of `Field:` in a /proc/<pid>/status text.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

// ---------------------------------------------------------------------------------------------
// Shared base image

struct Base {
    _dir: TempDir,
    rootfs: PathBuf,
    /// config.json as the image builder writes it; every test edits its own copy.
    template: Value,
}

struct Shared {
    /// Tests of this binary currently holding a [`Ct`].
    live: usize,
    base: Option<Arc<Base>>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    live: 0,
    base: None,
});

fn shared() -> MutexGuard<'static, Shared> {
    // A test that panicked while holding the lock leaves nothing half-done that matters here.
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

fn acquire_base() -> Arc<Base> {
    let mut s = shared();
    if s.base.is_none() {
        s.base = Some(Arc::new(build_base()));
    }
    s.live += 1;
    s.base.clone().expect("base just built")
}

/// Called by the last guard of each test. When no test of this binary is running, the base
/// rootfs is removed and the now-empty `coracle-test` cgroup parents are removed too. Holding
/// the lock while doing so means no test of this binary can be creating a cgroup under them.
fn release_base(base: Arc<Base>) {
    let mut s = shared();
    drop(base);
    s.live -= 1;
    if s.live == 0 {
        s.base = None;
        for dir in cgroup_hierarchies() {
            // Fails harmlessly (EBUSY/ENOTEMPTY/ENOENT) if another process still uses it.
            let _ = fs::remove_dir(dir.join(CGROUP_PARENT));
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The image builder: `$CORACLE_TEST_BUNDLE_SCRIPT` (set by scripts/test.sh), else the
/// repository's scripts/mkbundle.sh.
fn mkbundle_script() -> PathBuf {
    match std::env::var_os("CORACLE_TEST_BUNDLE_SCRIPT") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbundle.sh"),
    }
}

/// The mapped root of a user-namespace container is an unprivileged host uid, and it must
/// walk the path to the rootfs. A TMPDIR made by `mktemp -d` (scripts/test.sh does that) is
/// 0700; give others search permission on it (not read: its entries cannot be listed).
fn make_tmpdir_searchable() {
    let tmp = std::env::temp_dir();
    if let Ok(meta) = fs::metadata(&tmp) {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(mode | 0o011));
        }
    }
}

fn build_base() -> Base {
    make_tmpdir_searchable();
    let dir = tempfile::Builder::new()
        .prefix("coracle-test-base-")
        .tempdir()
        .expect("temp dir for the base image");
    // Readable by the mapped root of user-namespace tests (host uid 100000).
    chmod(dir.path(), 0o755);
    let script = mkbundle_script();
    let (rootfs, template) = if script.exists() {
        let out_dir = dir.path().join("bundle");
        let out = run_command(
            Command::new(&script).arg(&out_dir),
            Duration::from_secs(300),
        );
        assert!(out.ok(), "scripts/mkbundle.sh failed:\n{out}");
        let config = fs::read_to_string(out_dir.join("config.json"))
            .expect("mkbundle.sh wrote no config.json");
        let template: Value = serde_json::from_str(&config).expect("mkbundle config.json parses");
        chmod(&out_dir, 0o755);
        (out_dir.join("rootfs"), template)
    } else {
        let rootfs = dir.path().join("rootfs");
        build_busybox_rootfs(&rootfs);
        (rootfs, default_config())
    };
    // Mount points the tests use; created here, once, because the shared rootfs is read-only
    // to every container (a runtime creating them would race with other containers).
    for d in ["proc", "dev", "sys", "tmp", "etc", "mnt", "root"] {
        fs::create_dir_all(rootfs.join(d)).expect("mount point in base rootfs");
    }
    Base {
        _dir: dir,
        rootfs,
        template,
    }
}

/// Fallback image builder (used while scripts/mkbundle.sh does not exist): a static busybox
/// with a symlink per applet.
fn build_busybox_rootfs(rootfs: &Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox-static is installed (apt-get install busybox-static)");
    fs::create_dir_all(rootfs.join("bin")).expect("mkdir rootfs/bin");
    fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox into rootfs");
    chmod(&rootfs.join("bin/busybox"), 0o755);
    let list = run_command(
        Command::new(busybox).arg("--list-full"),
        Duration::from_secs(10),
    )
    .expect_ok();
    for applet in list.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if applet == "bin/busybox" {
            continue;
        }
        let link = rootfs.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).expect("mkdir for applet");
        }
        if link.symlink_metadata().is_err() {
            symlink("/bin/busybox", &link).expect("applet symlink");
        }
    }
}

/// The fallback config.json: what `runc spec` writes, with the changes the image builder
/// makes (no terminal, hostname "coracle", a cgroup namespace).
pub fn default_config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "coracle",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                          "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Every mounted cgroup hierarchy: `/sys/fs/cgroup/<name>` on v1/hybrid hosts, plus
/// `/sys/fs/cgroup` itself on a pure v2 host.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                // Skip the cpu,cpuacct-style symlinks; their targets are listed themselves.
                .filter(|p| p.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

// ---------------------------------------------------------------------------------------------
// The per-test container guard

/// One test's container: its id, state root, bundle and spec. Dropping it force-deletes the
/// container and checks that its cgroups are gone.
pub struct Ct {
    pub id: String,
    pub spec: Value,
    root: TempDir,
    bundle: TempDir,
    base: Option<Arc<Base>>,
    helpers: Vec<Child>,
}

impl Ct {
    /// A container named after the test, using the shared read-only rootfs.
    pub fn new(test: &str) -> Ct {
        let base = acquire_base();
        let id = format!("ct-{test}-{}", std::process::id());
        let root = tempfile::Builder::new()
            .prefix("coracle-test-root-")
            .tempdir()
            .expect("temp dir for --root");
        let bundle = tempfile::Builder::new()
            .prefix("coracle-test-bundle-")
            .tempdir()
            .expect("temp dir for the bundle");
        chmod(bundle.path(), 0o755);
        let mut spec = base.template.clone();
        spec["root"] = json!({ "path": base.rootfs, "readonly": true });
        spec["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{id}"));
        Ct {
            id,
            spec,
            root,
            bundle,
            base: Some(base),
            helpers: Vec::new(),
        }
    }

    pub fn bundle(&self) -> &Path {
        self.bundle.path()
    }

    pub fn state_root(&self) -> &Path {
        self.root.path()
    }

    /// The rootfs the spec currently points at, as a host path.
    pub fn rootfs(&self) -> PathBuf {
        let p = PathBuf::from(self.spec["root"]["path"].as_str().expect("root.path"));
        if p.is_absolute() {
            p
        } else {
            self.bundle().join(p)
        }
    }

    /// Gives the container a private, writable copy of the base rootfs at `<bundle>/rootfs`
    /// (root.readonly is left as it is) and returns its host path.
    pub fn private_rootfs(&mut self) -> PathBuf {
        let src = self.base.as_ref().expect("base").rootfs.clone();
        let dst = self.bundle().join("rootfs");
        run_command(
            Command::new("cp").arg("-a").arg(&src).arg(&dst),
            Duration::from_secs(60),
        )
        .expect_ok();
        self.spec["root"]["path"] = json!("rootfs");
        dst
    }

    /// A directory under the bundle, created on first use, for files the test shares with the
    /// container or with hooks.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.bundle().join(name);
        fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.spec["process"]["args"] = json!(args);
    }

    pub fn add_mount(&mut self, mount: Value) {
        self.spec["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .push(mount);
    }

    /// The cgroupsPath-relative directory of this container in hierarchy `dir`.
    pub fn cgroup_dir(&self, hierarchy: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(hierarchy)
            .join(CGROUP_PARENT)
            .join(&self.id)
    }

    pub fn save(&self) {
        fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.spec).expect("serialize spec"),
        )
        .expect("write config.json");
    }

    /// `RUNTIME --root <root> ARGS...` inside a throwaway host namespace, not yet run.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = host_ns_command(runtime());
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs the runtime with `args` (after `--root`).
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run_command(&mut self.command(args), COMMAND_TIMEOUT)
    }

    /// Writes config.json, then `create --bundle B ID` plus `extra` options.
    pub fn create_with(&self, extra: &[&str]) -> Output {
        self.save();
        let mut args: Vec<&OsStr> = vec!["create".as_ref(), "--bundle".as_ref()];
        args.push(self.bundle().as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        args.push(self.id.as_ref());
        self.rt(&args)
    }

    pub fn create(&self) -> Output {
        self.create_with(&[])
    }

    pub fn start(&self) -> Output {
        self.rt(&["start", &self.id])
    }

    /// Writes config.json, then runs the container in the foreground (`run --bundle B ID`);
    /// with terminal false the container's stdio is the runtime's, so the output is the
    /// container's.
    pub fn run(&self) -> Output {
        self.save();
        self.rt(&[
            OsStr::new("run"),
            OsStr::new("--bundle"),
            self.bundle().as_os_str(),
            OsStr::new(&self.id),
        ])
    }

    /// Sets the process to `sh -c SCRIPT` and runs it in the foreground.
    pub fn sh(&mut self, script: &str) -> Output {
        self.set_args(&["sh", "-c", script]);
        self.run()
    }

    /// `run --detach`.
    pub fn run_detached(&self) -> Output {
        self.save();
        self.rt(&[
            OsStr::new("run"),
            OsStr::new("--detach"),
            OsStr::new("--bundle"),
            self.bundle().as_os_str(),
            OsStr::new(&self.id),
        ])
    }

    /// Creates and starts a long-running container (`sleep`), asserting both steps succeed.
    pub fn start_sleeper(&mut self) {
        self.set_args(&["sleep", "3600"]);
        self.create().expect_ok();
        self.start().expect_ok();
        assert!(
            self.wait_status("running"),
            "container did not reach running"
        );
    }

    /// `state ID`, parsed; Err with the output if the command failed or printed no JSON.
    pub fn state(&self) -> Result<Value, Output> {
        let out = self.rt(&["state", &self.id]);
        if !out.ok() {
            return Err(out);
        }
        serde_json::from_str(&out.stdout).map_err(|_| out)
    }

    pub fn status(&self) -> Option<String> {
        self.state()
            .ok()
            .and_then(|s| s["status"].as_str().map(str::to_owned))
    }

    /// Polls `state` until the status is `want`.
    pub fn wait_status(&self, want: &str) -> bool {
        poll(|| self.status().as_deref() == Some(want))
    }

    /// The container's init pid, from `state`.
    pub fn pid(&self) -> u32 {
        let state = self
            .state()
            .unwrap_or_else(|out| panic!("state failed:\n{out}"));
        state["pid"].as_u64().expect("state has a pid") as u32
    }

    pub fn kill(&self, signal: &str) -> Output {
        self.rt(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Output {
        self.rt(&["delete", &self.id])
    }

    /// `exec [OPTS...] ID ARGS...`: `opts` go before the id, `args` after it.
    pub fn exec(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut v: Vec<&str> = vec!["exec"];
        v.extend_from_slice(opts);
        v.push(&self.id);
        v.extend_from_slice(args);
        self.rt(&v)
    }

    /// Starts a helper process the guard kills (by its PID) and reaps on drop.
    pub fn spawn_helper(&mut self, cmd: &mut Command) -> u32 {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn helper {cmd:?}: {e}"));
        let pid = child.id();
        self.helpers.push(child);
        pid
    }

    /// This container's cgroup directories that still exist.
    pub fn cgroup_leftovers(&self) -> Vec<PathBuf> {
        cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(CGROUP_PARENT).join(&self.id))
            .filter(|p| p.exists())
            .collect()
    }

    /// Processes that belong to this container: in its cgroup, or whose command line or
    /// working directory names its id, bundle or state root (a half-started runtime child).
    pub fn leftover_processes(&self) -> Vec<u32> {
        let me = std::process::id();
        let cgroup_suffix = format!("/{CGROUP_PARENT}/{}", self.id);
        let bundle = self.bundle().to_string_lossy().into_owned();
        let root = self.root.path().to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(Result::ok)
        {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me || pid_gone(pid) {
                continue;
            }
            let p = entry.path();
            let cgroup = fs::read_to_string(p.join("cgroup")).unwrap_or_default();
            let cmdline = fs::read(p.join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let cwd = fs::read_link(p.join("cwd"))
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            let in_cgroup = cgroup
                .lines()
                .any(|l| l.trim_end().ends_with(&cgroup_suffix));
            let named =
                cmdline.contains(&self.id) || cmdline.contains(&bundle) || cmdline.contains(&root);
            if in_cgroup || named || cwd.starts_with(&bundle) {
                found.push(pid);
            }
        }
        found
    }

    /// Asserts that a refused operation left nothing: no state directory under --root, no
    /// cgroup directory, no process.
    #[track_caller]
    pub fn assert_nothing_left(&self) {
        let state_dir = self.root.path().join(&self.id);
        assert!(
            !state_dir.exists(),
            "state directory {} left behind",
            state_dir.display()
        );
        let mut cg = Vec::new();
        let clean = poll(|| {
            cg = self.cgroup_leftovers();
            cg.is_empty()
        });
        assert!(clean, "cgroup directories left behind: {cg:?}");
        let mut procs = Vec::new();
        let clean = poll(|| {
            procs = self.leftover_processes();
            procs.is_empty()
        });
        assert!(clean, "processes left behind: {procs:?}");
    }
}

impl Drop for Ct {
    fn drop(&mut self) {
        let deleted = self.rt(&["delete", "--force", &self.id]);
        for mut helper in self.helpers.drain(..) {
            let _ = helper.kill();
            let _ = helper.wait();
        }
        let mut left = Vec::new();
        poll(|| {
            left = self.cgroup_leftovers();
            left.is_empty()
        });
        for dir in &left {
            // Best effort, so that one failing test does not leave debris for the next run.
            let _ = fs::remove_dir(dir);
        }
        if let Some(base) = self.base.take() {
            release_base(base);
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!(
                "{}: cgroup directories left behind after delete --force: {left:?}\n{deleted}",
                self.id
            );
        }
    }
}
