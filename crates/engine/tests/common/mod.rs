//! Harness for the engine's integration tests that run real containers.
//!
//! Isolation, per test (the same approach as `crates/runtime/tests/common`):
//! - a bundle of its own (`scripts/mkbundle.sh` builds a busybox rootfs in a temp dir, and the
//!   test writes its own config.json with `build_spec`), a `--root` state directory of its own,
//!   a random 64-hex container id and the cgroup path `/coracle-test/<id>`;
//! - the runtime runs inside a throwaway "host" network and mount namespace
//!   (`unshare --net --mount --propagation private`);
//! - [`Bundle`]'s drop force-deletes the container and removes its cgroup directories.
//!
//! The runtime is `$CORACLE_TEST_RUNTIME`, else `target/<profile>/coracle-runtime` next to this
//! test binary (`cargo build -p coracle-runtime`; `cargo test --workspace` builds it).

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coracle_engine::spec::oci_spec::runtime::Spec;
use tempfile::TempDir;

pub const CGROUP_PARENT: &str = "coracle-test";
const TIMEOUT: Duration = Duration::from_secs(60);

pub fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        false
    } else {
        eprintln!("skipped: needs root");
        true
    }
}

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("CORACLE_TEST_RUNTIME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/spec_run-<hash> -> target/<profile>/coracle-runtime
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .join("coracle-runtime");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p coracle-runtime` first (or set CORACLE_TEST_RUNTIME)",
        bin.display()
    );
    bin
}

/// A random 64-hex container id.
pub fn new_id() -> String {
    (0..4)
        .map(|i| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(i);
            h.write_u32(std::process::id());
            format!("{:016x}", h.finish())
        })
        .collect()
}

#[derive(Debug)]
pub struct Output {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "`{}`: exit code {:?}", self.what, self.code)?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}

/// Runs `cmd` with stdin closed and stdout/stderr captured in anonymous files (not pipes,
/// which a container could hold open); killed after the timeout.
pub fn run_command(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waitpid") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut f: File| {
        let mut b = Vec::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut b).expect("read");
        String::from_utf8_lossy(&b).into_owned()
    };
    Output {
        what,
        code: status.and_then(|s| s.code()),
        stdout: read(out),
        stderr: read(err),
    }
}

/// A busybox bundle with its own state root and container id.
pub struct Bundle {
    pub dir: TempDir,
    pub state: TempDir,
    pub id: String,
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("coracle-engine-spec-")
            .tempdir()
            .expect("bundle dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbundle.sh");
        run_command(Command::new(&script).arg(dir.path())).expect_ok();
        Bundle {
            dir,
            state: tempfile::tempdir().expect("state dir"),
            id: new_id(),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn cgroups_path(&self) -> String {
        format!("/{CGROUP_PARENT}/{}", self.id)
    }

    /// Writes `spec` as config.json and runs the container in the foreground inside a
    /// throwaway host namespace; the output is the container's.
    pub fn run(&self, spec: &Spec) -> Output {
        fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(spec).expect("serialize spec"),
        )
        .expect("write config.json");
        run_command(
            self.runtime_cmd(&["run", "--bundle"])
                .arg(self.dir.path())
                .arg(&self.id),
        )
    }

    fn runtime_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("unshare");
        c.args(["--net", "--mount", "--propagation", "private", "--"])
            .arg(runtime())
            .arg("--root")
            .arg(self.state.path())
            .args(args);
        c
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(CGROUP_PARENT).join(&self.id))
            .filter(|p| p.exists())
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = run_command(&mut self.runtime_cmd(&["delete", "--force", &self.id.clone()]));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.cgroup_dirs();
            for d in &left {
                let _ = fs::remove_dir(d);
            }
            if left.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The shared parent goes when the last user leaves (EBUSY/ENOTEMPTY otherwise).
        for h in hierarchies() {
            let _ = fs::remove_dir(h.join(CGROUP_PARENT));
        }
    }
}

/// Every cgroup hierarchy root: /sys/fs/cgroup on pure v2, each v1 controller otherwise.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                // cpu,cpuacct-style symlinks point at directories listed themselves.
                .filter(|p| p.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of `Field:` in a /proc/<pid>/status text.
pub fn status_field<'a>(status: &'a str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}
