use std::io::{Read, Seek};

use nix::errno::Errno;
use nix::sys::stat::Mode;

use super::*;
use crate::user::test_support::{require_root, run_in_child};

fn profile(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).expect("test profile must deserialize")
}

fn compile_err(json: serde_json::Value) -> String {
    compile(&profile(json))
        .expect_err("profile must be refused")
        .to_string()
}

/// libseccomp's text dump of the filter a profile compiles to.
fn pfc(p: &LinuxSeccomp) -> String {
    let (ctx, _, _) = context(p).unwrap();
    let mut file = tempfile::tempfile().unwrap();
    ctx.export_pfc(&file).unwrap();
    file.rewind().unwrap();
    let mut out = String::new();
    file.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn compiles_a_docker_like_profile() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            { "names": ["read", "write", "no_such_syscall_coracle", "exit_group"],
              "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ" }] },
            { "names": ["clone"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 2114060288u64, "valueTwo": 0,
                         "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
            { "names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS" },
            { "names": ["socketcall"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
            { "names": ["getpid"], "action": "SCMP_ACT_LOG" }
        ]
    }));
    let filter = compile(&p).unwrap();
    assert_eq!(filter.skipped_syscalls(), ["no_such_syscall_coracle"]);
    assert_eq!(filter.flags, FLAG_LOG | FLAG_SPEC_ALLOW);
    let text = pfc(&p);
    for name in [
        "\"read\"",
        "\"clone\"",
        "\"clone3\"",
        "\"ptrace\"",
        "\"personality\"",
    ] {
        assert!(text.contains(name), "{name} missing from filter:\n{text}");
    }
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }
        ]
    }));
    compile(&p).unwrap();
    let text = pfc(&p);
    assert!(
        text.contains("\"mkdir\"") && !text.contains("\"read\""),
        "{text}"
    );
}

#[test]
fn tsync_flag_and_native_arch_compile() {
    compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_NATIVE"],
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{ "names": ["kill"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 1, "value": 0, "op": "SCMP_CMP_EQ" },
                                { "index": 0, "value": 1, "op": "SCMP_CMP_GT" }] }]
    })))
    .unwrap();
}

#[test]
fn argument_index_above_5_is_refused() {
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["read"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["mmap"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 1, "value": 1, "op": "SCMP_CMP_EQ" },
                       { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    assert_eq!(
        msg,
        "seccomp: syscalls[1].args[1].index = 6: syscalls have 6 arguments: 0..=5"
    );
}

#[test]
fn notify_and_listener_path_are_unsupported() {
    let msg = compile_err(serde_json::json!({ "defaultAction": "SCMP_ACT_NOTIFY" }));
    assert!(
        msg.starts_with("seccomp: defaultAction = SCMP_ACT_NOTIFY: not supported"),
        "{msg}"
    );
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["openat"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(
        msg.starts_with("seccomp: syscalls[0].action = SCMP_ACT_NOTIFY: not supported"),
        "{msg}"
    );
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"
    }));
    assert!(
        msg.starts_with("seccomp: listenerPath = /run/agent.sock: not supported"),
        "{msg}"
    );
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    }));
    assert!(
        msg.contains("flags[0] = SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{msg}"
    );
}

#[test]
fn errno_ret_needs_an_action_that_returns_it() {
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1
    }));
    assert!(
        msg.starts_with("seccomp: defaultErrnoRet = 1: only used with"),
        "{msg}"
    );
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }]
    }));
    assert!(
        msg.starts_with("seccomp: syscalls[0].errnoRet = 1: only used with"),
        "{msg}"
    );
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 }]
    }));
    assert!(
        msg.starts_with("seccomp: syscalls[0].errnoRet = 70000: above"),
        "{msg}"
    );
}

#[test]
fn other_malformed_rules_name_their_field() {
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert_eq!(msg, "seccomp: syscalls[0].names = []: lists no syscall");
    let msg = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ" }] }]
    }));
    assert!(
        msg.starts_with(
            "seccomp: syscalls[0].args[0].valueTwo = 2: only used with SCMP_CMP_MASKED_EQ"
        ),
        "{msg}"
    );
    // An unknown action cannot even be parsed: the spec loader reports it.
    let parsed: Result<LinuxSeccomp, _> =
        serde_json::from_value(serde_json::json!({ "defaultAction": "SCMP_ACT_BOGUS" }));
    assert!(parsed.is_err());
}

/// mkdir and mkdirat both fail with EPERM, everything else works, in a child.
#[test]
fn loaded_filter_blocks_mkdir() {
    if !require_root("seccomp::loaded_filter_blocks_mkdir") {
        return;
    }
    let filter = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                       "errnoRet": libc::EPERM }]
    })))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sub, file) = (dir.path().join("sub"), dir.path().join("file"));
    let code = run_in_child(|| {
        if filter.load().is_err() {
            return 1;
        }
        if nix::unistd::mkdir(&sub, Mode::from_bits_truncate(0o755)) != Err(Errno::EPERM) {
            return 2;
        }
        if nix::sys::stat::mkdirat(None, &sub, Mode::from_bits_truncate(0o755)) != Err(Errno::EPERM)
        {
            return 3;
        }
        if std::fs::write(&file, "ok").is_err() || nix::unistd::getpid().as_raw() <= 0 {
            return 4;
        }
        0
    });
    assert_eq!(code, 0, "child exit code {code}");
    assert!(!dir.path().join("sub").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("file")).unwrap(),
        "ok"
    );
}

/// Argument filtering with SCMP_CMP_MASKED_EQ: only sticky-bit directories are refused.
#[test]
fn loaded_filter_matches_masked_arguments() {
    if !require_root("seccomp::loaded_filter_matches_masked_arguments") {
        return;
    }
    let sticky = libc::S_ISVTX as u64;
    let filter = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
              "args": [{ "index": 1, "value": sticky, "valueTwo": sticky,
                         "op": "SCMP_CMP_MASKED_EQ" }] },
            { "names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
              "args": [{ "index": 2, "value": sticky, "valueTwo": sticky,
                         "op": "SCMP_CMP_MASKED_EQ" }] }
        ]
    })))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let code = run_in_child(|| {
        if filter.load().is_err() {
            return 1;
        }
        if nix::unistd::mkdir(&a, Mode::from_bits_truncate(0o1755)) != Err(Errno::EACCES) {
            return 2;
        }
        if nix::unistd::mkdir(&b, Mode::from_bits_truncate(0o755)).is_err() {
            return 3;
        }
        0
    });
    assert_eq!(code, 0, "child exit code {code}");
    assert!(!a.exists() && b.is_dir());
}
