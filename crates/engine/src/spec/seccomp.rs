//! Coracle's default seccomp profile, and user profiles (`--security-opt seccomp=<file>`).
//!
//! The default profile is an allowlist: any system call not named here fails with EPERM.
//! It is written for Coracle, grouped by what a program uses the calls for:
//!
//! - the calls ordinary programs need (files, memory, processes and threads, signals,
//!   time, sockets, polling, ids), allowed for everyone;
//! - `clone` and `unshare` allowed only without namespace flags, unless CAP_SYS_ADMIN is
//!   granted; `clone3` answers ENOSYS (its flags are in memory seccomp cannot read), so C
//!   libraries fall back to `clone`;
//! - `personality` only with the harmless personas (Linux, Linux32, UNAME26, and the
//!   query value 0xffffffff);
//! - `socket` with every address family except AF_VSOCK (host communication);
//! - calls tied to a capability (mount with SYS_ADMIN, module loading with SYS_MODULE,
//!   clock setting with SYS_TIME, ...) allowed only when that capability is granted.
//!
//! Architectures: x86_64 with its x86 and x32 ABIs.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::caps::CapSet;
use super::SpecError;

/// System calls every container may make.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "getcwd", "getdents", "getdents64", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat",
    "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "removexattr", "rename",
    "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr", "splice", "stat",
    "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime",
    "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev", "fanotify_mark",
    "memfd_create", "memfd_secret", "name_to_handle_at", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "cachestat",
    // memory
    "brk", "madvise", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
    "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "remap_file_pages", "set_mempolicy_home_node", "process_madvise",
    "process_mrelease", "map_shadow_stack",
    // processes, threads, scheduling
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group",
    "fork", "futex", "futex_time64", "futex_requeue", "futex_wait", "futex_waitv",
    "futex_wake", "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp",
    "getpid", "getppid", "getpriority", "getrandom", "getrlimit", "getrusage", "getsid",
    "gettid", "ioprio_get", "ioprio_set", "kcmp", "pidfd_getfd", "pidfd_open",
    "pidfd_send_signal", "prctl", "prlimit64", "process_vm_readv", "process_vm_writev",
    "ptrace", "rseq", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setpriority", "setrlimit", "setsid", "ugetrlimit",
    "uname", "vfork", "wait4", "waitid", "waitpid", "seccomp", "sysinfo", "times",
    "restart_syscall",
    // users and groups
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid",
    "getuid32", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
    // signals
    "alarm", "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal",
    "signalfd", "signalfd4", "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "tgkill",
    "tkill",
    // time and timers
    "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
    "getitimer", "gettimeofday", "nanosleep", "setitimer", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64",
    // polling, events, pipes, asynchronous I/O, IPC
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "io_cancel",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ioctl", "pipe",
    "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
    "_newselect", "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
    "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    // sockets (socket itself is filtered below)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
    "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
];

/// Namespace flags of clone(2)/unshare(2): NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET, NEWTIME.
const CLONE_NS_FLAGS: u64 = 0x0002_0000
    | 0x0200_0000
    | 0x0400_0000
    | 0x0800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000
    | 0x80;

/// Personas `personality` may select (and 0xffffffff, which only queries).
const PERSONAS: [u64; 4] = [0x0, 0x0008, 0x0002_0000, 0xffff_ffff];

const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;

/// Calls allowed only with a capability (by number: see `caps::NAMES`).
const BY_CAPABILITY: &[(u32, &[&str])] = &[
    // SYS_ADMIN
    (
        21,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
            "listmount",
            "statmount",
        ],
    ),
    (16, &["delete_module", "finit_module", "init_module"]), // SYS_MODULE
    (17, &["ioperm", "iopl"]),                               // SYS_RAWIO
    (22, &["kexec_file_load", "kexec_load", "reboot"]),      // SYS_BOOT
    (20, &["acct"]),                                         // SYS_PACCT
    (
        25,
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "adjtimex",
        ],
    ), // SYS_TIME
    (
        23,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "migrate_pages",
            "move_pages",
        ],
    ), // SYS_NICE
    (26, &["vhangup"]),                                      // SYS_TTY_CONFIG
    (34, &["syslog"]),                                       // SYSLOG
    (2, &["open_by_handle_at"]),                             // DAC_READ_SEARCH
    (39, &["bpf"]),                                          // BPF
    (38, &["perf_event_open"]),                              // PERFMON
];

