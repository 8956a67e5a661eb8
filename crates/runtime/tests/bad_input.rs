//! Refused input: the runtime exits non-zero and leaves nothing behind (no state directory,
//! no cgroup, no process). For Coracle, the error must also name the field or path at fault.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::json;

use common::{is_coracle, skip_unless_root, Ct, Output};

/// Asserts (Coracle only: runc's wording is its own) that the error names `what`.
#[track_caller]
fn names(out: &Output, what: &str) {
    if is_coracle() {
        assert!(
            out.stderr.contains(what),
            "error message does not name {what:?}:\n{out}"
        );
    }
}

#[test]
fn missing_process_args() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("missing_process_args");
    ct.spec["process"]
        .as_object_mut()
        .expect("process object")
        .remove("args");
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    names(&out, "args");
}

#[test]
fn invalid_json_config() {
    if skip_unless_root() {
        return;
    }
    let ct = Ct::new("invalid_json_config");
    ct.save();
    let config = ct.bundle().join("config.json");
    let text = fs::read_to_string(&config).expect("read config.json");
    // Cut in the middle: a truncated write.
    fs::write(&config, &text[..text.len() / 2]).expect("truncate config.json");
    let out = ct
        .rt(&[
            "create".as_ref(),
            "--bundle".as_ref(),
            ct.bundle().as_os_str(),
            ct.id.as_ref(),
        ])
        .expect_fail();
    ct.assert_nothing_left();
    names(&out, "config.json");
}

#[test]
fn unknown_namespace_type() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("unknown_namespace_type");
    ct.spec["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces array")
        .push(json!({ "type": "bogus" }));
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    names(&out, "bogus");
}

#[test]
fn mount_destination_symlink_escaping_rootfs() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("mount_destination_symlink_escaping_rootfs");
    let rootfs = ct.private_rootfs();
    symlink("../../../../../tmp", rootfs.join("etc/evil")).expect("plant symlink");
    let src = ct.scratch("mount-src");
    fs::write(src.join("marker"), "marker\n").expect("marker file");
    ct.add_mount(json!({
        "destination": "/etc/evil", "type": "bind",
        "source": src.to_str().expect("utf-8 path"), "options": ["rbind", "ro"]
    }));
    ct.set_args(&["cat", "/tmp/marker"]);
    let out = ct.run();
    if is_coracle() {
        // Coracle refuses a mount destination that leaves the rootfs through a symlink.
        let out = out.expect_fail();
        ct.assert_nothing_left();
        names(&out, "/etc/evil");
    } else {
        // runc resolves the destination inside the rootfs (/etc/evil -> /tmp of the rootfs)
        // and accepts it. What must hold for any runtime that accepts it is that the mount
        // stayed in the rootfs: the container sees the bind at its own /tmp.
        if out.ok() {
            assert_eq!(
                out.out(),
                "marker",
                "mount did not land inside the rootfs:\n{out}"
            );
        } else {
            ct.assert_nothing_left();
        }
    }
    // Either way the host's /tmp is untouched.
    assert!(!std::path::Path::new("/tmp/marker").exists());
}

#[test]
fn nonexistent_rootfs() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("nonexistent_rootfs");
    let missing = ct.bundle().join("no-such-rootfs");
    ct.spec["root"]["path"] = json!(missing);
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    names(&out, "no-such-rootfs");
}

#[test]
fn invalid_cpuset_value() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("invalid_cpuset_value");
    ct.spec["linux"]["resources"]["cpu"] = json!({ "cpus": "abc" });
    ct.set_args(&["sleep", "3600"]);
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    names(&out, "cpus");
}

#[test]
fn negative_memory_limit() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("negative_memory_limit");
    ct.spec["linux"]["resources"]["memory"] = json!({ "limit": -5 });
    ct.set_args(&["sleep", "3600"]);
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    names(&out, "memory");
}

#[test]
fn id_already_in_use() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("id_already_in_use");
    ct.set_args(&["sleep", "3600"]);
    ct.create().expect_ok();
    let pid = ct.pid();

    let out = ct.create().expect_fail();
    names(&out, &ct.id);
    // The first container is untouched and still works.
    let state = ct
        .state()
        .unwrap_or_else(|o| panic!("state after refused create:\n{o}"));
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "{state}");
    ct.start().expect_ok();
    assert!(ct.wait_status("running"));
    let out = ct.exec(&[], &["echo", "alive"]).expect_ok();
    assert_eq!(out.out(), "alive");
}
