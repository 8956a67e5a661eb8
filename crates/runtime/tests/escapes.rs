//! Known container escapes stay closed: the runtime binary is never reachable for
//! writing from inside (CVE-2019-5736), and no host fd or cwd leaks into the
//! container (CVE-2024-21626).

mod common;

use std::os::unix::fs::OpenOptionsExt;

use common::{is_coracle, runtime, skip_unless_root, Ct};

/// While init runs runtime code inside the container (created, waiting for
/// `start`), its executable is a sealed memfd copy, not the host binary, and
/// other processes in the container cannot open it.
#[test]
fn runtime_binary_is_a_sealed_copy() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("runtime_binary_is_a_sealed_copy");
    ct.set_args(&["sleep", "30"]);
    ct.save();
    ct.create().expect_ok();
    let pid = ct.pid();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("readlink init exe");
    if is_coracle() {
        let text = exe.display().to_string();
        assert!(
            text.starts_with("/memfd:"),
            "init runs from {text}, not a memfd copy"
        );
        // Even host root cannot write through it: the copy is write-sealed.
        let w = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/{pid}/exe"));
        assert!(w.is_err(), "opened the runtime's executable for writing");
    }
    let host_binary = std::fs::canonicalize(runtime()).expect("runtime path");
    assert_ne!(exe, host_binary, "init's exe is the host's runtime binary");
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
