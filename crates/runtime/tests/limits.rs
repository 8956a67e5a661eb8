//! Resource limits (cgroups), observed from inside the container.

mod common;

use std::path::Path;

use serde_json::json;

use common::{skip_unless_root, Ct};

const MIB: u64 = 1024 * 1024;

#[test]
fn pids_limit_stops_forks() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("pids_limit_stops_forks");
    ct.spec["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    // The forking loop runs in a child shell, because busybox sh exits when it cannot fork.
    // Counting then uses only builtins of the outer shell (a glob over /proc), because at the
    // limit no counting command could be forked. The sleeps die with init when it exits.
    let out = ct
        .sh(
            "sh -c 'i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i+1)); done'; \
             n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo count=$n",
        )
        .expect_ok();
    let count: u32 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("count="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count printed:\n{out}"));
    assert!(
        (2..=10).contains(&count),
        "{count} processes with pids.limit 10\n{out}"
    );
    assert!(
        out.stderr.contains("fork") || out.stderr.contains("Resource temporarily unavailable"),
        "no fork failure reported:\n{out}"
    );
}

#[test]
fn memory_limit_oom_kills() {
    if skip_unless_root() {
        return;
    }
    let mut ct = Ct::new("memory_limit_oom_kills");
    let limit = 32 * MIB;
    let mut memory = json!({ "limit": limit });
    // With swap accounting, swap = limit means no swap at all; without it there is no knob.
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        memory["swap"] = json!(limit);
    }
    ct.spec["linux"]["resources"]["memory"] = memory;
    // tail keeps the whole newline-free input in memory: 200 MiB against a 32 MiB limit.
    let out = ct.sh(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; \
         head -c 200m /dev/zero | tail >/dev/null; echo rc=$?",
    );
    let rc = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .map(str::trim);
    // The OOM killer picks the biggest process (tail), so the shell reports 137; were the
    // shell itself chosen, the runtime reports init's death by SIGKILL as 137.
    assert!(
        rc == Some("137") || out.code == Some(137),
        "allocation past the limit was not OOM-killed:\n{out}"
    );
    // cgroup v1 with a cgroup namespace: the container's own limit is at the mount's root.
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        let first = out.stdout.lines().next().unwrap_or_default().trim();
        assert_eq!(
            first,
            limit.to_string(),
            "memory.limit_in_bytes inside\n{out}"
        );
    }
}
