//! Container lifecycle through the CLI: create, start, state, kill, delete, run --detach, list,
//! ps, --pid-file.

mod common;

use std::fs;

use common::{pid_gone, poll, skip_unless_root, Ct};

#[test]
fn create_start_kill_delete() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("create_start_kill_delete");
    ct.set_args(&["sleep", "3600"]);
    ct.create().expect_ok();

    let state = ct.state().unwrap_or_else(|o| panic!("state failed:\n{o}"));
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], ct.id.as_str(), "{state}");
    let pid = state["pid"].as_u64().expect("created state has a pid") as u32;
    assert!(
        pid > 0 && !pid_gone(pid),
        "init {pid} of a created container must exist"
    );

    ct.start().expect_ok();
    assert!(ct.wait_status("running"), "not running after start");
    assert_eq!(ct.pid(), pid, "start must not change the init pid");

    ct.kill("KILL").expect_ok();
    assert!(ct.wait_status("stopped"), "not stopped after kill KILL");
    assert!(
        poll(|| pid_gone(pid)),
        "init {pid} still alive after SIGKILL"
    );

    ct.delete().expect_ok();
    let after = ct.state();
    assert!(
        after.is_err(),
        "state must fail after delete, got {after:?}"
    );
    assert!(
        !ct.state_root().join(&ct.id).exists(),
        "state directory left after delete"
    );
}

#[test]
fn run_detached_then_list_and_state() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("run_detached_then_list_and_state");
    ct.set_args(&["sleep", "3600"]);
    ct.run_detached().expect_ok();
    assert!(ct.wait_status("running"), "not running after run --detach");
    let pid = ct.pid();

    let list = ct.rt(&["list", "--format", "json"]).expect_ok();
    let list: serde_json::Value = serde_json::from_str(&list.stdout)
        .unwrap_or_else(|e| panic!("list --format json: {e}\n{list}"));
    let entries = list.as_array().expect("list json is an array");
    assert_eq!(entries.len(), 1, "only this test's container: {list}");
    assert_eq!(entries[0]["id"], ct.id.as_str());
    assert_eq!(entries[0]["status"], "running");
    assert_eq!(entries[0]["pid"].as_u64(), Some(u64::from(pid)));

    let table = ct.rt(&["list"]).expect_ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ct.id.as_str()))
        .unwrap_or_else(|| panic!("id missing from list:\n{table}"));
    assert!(row.contains("running"), "list row: {row}");
    assert!(
        row.split_whitespace().any(|f| f == pid.to_string()),
        "list row without the pid: {row}"
    );
}

#[test]
fn delete_force_running_container() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("delete_force_running_container");
    ct.start_sleeper();
    let pid = ct.pid();

    let plain = ct.delete();
    assert!(
        !plain.ok(),
        "delete of a running container must fail without --force:\n{plain}"
    );
    assert_eq!(ct.status().as_deref(), Some("running"));

    ct.rt(&["delete", "--force", &ct.id]).expect_ok();
    assert!(ct.state().is_err(), "state must fail after delete --force");
    assert!(poll(|| pid_gone(pid)), "init {pid} survived delete --force");
    let mut left = Vec::new();
    let clean = poll(|| {
        left = ct.cgroup_leftovers();
        left.is_empty()
    });
    assert!(clean, "cgroups left after delete --force: {left:?}");
}

#[test]
fn ps_lists_init_pid() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("ps_lists_init_pid");
    ct.start_sleeper();
    let pid = ct.pid();

    let out = ct.rt(&["ps", "--format", "json", &ct.id]).expect_ok();
    let pids: Vec<u32> =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"));
    assert_eq!(pids, vec![pid], "ps --format json");

    // The table format runs the host's ps(1) and keeps the container's rows.
    if std::path::Path::new("/usr/bin/ps").exists() || std::path::Path::new("/bin/ps").exists() {
        let table = ct.rt(&["ps", &ct.id]).expect_ok();
        assert!(
            table
                .stdout
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some(&pid.to_string())),
            "pid {pid} missing from ps table:\n{table}"
        );
    }
}

#[test]
fn pid_file_is_written() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("pid_file_is_written");
    ct.set_args(&["sleep", "3600"]);
    let pid_file = ct.scratch("out").join("init.pid");
    ct.create_with(&["--pid-file", pid_file.to_str().expect("utf-8 path")])
        .expect_ok();
    let written = fs::read_to_string(&pid_file).expect("pid file exists after create");
    assert_eq!(written.trim(), ct.pid().to_string(), "pid file content");
}

#[test]
fn pause_and_resume() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("pause_and_resume");
    ct.start_sleeper();
    let freezer = ct.cgroup_dir("freezer").join("freezer.state");
    let v1_freezer = std::path::Path::new("/sys/fs/cgroup/freezer").exists();

    ct.rt(&["pause", &ct.id]).expect_ok();
    assert!(ct.wait_status("paused"), "not paused after pause");
    if v1_freezer {
        let state = fs::read_to_string(&freezer).expect("freezer.state");
        assert_eq!(state.trim(), "FROZEN", "{}", freezer.display());
    }

    ct.rt(&["resume", &ct.id]).expect_ok();
    assert!(ct.wait_status("running"), "not running after resume");
    if v1_freezer {
        let state = fs::read_to_string(&freezer).expect("freezer.state");
        assert_eq!(state.trim(), "THAWED", "{}", freezer.display());
    }
    // The thawed process runs again: exec works (an exec into a frozen cgroup would hang).
    let out = ct.exec(&[], &["echo", "thawed"]).expect_ok();
    assert_eq!(out.out(), "thawed");
}
