//! Throwaway network namespaces for the netlink and bridge tests.
//!
//! A test process is multi-threaded, so the test thread never unshares itself.
//! Each namespace is held by a helper process, `unshare --net -- sleep 120`;
//! `/proc/<pid>/ns/net` is its path. Killing the helper (by its PID, in `Drop`)
//! ends the namespace and everything in it (veths, bridges, addresses, routes),
//! so a test leaves nothing behind even when it fails; the sleep bounds the
//! helper's life should the test process itself be killed.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True if the test can run; prints why it skips otherwise.
pub fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("{test}: skipped: needs root (creates network namespaces)");
        false
    }
}

/// A network namespace alive while this value is.
pub struct Ns {
    child: Child,
    path: PathBuf,
}

impl Ns {
    pub fn new() -> Ns {
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net sleep");
        let pid = child.id();
        let ns = Ns {
            child,
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
        };
        // unshare execs sleep only after unsharing: once the helper is `sleep`,
        // its namespace is the new one.
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let ino = std::fs::metadata(&ns.path).map(|m| m.ino()).ok();
            if comm.trim() == "sleep" && ino.is_some_and(|i| i != ours) {
                return ns;
            }
            assert!(
                Instant::now() < deadline,
                "netns helper {pid} did not start"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run a busybox applet inside this namespace (nsenter joins only its
    /// network namespace).
    pub fn busybox(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .arg("--")
            .arg("busybox")
            .args(args)
            .output()
            .expect("run nsenter busybox")
    }

    /// Ping `addr` once from inside this namespace.
    pub fn ping(&self, addr: &str) -> bool {
        let out = self.busybox(&["ping", "-c1", "-W1", addr]);
        if !out.status.success() {
            eprintln!(
                "ping {addr} from {}: {}{}",
                self.path.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
