//! Known container escapes stay closed: the runtime binary is never reachable for
//! writing from inside (CVE-2019-5736), and no host fd or cwd leaks into the
//! container (CVE-2024-21626).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use common::{is_coracle, skip_unless_root, Ct};

/// While init runs runtime code inside the container (created, waiting for
/// `start`), /proc/<pid>/exe must not lead to a writable runtime binary. The attack
/// of CVE-2019-5736 keeps an O_PATH handle to it and reopens it for writing once
/// nothing executes it any more (before that, ETXTBSY hides the problem); so does
/// this test, and the reopen must fail (read-only mount) or give a write-sealed
/// memfd.
#[test]
fn runtime_binary_is_never_writable_from_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("runtime_binary_is_never_writable");
    ct.set_args(&["sleep", "30"]);
    ct.save();
    ct.create().expect_ok();
    let pid = ct.pid();
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/exe"))
        .expect("O_PATH handle to init's exe");
    // From inside: /proc/1/exe of the (non-dumpable) init is not even readable.
    // (runc lets it be read; its copy is sealed too, so that is harmless there.)
    if is_coracle() {
        let out = ct.exec(
            &[],
            &["sh", "-c", "cat /proc/1/exe > /dev/null && echo READ"],
        );
        assert!(
            !out.stdout.contains("READ"),
            "container read init's executable:\n{out}"
        );
    }
    let id = ct.id.clone();
    ct.rt(&["delete", "--force", &id]).expect_ok();
    let reopen = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    if let Ok(f) = reopen {
        // Only a write-sealed memfd may be opened for writing; never write to it.
        // SAFETY: F_GET_SEALS on an fd we own; no pointer is passed.
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(
            seals >= 0 && seals & libc::F_SEAL_WRITE != 0,
            "the runtime's executable was reopened for writing (seals {seals})"
        );
    }
}

/// The container's process sees only its stdio (and, with --preserve-fds, the
/// fds passed), and its cwd is inside the container.
#[test]
fn no_host_fds_or_cwd_leak() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("no_host_fds_or_cwd_leak");
    // `ls` opens the directory itself as fd 3; count the others.
    let out = ct
        .sh("ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/cwd")
        .expect_ok();
    let mut lines = out.stdout.lines();
    let fds: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "fds visible in the container:\n{out}"
    );
    assert_eq!(lines.next(), Some("/"), "cwd:\n{out}");
}

#[test]
fn exec_sees_no_host_fds() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_sees_no_host_fds");
    ct.start_sleeper();
    let out = ct
        .exec(
            &["--cwd", "/tmp"],
            &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; pwd"],
        )
        .expect_ok();
    let mut lines = out.stdout.lines();
    let fds: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "fds visible to exec:\n{out}");
    assert_eq!(lines.next(), Some("/tmp"), "{out}");
}
