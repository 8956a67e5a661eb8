//! Namespaces, observed from inside the container.

mod common;

use std::process::Command;

use serde_json::json;

use common::{host_ns_command, ns_of, own_ns, poll, run_command, runtime, skip_unless_root, Ct};

const KINDS: [&str; 6] = ["pid", "mnt", "uts", "ipc", "net", "cgroup"];

#[test]
fn init_is_pid_1() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("init_is_pid_1");
    let out = ct.sh("echo $$").expect_ok();
    assert_eq!(out.out(), "1");
}

#[test]
fn hostname_from_spec() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("hostname_from_spec");
    let want = ct.spec["hostname"]
        .as_str()
        .expect("template sets a hostname")
        .to_owned();
    ct.set_args(&["hostname"]);
    let out = ct.run().expect_ok();
    assert_eq!(out.out(), want);
}

#[test]
fn namespaces_differ_from_host_and_caller() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("namespaces_differ_from_host_and_caller");
    // busybox readlink takes one operand.
    let script = format!(
        "for k in {}; do readlink /proc/self/ns/$k || exit 1; done",
        KINDS.join(" ")
    );
    ct.set_args(&["sh", "-c", &script]);
    ct.save();

    // The caller's throwaway net and mount namespaces are printed first, from the same
    // process that then execs the runtime: a runtime that forgot to unshare would leave the
    // container there, which differs from the test's own namespaces too.
    let mut cmd = host_ns_command("sh");
    cmd.arg("-c")
        .arg(r#"readlink /proc/self/ns/net /proc/self/ns/mnt && exec "$@""#)
        .arg("sh")
        .arg(runtime())
        .arg("--root")
        .arg(ct.state_root())
        .arg("run")
        .arg("--bundle")
        .arg(ct.bundle())
        .arg(&ct.id);
    let out = run_command(&mut cmd, common::COMMAND_TIMEOUT).expect_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2 + KINDS.len(), "{out}");
    let (caller, inside) = lines.split_at(2);
    for (kind, got) in KINDS.iter().zip(inside) {
        assert!(got.starts_with(&format!("{kind}:[")), "{kind}: {got}");
        assert_ne!(*got, own_ns(kind), "{kind} namespace is the test's own");
    }
    assert_ne!(
        inside[4], caller[0],
        "net namespace is the runtime caller's"
    );
    assert_ne!(
        inside[1], caller[1],
        "mnt namespace is the runtime caller's"
    );
}

#[test]
fn join_network_namespace_by_path() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("join_network_namespace_by_path");
    // A namespace held open by a sleep in it; the guard kills it by its PID.
    let holder = ct.spawn_helper(Command::new("unshare").args(["--net", "--", "sleep", "600"]));
    let host_net = own_ns("net");
    let holder_str = holder.to_string();
    assert!(
        poll(|| std::fs::read_link(format!("/proc/{holder}/ns/net"))
            .map(|l| l.to_string_lossy() != host_net)
            .unwrap_or(false)),
        "holder {holder} never entered its own net namespace"
    );
    let want = ns_of(&holder_str, "net");
    for ns in ct.spec["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces array")
    {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{holder}/ns/net"));
        }
    }
    ct.set_args(&["readlink", "/proc/self/ns/net"]);
    let out = ct.run().expect_ok();
    assert_eq!(
        out.out(),
        want,
        "container is not in the given net namespace"
    );
}

#[test]
fn user_namespace_mappings() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("user_namespace_mappings");
    ct.spec["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces array")
        .push(json!({ "type": "user" }));
    let mapping = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    ct.spec["linux"]["uidMappings"] = mapping.clone();
    ct.spec["linux"]["gidMappings"] = mapping;
    let out = ct
        .sh("cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user")
        .expect_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map\n{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "gid_map\n{out}");
    assert_ne!(lines[2][0], own_ns("user"), "user namespace is the host's");
}
