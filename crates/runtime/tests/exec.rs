//! `exec` into a running container.

mod common;

use serde_json::json;

use common::{ns_of, skip_unless_root, Ct};

#[test]
fn exec_joins_init_pid_namespace() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_joins_init_pid_namespace");
    ct.start_sleeper();
    let init = ct.pid().to_string();
    for kind in ["pid", "mnt", "net", "uts", "ipc"] {
        let link = format!("/proc/self/ns/{kind}");
        let out = ct.exec(&[], &["readlink", &link]).expect_ok();
        assert_eq!(out.out(), ns_of(&init, kind), "{kind} namespace of exec");
    }
}

#[test]
fn exec_parent_is_outside_container() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_parent_is_outside_container");
    ct.start_sleeper();
    let out = ct.exec(&[], &["cat", "/proc/self/stat"]).expect_ok();
    // Field 4 is the PPID; a parent outside the container's pid namespace shows as 0.
    let after_comm = out
        .stdout
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("odd stat:\n{out}"));
    let ppid = after_comm.split_whitespace().nth(1);
    assert_eq!(ppid, Some("0"), "{out}");
    // And the exec'd process is not init.
    let pid = out.stdout.split_whitespace().next();
    assert_ne!(pid, Some("1"), "{out}");
}

#[test]
fn exec_process_json() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_process_json");
    ct.start_sleeper();
    let process = json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "echo \"$FOO\"; pwd"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=from-process-json"],
        "cwd": "/etc"
    });
    let path = ct.bundle().join("process.json");
    std::fs::write(&path, process.to_string()).expect("write process.json");
    let out = ct
        .exec(&["--process", path.to_str().expect("utf-8 path")], &[])
        .expect_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["from-process-json", "/etc"], "{out}");
}

#[test]
fn exec_exit_status_propagates() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_exit_status_propagates");
    ct.start_sleeper();
    let out = ct.exec(&[], &["sh", "-c", "exit 3"]);
    assert_eq!(out.code, Some(3), "{out}");
    // The container is unaffected.
    assert_eq!(ct.status().as_deref(), Some("running"));
}

#[test]
fn exec_env_cwd_user() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_env_cwd_user");
    ct.start_sleeper();

    let out = ct
        .exec(&["--env", "FOO=bar"], &["sh", "-c", "echo \"$FOO\""])
        .expect_ok();
    assert_eq!(out.out(), "bar", "--env");

    let out = ct.exec(&["--cwd", "/etc"], &["pwd"]).expect_ok();
    assert_eq!(out.out(), "/etc", "--cwd");

    let out = ct
        .exec(&["--user", "1000"], &["sh", "-c", "id -u; id -g"])
        .expect_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1000", "0"],
        "--user 1000\n{out}"
    );

    let out = ct
        .exec(&["--user", "1000:1000"], &["sh", "-c", "id -u; id -g"])
        .expect_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1000", "1000"],
        "--user 1000:1000\n{out}"
    );
}

#[test]
fn exec_into_stopped_container_fails() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("exec_into_stopped_container_fails");
    ct.start_sleeper();
    ct.kill("KILL").expect_ok();
    assert!(ct.wait_status("stopped"));
    ct.exec(&[], &["true"]).expect_fail();
}
