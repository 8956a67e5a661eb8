//! OCI hooks: which run, in which order, with the state on stdin.

mod common;

use std::fs;

use serde_json::{json, Value};

use common::{skip_unless_root, Ct};

const ORDER: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

#[test]
fn all_hooks_run_in_order_with_state_on_stdin() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("all_hooks_run_in_order_with_state_on_stdin");
    let dir = ct.scratch("hooks");
    let host_dir = dir.to_str().expect("utf-8 path").to_owned();
    // The same directory is bind-mounted at /mnt, for hooks that run after the container's
    // root is in place (startContainer runs in the container's mount namespace, and its
    // /bin/sh is the container's busybox). Each hook appends its name to whichever log it
    // can reach; the host path is tried first.
    ct.add_mount(json!({
        "destination": "/mnt", "type": "bind", "source": host_dir,
        "options": ["rbind", "rw"]
    }));
    let hook = |name: &str, save_stdin: bool| {
        let save = if save_stdin {
            format!("cat > {host_dir}/{name}.json 2>/dev/null || cat > /mnt/{name}.json; ")
        } else {
            String::new()
        };
        json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!(
                "{save}echo {name} >> {host_dir}/log 2>/dev/null || echo {name} >> /mnt/log"
            )],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        }])
    };
    ct.spec["hooks"] = json!({
        "prestart": hook("prestart", false),
        "createRuntime": hook("createRuntime", true),
        "createContainer": hook("createContainer", false),
        "startContainer": hook("startContainer", false),
        "poststart": hook("poststart", false),
        "poststop": hook("poststop", true),
    });
    ct.set_args(&["sleep", "3600"]);

    ct.create().expect_ok();
    let pid = ct.pid();
    ct.start().expect_ok();
    assert!(ct.wait_status("running"));
    ct.kill("KILL").expect_ok();
    assert!(ct.wait_status("stopped"));
    ct.delete().expect_ok();

    let log = fs::read_to_string(dir.join("log")).expect("no hook wrote the log");
    let got: Vec<&str> = log.lines().collect();
    assert_eq!(got.len(), ORDER.len(), "each hook runs once:\n{log}");
    if common::is_coracle() {
        // The spec's order: startContainer before the user process runs, poststart after it
        // has started. Coracle runs prestart (deprecated) before createRuntime, as runc does.
        assert_eq!(got, ORDER, "hook order:\n{log}");
    } else {
        // runc 1.1 runs poststart in `runc start` as soon as init is released, while init
        // is still running its startContainer hooks, so those two race. The rest is ordered.
        fn sorted<'a>(s: &[&'a str]) -> Vec<&'a str> {
            let mut v = s.to_vec();
            v.sort_unstable();
            v
        }
        assert_eq!(sorted(&got[..2]), sorted(&ORDER[..2]), "hook order:\n{log}");
        assert_eq!(got[2], ORDER[2], "hook order:\n{log}");
        assert_eq!(
            sorted(&got[3..5]),
            sorted(&ORDER[3..5]),
            "hook order:\n{log}"
        );
        assert_eq!(got[5], ORDER[5], "hook order:\n{log}");
    }

    let state: Value = serde_json::from_str(
        &fs::read_to_string(dir.join("createRuntime.json")).expect("createRuntime saved stdin"),
    )
    .expect("createRuntime stdin is JSON state");
    assert_eq!(state["id"], ct.id.as_str(), "{state}");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "{state}");
    assert_eq!(
        state["bundle"].as_str().map(std::path::Path::new),
        Some(ct.bundle()),
        "{state}"
    );

    let state: Value = serde_json::from_str(
        &fs::read_to_string(dir.join("poststop.json")).expect("poststop saved stdin"),
    )
    .expect("poststop stdin is JSON state");
    assert_eq!(state["id"], ct.id.as_str(), "{state}");
}

#[test]
fn failing_prestart_hook_fails_create() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("failing_prestart_hook_fails_create");
    ct.spec["hooks"] = json!({
        "prestart": [{ "path": "/bin/sh", "args": ["sh", "-c", "exit 7"] }]
    });
    ct.set_args(&["sleep", "3600"]);
    let out = ct.create().expect_fail();
    ct.assert_nothing_left();
    if common::is_coracle() {
        assert!(
            out.stderr.contains("prestart"),
            "error names the hook:\n{out}"
        );
    }
}
