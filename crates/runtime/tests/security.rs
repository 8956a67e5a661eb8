//! Capabilities, seccomp, masked and read-only paths, no_new_privs and users, observed from
//! inside the container.

mod common;

use serde_json::json;

use common::{cap_bit, skip_unless_root, status_field, Ct};

#[test]
fn effective_capabilities_match_spec() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("effective_capabilities_match_spec");
    let caps = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ];
    // Every set the same: after execve a uid-0 process keeps its bounding set (the file
    // capabilities of a root exec are all-ones), so this is also what `cat` ends up with.
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        ct.spec["process"]["capabilities"][set] = json!(caps);
    }
    let want: u64 = caps.iter().map(|c| 1u64 << cap_bit(c)).sum();
    ct.set_args(&["cat", "/proc/self/status"]);
    let out = ct.run().expect_ok();
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        let got = status_field(&out.stdout, field).unwrap_or_else(|| panic!("no {field}\n{out}"));
        let got = u64::from_str_radix(got, 16).expect("hex capability mask");
        assert_eq!(got, want, "{field}: got {got:#018x}, want {want:#018x}");
    }
}

#[test]
fn seccomp_errno_for_mkdir() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("seccomp_errno_for_mkdir");
    ct.add_mount(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=1m"]
    }));
    ct.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]
    });
    // touch proves /tmp is writable, so the mkdir failure comes from the filter.
    let out = ct
        .sh("touch /tmp/file && echo touched; mkdir /tmp/x; echo mkdir=$?")
        .expect_ok();
    assert!(out.stdout.contains("touched"), "/tmp not writable:\n{out}");
    assert!(out.stdout.contains("mkdir=1"), "mkdir succeeded:\n{out}");
    assert!(
        out.stderr.contains("Operation not permitted"),
        "mkdir error is not EPERM:\n{out}"
    );
}

#[test]
fn masked_paths_read_empty() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("masked_paths_read_empty");
    let masked: Vec<String> = ct.spec["linux"]["maskedPaths"]
        .as_array()
        .expect("template has maskedPaths")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    assert!(masked.iter().any(|p| p == "/proc/kcore"), "{masked:?}");
    // The container sees the same kernel: check the masked paths this kernel has (this VM's
    // kernel has no /proc/kcore, for one). Files must read empty, directories must be empty.
    let mut script = String::new();
    let mut checked = Vec::new();
    for p in &masked {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        if meta.is_dir() {
            script.push_str(&format!("echo \"{p} $(ls -A {p} | wc -l)\"; "));
        } else {
            script.push_str(&format!("echo \"{p} $(wc -c < {p})\"; "));
        }
        checked.push(p.clone());
    }
    assert!(!checked.is_empty(), "no masked path exists on this kernel");
    let out = ct.sh(&script).expect_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), checked.len(), "{out}");
    for (line, p) in lines.iter().zip(&checked) {
        assert_eq!(
            *line,
            format!("{p} 0"),
            "masked path {p} is not empty\n{out}"
        );
    }
}

#[test]
fn readonly_root_refuses_writes() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("readonly_root_refuses_writes");
    assert_eq!(ct.spec["root"]["readonly"], true);
    let out = ct.sh("touch /x; echo rc=$?").expect_ok();
    assert!(out.stdout.contains("rc=1"), "touch /x succeeded:\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
}

#[test]
fn readonly_proc_sys() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("readonly_proc_sys");
    // Writable by root in its own net namespace were /proc/sys not read-only.
    let out = ct
        .sh("echo 1 > /proc/sys/net/ipv4/ip_forward; echo rc=$?")
        .expect_ok();
    assert!(
        !out.stdout.contains("rc=0"),
        "write to /proc/sys succeeded:\n{out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");
}

#[test]
fn no_new_privileges_set() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("no_new_privileges_set");
    ct.spec["process"]["noNewPrivileges"] = json!(true);
    ct.set_args(&["cat", "/proc/self/status"]);
    let out = ct.run().expect_ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), Some("1"), "{out}");
}

#[test]
fn user_and_additional_groups() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("user_and_additional_groups");
    ct.spec["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] });
    let out = ct.sh("id -u; id -g; id -G").expect_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "1000", "uid\n{out}");
    assert_eq!(lines[1], "1000", "gid\n{out}");
    let mut groups: Vec<u32> = lines[2]
        .split_whitespace()
        .map(|g| g.parse().expect("numeric group"))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    // id -G prints the primary group first; the supplementary groups are exactly the spec's.
    groups.retain(|g| *g != 1000);
    assert_eq!(groups, vec![10, 20], "supplementary groups\n{out}");
}
