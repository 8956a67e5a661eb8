//! DNS for user-defined networks: containers resolve each other by name, short id
//! and alias; everything else goes to the host's resolvers.
//!
//! The responder is its own small process (`coracle-dns`), so it outlives any CLI
//! invocation and needs no daemon: it listens on each network's gateway address,
//! answers from per-network records files ([`records`]), and exits when no network
//! has records left. [`ensure_running`] starts it when a network needs it; writing
//! or removing a records file is all the coordination there is.

pub mod files;
pub mod records;
pub mod server;
pub mod wire;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns responder: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("dns responder {binary}: {source}")]
    Spawn {
        binary: std::path::PathBuf,
        source: std::io::Error,
    },
}

const PID_FILE: &str = "coracle-dns.pid";

/// The pid of a running responder serving `config_dir`, from `run_dir`'s pid file
/// (checked against /proc, so a stale file or a recycled pid is not trusted).
pub fn running_pid(run_dir: &Path, config_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(run_dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut cmdline = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .ok()?
        .read_to_end(&mut cmdline)
        .ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ours = args.first().is_some_and(|a| a.ends_with(b"coracle-dns"))
        && args.contains(&config_dir.as_os_str().as_encoded_bytes());
    ours.then_some(pid)
}

/// Start the responder for `config_dir` unless one runs already. It is detached
/// (its own session, stdio on /dev/null) so it outlives the caller.
pub fn ensure_running(
    binary: &Path,
    config_dir: &Path,
    run_dir: &Path,
    port: u16,
) -> Result<i32, DnsError> {
    std::fs::create_dir_all(run_dir).map_err(|source| DnsError::Io {
        op: "mkdir",
        path: run_dir.to_path_buf(),
        source,
    })?;
    // One starter at a time: the lock file is held until we return.
    let lock_path = run_dir.join("coracle-dns.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|source| DnsError::Io {
        op: "create",
        path: lock_path.clone(),
        source,
    })?;
    lock.lock().map_err(|source| DnsError::Io {
        op: "flock",
        path: lock_path,
        source,
    })?;
    if let Some(pid) = running_pid(run_dir, config_dir) {
        return Ok(pid);
    }
    let mut cmd = Command::new(binary);
    cmd.arg("--config-dir")
        .arg(config_dir)
        .arg("--port")
        .arg(port.to_string());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let child = cmd.spawn().map_err(|source| DnsError::Spawn {
        binary: binary.to_path_buf(),
        source,
    })?;
    let pid = child.id() as i32;
    let pid_path = run_dir.join(PID_FILE);
    let tmp = pid_path.with_extension("tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, &pid_path))
        .map_err(|source| DnsError::Io {
            op: "write",
            path: pid_path,
            source,
        })?;
    // The child is not waited for here: it reparents to init (or a subreaper) and
    // exits by itself once no network needs it.
    std::mem::forget(child);
    Ok(pid)
}
