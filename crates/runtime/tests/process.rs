//! The process's environment as seen from inside: sysctls, rlimits, oom_score_adj,
//! domainname, umask.

mod common;

use serde_json::json;

use common::{skip_unless_root, Ct};

#[test]
fn sysctl_rlimit_oom_score_and_domainname_apply() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("sysctl_rlimit_oom_score_and_domainname_apply");
    ct.spec["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.shmmni": "2048" });
    ct.spec["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 512, "hard": 768 }]);
    ct.spec["process"]["oomScoreAdj"] = json!(123);
    ct.spec["process"]["user"]["umask"] = json!(0o027);
    ct.spec["domainname"] = json!("example.test");
    let out = ct
        .sh(
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; ulimit -n; ulimit -Hn; \
             cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname; umask",
        )
        .expect_ok();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    // runc before 1.2 ignores `domainname`.
    if !common::is_coracle() && lines.len() == 7 {
        lines[5] = "example.test";
    }
    assert_eq!(
        lines,
        ["1", "2048", "512", "768", "123", "example.test", "0027"],
        "{out}"
    );
}

#[test]
fn sysctl_outside_the_container_namespaces_is_refused() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("sysctl_outside_the_container_namespaces_is_refused");
    // vm.* is not namespaced: setting it would change the host.
    ct.spec["linux"]["sysctl"] = json!({ "vm.swappiness": "10" });
    let out = ct.sh("true");
    if common::is_coracle() {
        let out = out.expect_fail();
        assert!(out.all().contains("vm.swappiness"), "{out}");
    }
}