fn rule(names: &[&str], action: &str, args: Value) -> Value {
    let mut r = json!({ "names": names, "action": action });
    if args.as_array().is_some_and(|a| !a.is_empty()) {
        r["args"] = args;
    }
    r
}

/// Coracle's default profile for a container granted `caps`.
pub fn default_profile(caps: CapSet) -> LinuxSeccomp {
    let mut syscalls = vec![rule(ALLOWED, "SCMP_ACT_ALLOW", json!([]))];
    for p in PERSONAS {
        syscalls.push(rule(
            &["personality"],
            "SCMP_ACT_ALLOW",
            json!([{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }]),
        ));
    }
    syscalls.push(rule(
        &["socket"],
        "SCMP_ACT_ALLOW",
        json!([{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE" }]),
    ));
    let sys_admin = caps.contains(21);
    if !sys_admin {
        // Only when no namespace flag is set: (flags & mask) == 0.
        syscalls.push(rule(
            &["clone", "unshare"],
            "SCMP_ACT_ALLOW",
            json!([{ "index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }]),
        ));
        let mut r = rule(&["clone3"], "SCMP_ACT_ERRNO", json!([]));
        r["errnoRet"] = json!(ENOSYS);
        syscalls.push(r);
    }
    let mut granted: Vec<&str> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(*cap) {
            for n in names.iter() {
                if !granted.contains(n) {
                    granted.push(n);
                }
            }
        }
    }
    if !granted.is_empty() {
        syscalls.push(rule(&granted, "SCMP_ACT_ALLOW", json!([])));
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    });
    serde_json::from_value(profile).expect("the default profile is valid OCI seccomp")
}

/// A user's profile, in Docker's format (`archMap`, `includes`/`excludes` by capability
/// and architecture, `name` or `names`) or already in OCI form; rules whose conditions do
/// not hold for `caps` on x86_64 are left out.
pub fn load_profile(text: &str, caps: CapSet) -> Result<LinuxSeccomp, SpecError> {
    let bad = |reason: String| SpecError::SeccompProfile(reason);
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the profile is not a JSON object".into()))?;
    let mut out = serde_json::Map::new();
    for key in [
        "defaultAction",
        "defaultErrnoRet",
        "listenerPath",
        "listenerMetadata",
        "flags",
    ] {
        if let Some(x) = obj.get(key) {
            out.insert(key.into(), x.clone());
        }
    }
    if !out.contains_key("defaultAction") {
        return Err(bad("defaultAction is missing".into()));
    }
    let mut arches: Vec<Value> = Vec::new();
    if let Some(a) = obj.get("architectures").and_then(Value::as_array) {
        arches.extend(a.iter().cloned());
    }
    if let Some(map) = obj.get("archMap").and_then(Value::as_array) {
        for entry in map {
            if entry.get("architecture") == Some(&json!("SCMP_ARCH_X86_64")) {
                arches.push(json!("SCMP_ARCH_X86_64"));
                if let Some(subs) = entry.get("subArchitectures").and_then(Value::as_array) {
                    arches.extend(subs.iter().cloned());
                }
            }
        }
    }
    if !arches.is_empty() {
        out.insert("architectures".into(), Value::Array(arches));
    }
    let cap_ok = |list: Option<&Value>, want_all: bool| -> bool {
        let Some(list) = list.and_then(Value::as_array) else {
            return true;
        };
        let has = |c: &Value| {
            c.as_str()
                .and_then(|n| super::caps::normalize(n).ok())
                .and_then(|n| super::caps::NAMES.iter().position(|x| *x == n))
                .is_some_and(|i| caps.contains(i as u32))
        };
        if want_all {
            list.iter().all(has)
        } else {
            !list.iter().any(has)
        }
    };
    let arch_ok = |list: Option<&Value>, include: bool| -> bool {
        let Some(list) = list.and_then(Value::as_array) else {
            return true;
        };
        let ours = list
            .iter()
            .any(|a| matches!(a.as_str(), Some("amd64" | "x86_64" | "x32" | "386")));
        if include {
            ours
        } else {
            !ours
        }
    };
    let mut syscalls = Vec::new();
    for s in obj
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let inc = s.get("includes");
        let exc = s.get("excludes");
        if !cap_ok(inc.and_then(|i| i.get("caps")), true)
            || !cap_ok(exc.and_then(|e| e.get("caps")), false)
            || !arch_ok(inc.and_then(|i| i.get("arches")), true)
            || !arch_ok(exc.and_then(|e| e.get("arches")), false)
        {
            continue;
        }
        let mut r = serde_json::Map::new();
        let mut names: Vec<Value> = s
            .get("names")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(n) = s.get("name") {
            names.push(n.clone());
        }
        if names.is_empty() {
            return Err(bad(format!("a syscall rule names no system call: {s}")));
        }
        r.insert("names".into(), Value::Array(names));
        for key in ["action", "errnoRet", "args"] {
            if let Some(x) = s.get(key).filter(|x| !x.is_null()) {
                r.insert(key.into(), x.clone());
            }
        }
        syscalls.push(Value::Object(r));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    serde_json::from_value(Value::Object(out)).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};

    use super::*;

    fn allowed(p: &LinuxSeccomp, name: &str) -> Vec<oci_spec::runtime::LinuxSyscall> {
        p.syscalls()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            .collect()
    }

    #[test]
    fn default_denies_with_eperm_on_three_arches() {
        let p = default_profile(CapSet::docker_default());
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().clone().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert!(!allowed(&p, "read").is_empty());
        assert!(allowed(&p, "mount").is_empty());
        assert!(allowed(&p, "reboot").is_empty());
        assert!(allowed(&p, "kexec_load").is_empty());
    }

    #[test]
    fn clone_without_sys_admin_is_filtered() {
        let p = default_profile(CapSet::docker_default());
        let clone = allowed(&p, "clone");
        assert_eq!(clone.len(), 1);
        let arg = &clone[0].args().clone().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(
            arg.value() & 0x1000_0000,
            0x1000_0000,
            "CLONE_NEWUSER in the mask"
        );
        assert_eq!(arg.value_two(), Some(0));
        assert!(allowed(&p, "clone3").is_empty());
        let mut all = CapSet::docker_default();
        all.insert(21);
        let p = default_profile(all);
        assert!(allowed(&p, "clone").iter().any(|s| s.args().is_none()));
        assert!(!allowed(&p, "mount").is_empty());
    }

    #[test]
    fn personality_and_vsock() {
        let p = default_profile(CapSet::docker_default());
        assert_eq!(allowed(&p, "personality").len(), 4);
        let sock = allowed(&p, "socket");
        let arg = &sock[0].args().clone().unwrap()[0];
        assert_eq!(
            (arg.value(), arg.op()),
            (40, LinuxSeccompOperator::ScmpCmpNe)
        );
    }

    #[test]
    fn capability_gated_calls() {
        let mut c = CapSet::docker_default();
        assert!(allowed(&default_profile(c), "settimeofday").is_empty());
        c.insert(25);
        assert!(!allowed(&default_profile(c), "settimeofday").is_empty());
    }

    #[test]
    fn docker_format_profiles_are_converted() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"name": "chmod", "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}}
            ]
        }"#;
        let p = load_profile(text, CapSet::docker_default()).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            p.architectures().clone().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86]
        );
        let rules = p.syscalls().clone().unwrap();
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0].errno_ret(), Some(13));
    }

    #[test]
    fn bad_profiles() {
        let e = load_profile("[]", CapSet::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "seccomp profile: the profile is not a JSON object"
        );
        assert!(load_profile("{}", CapSet::default()).is_err());
        assert!(load_profile(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#, CapSet::default()).is_err());
    }
}
