//! Command-line contract beyond the lifecycle: --console-socket, --preserve-fds,
//! --no-pivot, kill --all, spec and features.

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use common::{run_command, runtime, skip_unless_root, Ct, COMMAND_TIMEOUT};

/// Accept one connection on `listener` and receive the fd sent with SCM_RIGHTS.
fn receive_fd(listener: UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().expect("accept on console socket");
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg on console socket");
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this fd in our table; we own it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

/// Read everything the pty master gives until EIO/EOF or the deadline.
fn read_pty(master: &OwnedFd) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).unwrap_or(0) == 0 {
            if String::from_utf8_lossy(&out).contains("done") {
                break;
            }
            continue;
        }
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn console_socket_receives_the_pty_master() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("console_socket_receives_the_pty_master");
    ct.spec["process"]["terminal"] = true.into();
    ct.set_args(&[
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo stdin-is-a-tty; echo done",
    ]);
    let sock = ct.scratch("console").join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let receiver = std::thread::spawn(move || receive_fd(listener));
    ct.create_with(&["--console-socket", sock.to_str().unwrap()])
        .expect_ok();
    let master = receiver.join().expect("receiver thread");
    ct.start().expect_ok();
    let text = read_pty(&master);
    assert!(text.contains("/dev/pts/0"), "pty output: {text:?}");
    assert!(text.contains("stdin-is-a-tty"), "pty output: {text:?}");
}

#[test]
fn preserved_fds_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("preserved_fds_reach_the_container");
    let marker = ct.scratch("preserved").join("marker");
    std::fs::write(&marker, "passed-through\n").unwrap();
    ct.set_args(&["sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '"]);
    ct.save();
    // fd 3 is opened by the shell that starts the runtime.
    let script = format!(
        "exec 3<'{}'; exec unshare --net --mount --propagation private -- \"$0\" --root '{}' \
         run --preserve-fds 1 --bundle '{}' '{}'",
        marker.display(),
        ct.state_root().display(),
        ct.bundle().display(),
        ct.id
    );
    let out = run_command(
        Command::new("bash").args(["-c", &script]).arg(runtime()),
        COMMAND_TIMEOUT,
    )
    .expect_ok();
    assert!(out.stdout.contains("passed-through"), "{out}");
    // 0-2, the preserved 3, and ls's own directory fd 4.
    assert!(out.stdout.contains("0 1 2 3 4"), "{out}");
}

#[test]
fn no_pivot_runs_with_chroot() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("no_pivot_runs_with_chroot");
    ct.set_args(&["sh", "-c", "echo pid=$$; ls /bin/busybox"]);
    ct.save();
    let bundle = ct.bundle().to_path_buf();
    let out = ct
        .rt(&[
            "run",
            "--no-pivot",
            "--bundle",
            bundle.to_str().unwrap(),
            &ct.id,
        ])
        .expect_ok();
    assert!(out.stdout.contains("pid=1"), "{out}");
    assert!(out.stdout.contains("/bin/busybox"), "{out}");
}

#[test]
fn kill_all_signals_every_process() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("kill_all_signals_every_process");
    // init ignores TERM; its children do not.
    ct.set_args(&[
        "sh",
        "-c",
        "trap '' TERM; sleep 3600 & sleep 3600 & wait; sleep 3600",
    ]);
    ct.create().expect_ok();
    ct.start().expect_ok();
    assert!(ct.wait_status("running"));
    let id = ct.id.clone();
    ct.rt(&["kill", "--all", &id, "KILL"]).expect_ok();
    assert!(
        ct.wait_status("stopped"),
        "container still {:?}",
        ct.status()
    );
}

#[test]
fn spec_writes_a_loadable_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        Command::new(runtime())
            .args(["spec", "--bundle"])
            .arg(dir.path()),
        COMMAND_TIMEOUT,
    )
    .expect_ok();
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["ociVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("1.")),
        "{out}"
    );
    assert!(v["process"]["args"].is_array(), "{text}");
    // A second `spec` must not overwrite the file.
    run_command(
        Command::new(runtime())
            .args(["spec", "--bundle"])
            .arg(dir.path()),
        COMMAND_TIMEOUT,
    )
    .expect_fail();
}

#[test]
fn features_lists_namespaces_and_hooks() {
    let out = run_command(Command::new(runtime()).arg("features"), COMMAND_TIMEOUT).expect_ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("features JSON");
    let ns = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    for want in ["pid", "mount", "network", "user", "cgroup"] {
        assert!(ns.iter().any(|n| n == want), "{want} missing from {ns:?}");
    }
    assert!(v["hooks"]
        .as_array()
        .is_some_and(|h| h.iter().any(|x| x == "createRuntime")));
}

#[test]
fn json_log_has_runc_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = run_command(
        Command::new(runtime())
            .arg("--root")
            .arg(dir.path().join("state"))
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "state", "no-such-container"]),
        COMMAND_TIMEOUT,
    )
    .expect_fail();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("empty log; {out}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["level"], "error", "{line}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "{line}");
    // runc says only "container does not exist"; Coracle names the container.
    if common::is_coracle() {
        assert!(msg.contains("no-such-container"), "{line}");
    }
    assert!(v["time"].as_str().is_some(), "{line}");
}
